"""A status source is read once per cycle and shared by every queue that uses it."""
from typing import Hashable


class Source:
    def __init__(self, key: Hashable):
        self.key = key
        self.consumers = []

    def subscribe(self, plugin) -> None:
        """A queue's status plugin declares it reads this source (e.g. to widen a projection)."""
        self.consumers.append(plugin)
        plugin.source = self

    def read(self, now: float):
        """One query; returns a snapshot, raises SourceError when unreachable."""
        raise NotImplementedError


class StatusPlugin:
    """Mixin of wmsstatus and batchstatus plugins: which source they read."""

    def source_key(self) -> Hashable:
        raise NotImplementedError

    def open_source(self) -> Source:
        raise NotImplementedError
