"""Helpers of the stage-two pilot wrapper (standard library only)."""
