"""The policy recommended for VM queues: the VMs the idle jobs need, launched ahead during a
burst, and a VM retired the first cycle it is seen idle. Ignores its input.

Launch: the idle jobs packed into the queue's instance types (first fit
decreasing), less the VMs that will take them already (booting, or joined and
idle). A shortage of one VM, for jobs smaller than a VM, waits one interval
while at least ``patience_jobs`` jobs run (``patience``): a core freed by a
finishing job usually takes such a job before a new VM could boot.

Bursts: the jobs' submission times (QDate) within the last interval give an
arrival rate, trusted only when at least ``lead_min_jobs`` jobs came after the
first one seen, so a trickle launches nothing ahead and a cluster submitted at
once counts as one batch, not a rate. While a burst lasts (jobs keep coming since
the last decision) the step launches for ``lead`` of the jobs it expects before a
VM launched at its next decision could join (the time to that decision plus a
boot), beyond the cores they will find free.

Recheck: while jobs submitted since the last decision wait, the queue is decided
again after ``recheck`` seconds instead of a whole interval, so the head of a
burst is seen as one within seconds, not a cycle later.

Cancel: when no job waits any more (the burst ended, or freed cores took the
jobs), booting VMs are terminated, youngest first: those launched ahead within
the last boot, or any in the first half of its boot. None had joined the pool
at the status read, and the target asks the collector again right before each
terminate call: a VM that joined since is kept, as a job may run on it.

Retire: idle VMs beyond the need are retired once idle for ``linger`` seconds
(default 0; a longer linger, the ski-rental hedge, wasted more than it saved on
every reference trace). VMs retire only while no job waits for them.
docs/benchmarks.md has the measured trade of each option.
"""
import math
from typing import Optional

from provisioner.cloud import lifecycle, sizing
from provisioner.options import Option
from provisioner.sched.base import Step


