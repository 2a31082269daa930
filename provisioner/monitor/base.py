"""A monitor hears every cycle's decisions; it must never stop the factory."""
from typing import List

from provisioner.status import Decision


class Monitor:
    name = ""

    def start(self) -> None:
        """Called once before the first cycle."""

    def on_cycle_start(self, queues) -> None:
        """Called on the factory's thread as a cycle begins, with the queues it decides (``name``,
        ``interval``): must return at once."""

    def on_cycle(self, now: float, decisions: List[Decision]) -> None:
        """Called after every cycle on the factory's thread: must not wait on the network."""
        raise NotImplementedError

    def reconfigure(self, cfg, keep=()) -> None:
        """Called after a SIGHUP reload with the new configuration (queues added or gone), and
        when a removed queue kept to wind its VMs down goes (``provisioner.winddown``); ``keep``
        names the removed queues still winding down, which the factory still cycles."""

    def stop(self) -> None:
        """Called once when the factory stops."""
