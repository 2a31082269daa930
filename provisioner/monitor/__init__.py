"""Monitors: told of every cycle's decisions (APF "monitor" plugins)."""
