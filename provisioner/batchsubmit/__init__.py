"""Targets: where pilots or VMs are submitted and retired (APF "batch submit" plugins)."""