class Elastic(Step):
    name = "elastic"
    options = {
        "boot_time": Option("int", 180, minimum=0, help="expected seconds from launch to joining the pool"),
        "linger": Option("int", 0, minimum=0, help="seconds an idle VM is kept before it is retired"),
        "patience": Option("bool", True, help="hold back a one-VM shortage for one interval while jobs run"),
        "patience_jobs": Option("int", 16, minimum=1, help="... only while at least this many jobs run "
                                                           "(with fewer, a core rarely frees in time)"),
        "lead": Option("float", 0.6, minimum=0, help="share of the jobs expected until the next decision "
                                                     "plus a boot to launch for ahead of time, during a burst"),
        "lead_min_jobs": Option("int", 8, minimum=1, help="arrivals within the last interval that make a burst"),
        "recheck": Option("int", 15, minimum=0, help="seconds to the next decision while jobs submitted "
                                                     "since the last one wait (0: every interval)"),
    }

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        self.types = sizing.types_or_pilots(queue)
        self.last_look = None  # time of the last decision
        self.short_since = None  # when the current one-VM shortage was first held back
        self.ahead = []  # [time, VMs] launched ahead of the jobs within the last boot
        self.per_job = 1.0  # cores per waiting job, as last seen
        self.soon = None  # seconds to the next decision, when sooner than the interval

    def __call__(self, n, ctx):
        p, w = ctx.pilots, ctx.work
        booting = p.states.get(lifecycle.BOOTING, 0) if p.states else p.pending
        idle = p.states.get(lifecycle.IDLE, 0)
        packing = sizing.pack_work(w, self.types, sizing.open_vms(p, self.types)) if self.types else None
        # the VMs the idle jobs need, those open counted only when a job fits them
        needed = packing.total + packing.used if packing else w.idle
        arrived, span = self._arrivals(ctx)
        coming = self._coming(arrived, span)
        ahead = self._ahead(packing, p, coming, needed, booting + idle)
        out = (packing.net if packing else needed - booting - idle) + ahead
        reason = f"needed={needed}"
        if coming:
            reason += f" coming={coming} ahead={ahead}"
        reason += f" booting={booting} idle={idle}"
        if self._patient(out, w, ctx.now):
            return 0, reason + " (one VM short while jobs run: waiting for freed cores)"
        boot = self.opts["boot_time"]
        self.ahead = [[t, k] for t, k in self.ahead if ctx.now - t < boot and k > 0]
        if out > 0 and ahead > 0:
            self.ahead.append([ctx.now, min(out, ahead)])
        if out < 0:
            linger = self.opts["linger"]
            stale = sum(1 for vm in p.records if _idle_for(vm, ctx.now) >= linger)
            cancel = 0 if w.idle else min(self._cancellable(p, ctx.now), max(0, -out - stale))
            out = max(out, -(stale + cancel))
            self._forget_ahead(cancel)
            reason += f" idle>{linger}s={stale}" + (f" cancel-booting={cancel}" if cancel else "")
        return out, reason

    def _cancellable(self, pilots, now) -> int:
        """Booting VMs that may go (the target terminates the youngest first): those launched
        ahead within the last boot, or any launched less than half a boot ago."""
        half = self.opts["boot_time"] / 2
        young = sum(1 for vm in pilots.records
                    if getattr(vm, "state", None) == lifecycle.BOOTING and now - vm.launched < half)
        return min(pilots.states.get(lifecycle.BOOTING, 0), max(young, sum(k for _, k in self.ahead)))

    def _forget_ahead(self, cancelled) -> None:
        for entry in reversed(self.ahead):  # youngest first, as the target terminates them
            taken = min(entry[1], cancelled)
            entry[1], cancelled = entry[1] - taken, cancelled - taken

    def recheck_after(self, ctx) -> Optional[float]:
        return self.soon

    def _patient(self, out, work, now) -> bool:
        """Hold back a shortage of one VM for one interval while enough jobs run and the waiting
        jobs are smaller than a VM: a core freed by a finishing job often takes them first."""
        small = out == 1 and self.opts["patience"] and work.running >= self.opts["patience_jobs"]
        if small and self.types:
            small = all(sizing.shape(ad)[0] < self.types[0].cpus for ad in work.jobs)
        if not small:
            self.short_since = None
            return False
        if self.short_since is None:
            self.short_since = now
        return now - self.short_since < self.queue.interval

    def _arrivals(self, ctx):
        """(jobs, seconds): the jobs submitted within the last interval after the first
        submission time seen in it, and the time since that one, from the jobs' QDate; (0, 0)
        below ``lead_min_jobs`` or when none came since the last decision. A cluster submitted
        at once is one batch, not a rate. While jobs submitted since the last decision wait,
        the next comes after ``recheck`` seconds."""
        last, self.last_look = self.last_look, ctx.now
        since = ctx.now - self.queue.interval
        recent = [q for q in (ad.get("QDate") for ad in ctx.work.ads) if isinstance(q, (int, float)) and q > since]
        first = min(recent, default=None)
        later = sum(1 for q in recent if q > first)
        new = bool(recent) and (last is None or max(recent) > last)
        self.soon = self.opts["recheck"] if new and ctx.work.idle and self.opts["recheck"] else None
        if not new or later < self.opts["lead_min_jobs"]:
            return 0, 0.0  # no burst, or it has stopped
        return later, ctx.now - first

    def _coming(self, arrived, span) -> int:
        """Jobs expected before a VM launched at the next decision could boot, scaled by ``lead``."""
        if not arrived or span <= 0:
            return 0
        horizon = (self.soon or self.queue.interval) + self.opts["boot_time"]
        return round(arrived / span * horizon * self.opts["lead"])

    def _ahead(self, packing, pilots, coming, needed, spare_vms) -> int:
        """VMs for the jobs still to come, after the cores they will find free: on busy VMs
        (their startds advertise the unclaimed cores) and left over on the VMs counted for
        the idle jobs. Jobs to come are assumed shaped like those waiting (or last waiting)
        that some instance type can hold."""
        if not coming:
            return 0
        if packing is None:
            return coming
        cpus = self.types[0].cpus
        waiting = packing.fit_cpus
        if packing.fit_jobs:
            self.per_job = waiting / packing.fit_jobs
        free = sum(ad.get("Cpus") or 0 for vm in pilots.records
                   if getattr(vm, "state", None) == lifecycle.BUSY for ad in vm.machines)
        free += max(needed, spare_vms) * cpus - waiting
        return max(0, math.floor((coming * self.per_job - free) / cpus))  # whole VMs only


def _idle_for(vm, now) -> float:
    if getattr(vm, "state", None) != lifecycle.IDLE or not vm.machines:
        return -1.0
    return now - (vm.machines[0].get("EnteredCurrentState") or now)


PLUGIN = Elastic
