"""How much work waits for each queue (APF "WMS status" plugins)."""
