"""What a replay measured, per queue and overall.

A job's wait is all the time it spent idle. It splits into the part spent
before the VM that ran it was launched (the decision), while that VM booted
(the boot), and the rest, waiting behind other jobs for a slot; the first two are
what provisioning added. VM-hours are billed from launch to termination;
wasted VM-hours are the billed hours with no job on the VM: booting, idle,
draining and never-joined VMs (free cores beside a running job are not counted:
no policy can give them back without killing the job).
"""
from dataclasses import dataclass
from typing import Dict, List

from provisioner.simulate.bound import Bound, bound


@dataclass
class Summary:
    name: str
    jobs: int = 0
    finished: int = 0
    wait_p50: float = 0.0
    wait_p95: float = 0.0
    wait_max: float = 0.0
    prov_p50: float = 0.0
    prov_p95: float = 0.0
    prov_max: float = 0.0
    vm_hours: float = 0.0
    wasted: float = 0.0
    launches: int = 0
    boot_failures: int = 0
    interruptions: int = 0
    cost: float = 0.0
    bound_wasted: float = 0.0

    @property
    def ratio(self) -> float:
        """Wasted VM-hours over the clairvoyant bound's."""
        if self.bound_wasted > 1e-9:
            return self.wasted / self.bound_wasted
        return 1.0 if self.wasted <= 1e-9 else float("inf")


def percentile(values: List[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: a p95 is a wait some job really had)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def summarise(sim) -> List[Summary]:
    """One Summary per queue, then the overall one (named "all")."""
    now = sim.clock.now()
    by_queue: Dict[str, list] = {q.name: [] for q in sim.queues}
    submitted = [r for r in sim.runs if r.jid]  # a replay stopped by --hours never saw the later jobs
    for r in submitted:
        by_queue[r.queue].append(r)
    vms: Dict[str, list] = {q.name: [] for q in sim.queues}
    for vm in sim.backend.vms():
        vms.setdefault(vm.queue, []).append(vm)
    out, bounds = [], {}
    for name, runs in by_queue.items():
        cpus, memory, boot, price = sim.backend.reference(name)
        bounds[name] = bound(((r.job.submit, r.job.runtime, r.job.cpus, r.job.memory) for r in runs),
                             cpus, memory, boot, price)
        out.append(_summary(name, runs, vms.get(name, []), bounds[name], now))
    total = Bound()
    for b in bounds.values():
        total = total + b
    all_vms = [v for vs in vms.values() for v in vs]
    out.append(_summary("all", submitted, all_vms, total, now))
    return out


def _summary(name, runs, vms, b: Bound, now) -> Summary:
    waits, prov = [], []
    for r in runs:
        idle = r.machine is None and r.ended is None  # never started, or evicted and not yet restarted
        wait = r.waited + (now - r.idle_since if idle else 0.0)
        waits.append(wait)
        prov.append(r.decision_wait + r.boot_wait if r.started is not None else wait)
    billed = sum(v.billed(now) for v in vms) / 3600.0
    return Summary(
        name, jobs=len(runs), finished=sum(1 for r in runs if r.ended is not None),
        wait_p50=percentile(waits, 50), wait_p95=percentile(waits, 95), wait_max=max(waits, default=0.0),
        prov_p50=percentile(prov, 50), prov_p95=percentile(prov, 95), prov_max=max(prov, default=0.0),
        vm_hours=billed, wasted=billed - sum(v.busy_for(now) for v in vms) / 3600.0, launches=len(vms), boot_failures=sum(1 for v in vms if v.failed),
        interruptions=sum(1 for v in vms if v.interrupted),
        cost=sum(v.price * v.billed(now) for v in vms) / 3600.0, bound_wasted=b.wasted)


def unfit(sim) -> Dict[str, int]:
    """Per queue, the jobs submitted that never ran because no VM (or pilot) of their queue
    can hold them: they wait to the end of the replay and make its wait percentiles."""
    from provisioner.cloud import sizing

    sc = sim.scenario
    pilot = sizing.InstanceType("pilot", sc.pilot_cpus, sc.pilot_memory)
    types = {q.name: sizing.types_or_pilots(q) or [pilot] for q in sim.cfg.enabled_queues}
    out: Dict[str, int] = {}
    for r in _never_ran(sim, selected=True):
        if not any(t.fits((r.job.cpus, r.job.memory, 0)) for t in types[r.queue]):
            out[r.queue] = out.get(r.queue, 0) + 1
    return out


def unselected(sim) -> Dict[str, int]:
    """Per queue, the jobs submitted that never ran because its wmsstatus constraint does not
    select them (and, for a job the trace gave no queue, no other queue's does): no queue counts
    them as its work, so nothing is launched for them and they wait to the end of the replay."""
    out: Dict[str, int] = {}
    for r in _never_ran(sim, selected=False):
        out[r.queue] = out.get(r.queue, 0) + 1
    return out


def _never_ran(sim, selected: bool):
    """The jobs submitted that never ran whose queue selects them (or, ``selected=False``, does not)."""
    queues = {q.name: q for q in sim.queues}
    return [r for r in sim.runs if r.jid and r.started is None and sim.selects(queues[r.queue], r.job) == selected]
