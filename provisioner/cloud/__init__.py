"""Cloud elasticity shared by the VM targets: sizing, lifecycle, drain, retry, user-data."""
