"""The clairvoyant lower bound on wasted VM-hours.

It knows every job in advance, so every job starts the moment it is submitted,
and the VMs of a queue follow the fewest that can hold the running jobs,
D(t) = ceil(max(sum cpus / VM cpus, sum memory / VM memory)). Each VM is launched
exactly one boot time before it is needed; a VM left idle is kept only if it is
needed again within a boot time (keeping it costs less than a new boot), else
stopped at once. Reusing the most recently idled VM first (LIFO) is optimal:
the cost of a gap, min(gap, boot), is concave, so pairing the shortest gaps
first never loses. Any policy whose jobs start at the same times needs at
least D(t) running VMs, each launched a boot time earlier, so none can be
billed less; and every job's wait here is zero, so no real policy beats it on
both waste and wait.

Exact when jobs pack perfectly; with mixed shapes D(t) rounds up the pooled
demand, which is still a lower bound on the VMs needed.
"""
import math
from dataclasses import dataclass
from typing import Iterable, Tuple


@dataclass
class Bound:
    billed: float = 0.0  # VM-hours
    work: float = 0.0  # VM-hours of job work (each job's share of a VM x its run time)
    launches: int = 0
    cost: float = 0.0

    @property
    def wasted(self) -> float:
        return self.billed - self.work

    def __add__(self, other: "Bound") -> "Bound":
        return Bound(self.billed + other.billed, self.work + other.work, self.launches + other.launches,
                     self.cost + other.cost)


def bound(intervals: Iterable[Tuple[float, float, int, int]], cpus: int, memory: int, boot: float,
          price: float = 0.0) -> Bound:
    """intervals: (start, end, job cpus, job memory) in seconds, for one queue's VMs of the given size."""
    deltas = {}
    work = 0.0
    for start, end, c, m in intervals:
        if end <= start:
            continue
        deltas.setdefault(start, [0, 0])
        deltas.setdefault(end, [0, 0])
        deltas[start][0] += c
        deltas[start][1] += m
        deltas[end][0] -= c
        deltas[end][1] -= m
        work += (end - start) * max(c / cpus, m / memory)
    used_c = used_m = 0
    level, since = 0, None
    free = []  # times VMs went idle, most recent last
    billed = launches = 0.0
    for t in sorted(deltas):
        if since is not None:
            billed += level * (t - since)
        since = t
        used_c += deltas[t][0]
        used_m += deltas[t][1]
        need = math.ceil(max(used_c / cpus, used_m / memory) - 1e-9) if used_c > 0 or used_m > 0 else 0
        while level < need:
            gap = t - free.pop() if free else math.inf
            if gap <= boot:
                billed += gap  # kept idle through the gap
            else:
                billed += boot  # a fresh VM, launched one boot time ahead
                launches += 1
            level += 1
        while level > need:
            free.append(t)
            level -= 1
    hours = billed / 3600.0
    return Bound(hours, work / 3600.0, int(launches), hours * price)
