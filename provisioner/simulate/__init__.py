"""Trace replay in virtual time through the real factory code: docs/simulate.md."""
