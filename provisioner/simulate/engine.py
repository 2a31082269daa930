"""Discrete-event replay of a job trace through the real factory, in virtual time.

The engine owns only what the outside world would do: jobs arrive in the
emulated schedd, start on matching machines (ClassAd requirements evaluated by
classad2), finish and leave; machines come and go through a back end (an
emulated cloud or pilot site). Every decision is the real ``Factory.cycle()``
at its due times, acting through the queue's real target.

Events at one instant are applied in a fixed order: job completions, back-end
events (boots, failures, interruptions), arrivals, matching, the factory cycle,
matching again. Matching is instantaneous: the negotiator is not what is studied.
"""
import heapq
import itertools
import logging
import random
import tempfile
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import classad2

from provisioner.clock import VirtualClock
from provisioner.condor import attributes
from provisioner.condor.emulator import IDLE, RUNNING
from provisioner.errors import InputError
from provisioner.factory import Factory
from provisioner.ledger import Ledger
from provisioner.services import Services
from provisioner.simulate.pool import make_pool

FINISH, ARRIVAL = 0, 1
REQUIREMENTS = classad2.ExprTree("TARGET.Cpus >= RequestCpus && TARGET.Memory >= RequestMemory")
_ACCEPTING = {"Unclaimed", "Claimed"}


@dataclass
class VM:
    """One VM (or pilot) as the metrics see it; filled in by the back end."""
    id: str
    queue: str
    itype: str
    cpus: int
    memory: int
    price: float  # per hour
    launched: float
    ready: Optional[float] = None
    ended: Optional[float] = None
    failed: bool = False
    interrupted: bool = False
    busy: float = 0.0  # seconds with at least one job running on it
    busy_since: Optional[float] = None

    def billed(self, now: float) -> float:
        return (self.ended if self.ended is not None else now) - self.launched

    def busy_for(self, now: float) -> float:
        return self.busy + (now - self.busy_since if self.busy_since is not None else 0.0)

    def set_busy(self, busy: bool, now: float) -> None:
        if busy and self.busy_since is None:
            self.busy_since = now
        elif not busy and self.busy_since is not None:
            self.busy, self.busy_since = self.busy + now - self.busy_since, None


@dataclass
class JobRun:
    job: object  # traces.Job
    queue: str
    order: int
    jid: str = ""
    idle_since: float = 0.0
    waited: float = 0.0
    started: Optional[float] = None
    ended: Optional[float] = None
    machine: Optional[str] = None
    token: int = 0  # bumped on eviction, so a stale finish event is ignored
    runs: int = 0
    run_started: float = 0.0
    boot_wait: float = 0.0  # of the wait, the part spent while the VM that ran the job booted
    decision_wait: float = 0.0  # of the wait, the part before that VM was launched


@dataclass
class Machine:
    name: str
    ad: object
    vm: Optional[VM]
    cpus: int
    memory: int
    free_cpus: int
    free_memory: int
    jobs: set = field(default_factory=set)
    sig: tuple = ()


@dataclass
class Sample:
    t: float
    idle_jobs: int
    running_jobs: int
    booting: int
    idle_vms: int
    busy_vms: int
    draining: int
    cost: float


