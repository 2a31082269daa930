"""One policy step: takes the previous step's number and the status, returns a number
and a one-line reason. Positive means submit that many, negative retire that many."""
from dataclasses import dataclass
from typing import Optional, Tuple

from provisioner.plugin import Plugin
from provisioner.status import Pilots, Work


@dataclass
class Context:
    queue: str
    now: float
    work: Work
    pilots: Pilots
    #: pending + running over every queue of the factory, updated as queues act;
    #: None when some queue's pilots could not be read this cycle
    factory_pilots: Optional[int] = 0


class Step(Plugin):
    family = "sched"

    def __call__(self, n: int, ctx: Context) -> Tuple[int, str]:
        raise NotImplementedError

    def recheck_after(self, ctx: Context) -> Optional[float]:
        """Seconds after which this step wants its queue decided again, sooner than the
        interval (asked after each decision); None to keep the interval."""
        return None


def limit(n: int, have: str, count: int, maximum: int, allow_negative: bool) -> Tuple[int, str]:
    """A limiter's answer once ``count`` (shown as ``have=...``) is known: n if it fits under
    ``maximum``, else the room left; over the maximum, a retire of the surplus only with
    ``allow_negative`` (APF's min(n, maximum - count)), else n if already a retire, or 0."""
    room = maximum - count
    if n <= room:  # a submit that fits, or a retire at least as large as the surplus
        return n, f"{have}={count} {'under' if room >= 0 else 'over'} {maximum}"
    if room >= 0:
        return room, f"{have}={count} max={maximum}"
    if allow_negative:
        return room, f"{have}={count} over {maximum}: retire {-room}"
    return min(n, 0), f"{have}={count} over {maximum}"  # a limiter only limits: a retire asked before passes


def opt(step: Step, name: str):
    return step.opts[name]
