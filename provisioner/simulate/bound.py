"""The clairvoyant: the least a queue's VMs can waste when no job waits at all.

It knows every job in advance. Each job starts the moment it is submitted, on
the VM the pool's matcher would pick (the fullest running VM it fits on, as
``engine._match`` orders them). A job that fits on no running VM gets the VM
that went idle most recently if that was at most one boot time ago (keeping it
idle through the gap costs less than a new boot), else a new VM launched
exactly one boot time earlier. A VM that goes idle with no such reuse coming
stops at once. The boot time is the mean a VM of the queue draws: with boot
jitter the bound is the clairvoyant's expected waste, which a policy's lucky
draws can undercut on a small trace by at most the jitter per VM.

Wasted VM-hours are the hours a VM is billed with no job on it: its boot and
the idle gaps it was kept through. Reusing the most recently idled VM first is
optimal for those gaps: the cost of a gap, min(gap, boot), is concave, so
pairing the shortest gaps first never loses. A real policy learns of a job
only when it arrives and pays at least one decision and a boot before a cold
VM runs it; it can waste less than the bound only by making jobs wait, which
shows in its wait column. That is the sense in which no policy beats it.
"""
import heapq
from dataclasses import dataclass
from typing import Iterable, List, Tuple


@dataclass
class Bound:
    billed: float = 0.0  # VM-hours
    wasted: float = 0.0  # VM-hours with no job on the VM
    launches: int = 0
    cost: float = 0.0
    unfit: int = 0  # jobs no VM of the reference size can hold

    def __add__(self, other: "Bound") -> "Bound":
        return Bound(self.billed + other.billed, self.wasted + other.wasted, self.launches + other.launches,
                     self.cost + other.cost, self.unfit + other.unfit)


class _VM:
    __slots__ = ("id", "cpus", "memory", "jobs", "since")

    def __init__(self, vid, cpus, memory):
        self.id, self.cpus, self.memory, self.jobs, self.since = vid, cpus, memory, 0, None


def bound(jobs: Iterable[Tuple[float, float, int, int]], cpus: int, memory: int, boot: float,
          price: float = 0.0) -> Bound:
    """jobs: (submit, run time, cpus, memory) in seconds and MB, for one queue's VMs of the given size."""
    events: List[tuple] = []  # (time, 0 = finish before 1 = arrival, seq, payload)
    unfit = 0
    for seq, (submit, runtime, c, m) in enumerate(sorted(jobs)):
        if c > cpus or m > memory:
            unfit += 1
            continue
        events.append((submit, 1, seq, (runtime, c, m)))
    heapq.heapify(events)
    busy: List[_VM] = []  # VMs with at least one job
    kept: List[_VM] = []  # idle VMs, most recently idled last
    wasted = busy_time = 0.0
    launches = 0
    seq = len(events)
    while events:
        t, kind, _, payload = heapq.heappop(events)
        if kind == 0:
            vm, c, m = payload
            vm.cpus, vm.memory, vm.jobs = vm.cpus + c, vm.memory + m, vm.jobs - 1
            if vm.jobs == 0:
                busy.remove(vm)
                busy_time += t - vm.since
                vm.since = t
                kept.append(vm)
            continue
        runtime, c, m = payload
        vm = next((v for v in sorted(busy, key=lambda v: (-v.jobs, v.id)) if v.cpus >= c and v.memory >= m), None)
        if vm is None:
            if kept and t - kept[-1].since <= boot:
                vm = kept.pop()
                wasted += t - vm.since
            else:
                kept.clear()  # older ones idled even longer ago: all were stopped when they went idle
                vm = _VM(launches, cpus, memory)
                launches += 1
                wasted += boot
            busy.append(vm)
            vm.since = t
        vm.cpus, vm.memory, vm.jobs = vm.cpus - c, vm.memory - m, vm.jobs + 1
        seq += 1
        heapq.heappush(events, (t + runtime, 0, seq, (vm, c, m)))
    billed = (wasted + busy_time) / 3600.0
    return Bound(billed, wasted / 3600.0, launches, billed * price, unfit)
