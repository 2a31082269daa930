"""What plugins may use from outside: injected so tests, the simulator and the
daemon run the same code against real or emulated back ends."""
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Set


@dataclass
class Services:
    factory_id: str
    clock: Any  # provisioner.clock.WallClock or VirtualClock
    condor: Any  # provisioner.condor.adapter.HTCondor or condor.emulator.Pool
    log_dir: str = "logs"
    log_url: Optional[str] = None
    monitor_url: Optional[str] = None
    #: back ends of other plugin families (cloud clients, SSH), by name
    extra: Dict[str, Any] = field(default_factory=dict)
    #: the factory's ledger (set by the Factory), for state a plugin keeps across restarts
    ledger: Any = None
    #: every queue of the factory's config, enabled or not (set by the Factory): a VM tagged
    #: for one of them is never an orphan, whichever source lists it
    queue_names: Set[str] = field(default_factory=set)

    def close(self) -> None:
        """Closes the back ends that hold connections (SSH sessions and their threads)."""
        for backend in self.extra.values():
            close = getattr(backend, "close", None)
            if callable(close):
                close()
