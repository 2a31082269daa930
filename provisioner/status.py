"""What a queue knows at decision time: waiting work and what it already has."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple


@dataclass
class Work:
    """Work waiting for this queue (the WMS side)."""
    idle: int = 0
    running: int = 0
    jobs: Sequence = ()  # the idle job ads, for sizing VMs against RequestCpus/Memory
    ads: Sequence = ()  # every idle and running job ad (their QDate: when the work arrived)
    site_status: str = "online"  # online, offline or test (StatusOffline/StatusTest)


@dataclass
class Pilots:
    """What this factory already has for the queue (the batch side)."""
    pending: int = 0  # submitted, not yet running (idle pilots, booting VMs)
    running: int = 0
    held: int = 0
    done: int = 0
    records: List = field(default_factory=list)  # per pilot/VM, for retire choices
    recent: List[Tuple[float, float]] = field(default_factory=list)  # (end time, run time)
    states: Dict[str, int] = field(default_factory=dict)  # finer states, e.g. of VMs
    pause: Optional[Tuple[float, str]] = None  # (until, reason): stop submitting, e.g. a black-hole guard


@dataclass
class StepResult:
    step: str
    n: int
    reason: str


@dataclass
class Decision:
    queue: str
    time: float
    work: Work = None
    pilots: Pilots = None
    steps: List[StepResult] = field(default_factory=list)
    n: int = 0
    action: str = "none"  # submit, retire, none, skip
    count: int = 0
    ids: List[str] = field(default_factory=list)
    note: str = ""
    # (until, reason) of the hold on the queue's submissions in force after this decision: the
    # pilots' pause or a cloud error's; whatever n is, so that monitors see every hold
    pause: Optional[Tuple[float, str]] = None

    @property
    def steps_text(self) -> str:
        """Each policy step's number and why, in chain order."""
        return "; ".join(f"{s.step}={s.n} ({s.reason})" for s in self.steps)

    @property
    def reason(self) -> str:
        """The steps' messages, then the note: why a submit failed or was held back must show too."""
        return "; ".join(part for part in (self.steps_text, self.note) if part)