class Simulation:
    def __init__(self, cfg, jobs, scenario, backend, on_cycle: Optional[Callable] = None,
                 on_progress: Optional[Callable] = None, until: Optional[float] = None):
        self.cfg, self.scenario, self.backend = cfg, scenario, backend
        self.on_cycle, self.on_progress = on_cycle, on_progress
        self.clock = VirtualClock(scenario.start)
        self.pool = make_pool(self.clock)
        self.schedd = self.pool.schedd()
        self.rng = random.Random(scenario.seed)
        self.until = None if until is None else scenario.start + until
        self._tmp = tempfile.TemporaryDirectory(prefix="provisioner-sim-")
        backend.attach(self)
        self.services = Services(cfg.factory_id, self.clock, self.pool, log_dir=self._tmp.name,
                                 extra=backend.extra())
        self.ledger = Ledger(None, cfg.factory_id)
        self.factory = Factory(cfg, self.services, self.ledger)
        self.queues = [q.cfg for q in self.factory.queues]
        self._selected: Dict[tuple, bool] = {}
        self.runs = [JobRun(j, self._queue_of(j), i) for i, j in enumerate(jobs)]
        self.events: list = []
        self._seq = itertools.count()
        for r in self.runs:
            self._push(scenario.start + r.job.submit, ARRIVAL, r)
        self.idle: Dict[tuple, deque] = {}
        self.machines: Dict[str, Machine] = {}
        self._fit: Dict[tuple, bool] = {}
        self.timeline: List[Sample] = []
        self.decisions: List = []
        self.finished = 0
        self.last_end = scenario.start
        self.last_activity = scenario.start  # a job arrived, started or finished

    # -- setup -------------------------------------------------------------
    def _queue_of(self, job) -> str:
        if not self.queues:
            raise InputError(f"{self.cfg.path}: no enabled queue to simulate")
        if job.queue is None:
            # the queue that counts it as its work and launches for it (two queues split by
            # RequestMemory, say); if none does, the first
            return next((q.name for q in self.queues if self.selects(q, job)), self.queues[0].name)
        for q in self.queues:
            if job.queue in (q.wmsqueue, q.name):
                return q.name
        where = job.line or f"trace job {job.id}"
        raise InputError(f"{where}: queue {job.queue!r}: no enabled queue serves it (by section name or wmsqueue)")

    def selects(self, q, job) -> bool:
        """Whether queue q's wmsstatus constraint selects the job, were it q's."""
        key = (q.name, job.cpus, job.memory)  # all a trace job's ad varies by, but its id
        if key not in self._selected:
            ad = classad2.ClassAd(self._job_attrs(job, q))
            self._selected[key] = classad2.ExprTree(q.wmsstatus.opts.get("constraint") or "true").eval(ad) is True
        return self._selected[key]

    def _job_attrs(self, job, q) -> dict:
        attrs = {"RequestCpus": job.cpus, "RequestMemory": job.memory, "Requirements": REQUIREMENTS,
                 "SimJobId": job.id}
        for other in self.queues:  # each queue's selecting attribute, set to this job's queue
            attr = other.wmsstatus.opts.get("queueattribute")
            if attr:
                attrs[attr] = q.wmsqueue
        return attrs

    def _push(self, t, kind, payload):
        heapq.heappush(self.events, (t, kind, next(self._seq), payload))

    # -- the loop ----------------------------------------------------------
    def run(self):
        log = logging.getLogger("provisioner")
        level = log.level
        log.setLevel(max(level, logging.WARNING))
        try:
            self._loop()
        finally:
            log.setLevel(level)
            self._tmp.cleanup()
        return self

    def _next_time(self) -> float:
        t = min(self.factory.next_wake(), self.backend.next_event())
        if self.events:
            t = min(t, self.events[0][0])
        return t

    def _done(self, t) -> bool:
        if self.until is not None and t > self.until:
            return True
        if self.finished < len(self.runs):
            # a factory that provisions nothing the jobs can use must not spin forever
            return not self.events and t > self.last_activity + self.scenario.stall
        return self.backend.alive() == 0 or t > self.last_end + self.scenario.tail

    def _loop(self):
        total = len(self.runs)
        while True:
            t = max(self._next_time(), self.clock.now())
            if t == float("inf") or self._done(t):
                if self.until is not None and t > self.until:
                    # nothing happens between the last event and the stop: measure at the stop asked for
                    self.clock.advance_to(self.until)
                break
            self.clock.advance_to(t)
            while self.events and self.events[0][0] <= t and self.events[0][1] == FINISH:
                self._finish(heapq.heappop(self.events)[3], t)
            self.backend.advance(t)
            self._sync_machines(t)
            while self.events and self.events[0][0] <= t:
                _, kind, _, payload = heapq.heappop(self.events)
                if kind == FINISH:
                    self._finish(payload, t)
                else:
                    self._arrive(payload, t)
            self._match(t)
            if self.factory.next_wake() <= t:
                decisions = self.factory.cycle()
                self.decisions.extend(decisions)
                self.backend.advance(t)
                self._sync_machines(t)
                self._match(t)
                self.timeline.append(self._sample(t))
                if self.on_cycle:
                    self.on_cycle(self, t, decisions)
                if self.on_progress:
                    self.on_progress(self._progress(t, total))
        end = self.clock.now()
        self.backend.close(end)
        self.timeline.append(self._sample(end))

    def _progress(self, t, total) -> float:
        # a replay stopped by --hours ends at the stop, with the later jobs never done
        if self.until is not None:
            return min(1.0, (t - self.scenario.start) / (self.until - self.scenario.start))
        return self.finished / total if total else 1.0

    # -- jobs ----------------------------------------------------------------
    def _arrive(self, run, t):
        q = next(q for q in self.queues if q.name == run.queue)
        run.jid = self.schedd.add_jobs(1, **self._job_attrs(run.job, q))[0]
        run.idle_since = t
        self.last_activity = t
        self._enqueue(run)

    def _enqueue(self, run, front=False):
        sig = (run.job.cpus, run.job.memory, run.queue)
        dq = self.idle.setdefault(sig, deque())
        dq.appendleft(run) if front else dq.append(run)

    def _start(self, run, m: Machine, t):
        if run.started is None and m.vm is not None:
            submit = self.scenario.start + run.job.submit
            launched = min(max(m.vm.launched, submit), t)
            ready = min(max(m.vm.ready if m.vm.ready is not None else t, submit), t)
            run.decision_wait, run.boot_wait = launched - submit, ready - launched
        run.waited += t - run.idle_since
        run.started = t if run.started is None else run.started
        run.machine, run.runs, run.run_started = m.name, run.runs + 1, t
        m.free_cpus -= run.job.cpus
        m.free_memory -= run.job.memory
        m.ad["Cpus"], m.ad["Memory"] = m.free_cpus, m.free_memory
        if not m.jobs:
            m.ad["State"], m.ad["Activity"], m.ad["EnteredCurrentState"] = "Claimed", "Busy", int(t)
            if m.vm is not None:
                m.vm.set_busy(True, t)
        m.jobs.add(run.order)
        self.last_activity = t
        self.schedd.set_status([run.jid], RUNNING)
        self._push(t + run.job.runtime, FINISH, (run, run.token))

    def _release(self, run, m: Machine, t):
        m.free_cpus += run.job.cpus
        m.free_memory += run.job.memory
        m.ad["Cpus"], m.ad["Memory"] = m.free_cpus, m.free_memory
        m.jobs.discard(run.order)
        if not m.jobs:
            # as a startd: an emptied draining machine is Drained, any other goes back to Unclaimed
            m.ad["State"] = "Drained" if m.ad.get("Draining") else "Unclaimed"
            m.ad["Activity"], m.ad["EnteredCurrentState"] = "Idle", int(t)
            if m.vm is not None:
                m.vm.set_busy(False, t)
            self.backend.machine_idle(m, t)
        run.machine = None

    def _finish(self, payload, t):
        run, token = payload
        if token != run.token:
            return
        m = self.machines.get(run.machine)
        if m is not None:
            self._release(run, m, t)
        self.schedd.finish([run.jid])
        run.ended = t
        self.finished += 1
        self.last_end = self.last_activity = max(self.last_end, t)

    # -- machines --------------------------------------------------------------
    def _sync_machines(self, t):
        names = self.pool.machines
        for name in [n for n in self.machines if n not in names]:
            self._lose(self.machines.pop(name), t)
        for name, ad in names.items():
            if name not in self.machines:
                cpus = int(ad.get("TotalCpus") or ad.get("Cpus") or 1)
                memory = int(ad.get("TotalMemory") or ad.get("Memory") or 1)
                vm = self.backend.vm_of(ad)
                sig = (ad.get(attributes.QUEUE), cpus, memory, str(ad.get("Start", True)))
                self.machines[name] = Machine(name, ad, vm, cpus, memory, cpus, memory, sig=sig)
                if vm is not None and vm.ready is None:
                    vm.ready = t

    def _lose(self, m: Machine, t):
        """A machine went away under its jobs (a spot interruption): they go back to idle."""
        if m.vm is not None:
            m.vm.set_busy(False, t)
        for order in sorted(m.jobs, reverse=True):
            run = self.runs[order]
            run.token += 1
            run.machine = None
            run.idle_since = t
            self.schedd.set_status([run.jid], IDLE)
            self._enqueue(run, front=True)

    def _fits(self, sig, m: Machine) -> bool:
        key = (sig, m.sig, m.free_cpus, m.free_memory)
        ok = self._fit.get(key)
        if ok is None:
            job = classad2.ClassAd({"RequestCpus": sig[0], "RequestMemory": sig[1], "Requirements": REQUIREMENTS})
            view = classad2.ClassAd({"Cpus": m.free_cpus, "Memory": m.free_memory,
                                     attributes.QUEUE: m.ad.get(attributes.QUEUE)})
            if "Start" in m.ad:
                view["Requirements"] = m.ad.lookup("Start")
            ok = view.matches(job) and (job.matches(view) if "Start" in m.ad else True)
            self._fit[key] = ok
        return ok

    def _match(self, t):
        if not any(self.idle.values()):
            return
        for m in sorted(self.machines.values(), key=lambda m: (-len(m.jobs), m.name)):
            if m.free_cpus <= 0 or m.ad.get("Draining") or m.ad.get("State") not in _ACCEPTING:
                continue
            while True:
                best = None
                for sig, dq in self.idle.items():
                    if dq and (best is None or dq[0].order < best[1][0].order) and self._fits(sig, m):
                        best = (sig, dq)
                if best is None:
                    break
                self._start(best[1].popleft(), m, t)

    # -- observation ---------------------------------------------------------
    def _sample(self, t) -> Sample:
        idle_vms = busy = draining = 0
        for m in self.machines.values():
            if m.ad.get("Draining") or m.ad.get("State") == "Drained":
                draining += 1
            elif m.jobs:
                busy += 1
            else:
                idle_vms += 1
        booting, cost = self.backend.booting(), self.backend.cost(t)
        idle_jobs = sum(len(dq) for dq in self.idle.values())
        running = sum(len(m.jobs) for m in self.machines.values())
        return Sample(t - self.scenario.start, idle_jobs, running, booting, idle_vms, busy, draining, cost)
