"""The project's default policy: exactly the VMs the idle jobs need, and a VM retired
the first cycle it is seen idle. Ignores its input.

Launch: the idle jobs packed into the queue's instance types (first fit
decreasing), less the VMs that will take them already (booting, or joined and
idle). Nothing is held in reserve, so nothing idles waiting for work that may
never come. A shortage of one VM while jobs run, for jobs smaller than a VM,
waits one cycle (``patience``): a core freed by a finishing job usually takes
such a job before a new VM could boot (on the reference diurnal trace, 14 of 93
VMs launched without it never ran a job). With ``lead`` > 0 it also launches,
while jobs wait, for that share of the jobs expected within one cycle plus a
boot (the queue's job growth rate, smoothed over cycles): bursts wait less, a
steady stream wastes more (docs/benchmarks.md has the trade).

Retire: idle VMs beyond the need are retired once idle for ``linger`` seconds
(default 0). A longer linger is the ski-rental hedge (keep a VM idle for at most
what a new boot costs); on the reference traces it wastes more than it saves,
because the retire path already keeps an idle VM through one decision and its
drain. VMs retire only while no job waits for them.
"""
import math

from provisioner.cloud import lifecycle, sizing
from provisioner.options import Option
from provisioner.sched.base import Step


_SMOOTHING = 0.3  # weight of the last cycle in the growth rate: a burst counts, a trickle's noise does not


class Elastic(Step):
    name = "elastic"
    options = {
        "boot_time": Option("int", 180, minimum=0, help="expected seconds from launch to joining the pool"),
        "linger": Option("int", 0, minimum=0, help="seconds an idle VM is kept before it is retired"),
        "patience": Option("bool", True, help="hold back a one-VM shortage for one cycle while jobs run"),
        "lead": Option("float", 0.0, minimum=0, help="share of the jobs expected within a cycle plus a boot "
                                                      "to launch for ahead of time, while jobs wait"),
    }

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        self.types = sizing.types_or_pilots(queue)
        self.seen = None  # (time, idle + running jobs) at the last decision
        self.rate = 0.0  # smoothed job growth per second
        self.waited = False  # the last cycle was one VM short

    def __call__(self, n, ctx):
        p, w = ctx.pilots, ctx.work
        booting = p.states.get(lifecycle.BOOTING, 0) if p.states else p.pending
        idle = p.states.get(lifecycle.IDLE, 0)
        needed = sizing.needed(w, self.types)
        coming = self._coming(ctx)
        ahead = self._ahead(w, p, coming, needed, booting + idle)
        out = needed + ahead - booting - idle
        lead = f" coming={coming} ahead={ahead}" if self.opts["lead"] else ""
        reason = f"needed={needed}{lead} booting={booting} idle={idle}"
        if self._patient(out, w):
            return 0, reason + " (one VM short while jobs run: waiting a cycle for freed cores)"
        if out < 0:
            linger = self.opts["linger"]
            stale = sum(1 for vm in p.records if _idle_for(vm, ctx.now) >= linger)
            out = max(out, -stale)
            reason += f" idle>{linger}s={stale}"
        return out, reason

    def _patient(self, out, work) -> bool:
        """Hold back a shortage of one VM for one cycle while jobs run and the waiting jobs are
        smaller than a VM: a core freed by a finishing job often takes them before a VM could boot."""
        small = out == 1 and work.running > 0 and self.opts["patience"]
        if small and self.types:
            small = all(sizing.shape(ad)[0] < self.types[0].cpus for ad in work.jobs)
        hold = small and not self.waited
        self.waited = small  # once per shortage: still short next cycle means no core came free
        return hold

    def _coming(self, ctx) -> int:
        """Jobs expected within one cycle plus a boot: the queue's smoothed job growth per second."""
        total, seen = ctx.work.idle + ctx.work.running, self.seen
        self.seen = (ctx.now, total)
        if seen is None or ctx.now <= seen[0]:
            return 0
        growth = max(0, total - seen[1]) / (ctx.now - seen[0])
        self.rate = _SMOOTHING * growth + (1 - _SMOOTHING) * self.rate
        return round(self.rate * (self.queue.interval + self.opts["boot_time"]) * self.opts["lead"])

    def _ahead(self, work, pilots, coming, needed, spare_vms) -> int:
        """VMs for the jobs still to come, after the cores they will find free: on busy VMs
        (their startds advertise the unclaimed cores) and left over on the VMs counted for
        the idle jobs. Jobs to come are assumed shaped like those waiting now."""
        if not coming or not work.idle:  # nothing waits: the pool keeps up without a lead
            return 0
        if not self.types:
            return coming
        cpus = self.types[0].cpus
        waiting = sum(sizing.shape(ad)[0] for ad in work.jobs)
        per_job = waiting / len(work.jobs) if work.jobs else 1.0
        free = sum(ad.get("Cpus") or 0 for vm in pilots.records
                   if getattr(vm, "state", None) == lifecycle.BUSY for ad in vm.machines)
        free += max(needed, spare_vms) * cpus - waiting
        return max(0, math.floor((coming * per_job - free) / cpus))  # whole VMs only: a trickle gets none


def _idle_for(vm, now) -> float:
    if getattr(vm, "state", None) != lifecycle.IDLE or not vm.machines:
        return -1.0
    return now - (vm.machines[0].get("EnteredCurrentState") or now)


PLUGIN = Elastic
