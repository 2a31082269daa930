"""Back ends reached over SSH (BOSCO's ``grid_resource = batch slurm user@host`` use case)."""
