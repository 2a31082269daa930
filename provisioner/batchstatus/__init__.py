"""What this factory already has for each queue (APF "batch status" plugins)."""
