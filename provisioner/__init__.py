"""Elastic HTCondor provisioner: a factory of independent queues."""

__version__ = "0.1.0"
