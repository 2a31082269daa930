"""VM states, from reconciling the cloud's instances (by tag) with the pool's machines.

requested (a ledger intent) -> booting (an instance, no startd yet) -> idle | busy
(its startd is in the pool, matched by the instance id it advertises) -> draining
(drain asked, jobs still running) -> drained -> terminated. A VM that has not joined
within the boot timeout, or that the cloud put in error first, is ``failed``; one whose
startd vanished is ``lost``.

The per-queue ``Tracker`` remembers what one cycle cannot see (when a VM joined,
which VMs the factory itself terminated) and runs the black-hole guard.
"""
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from provisioner.cloud import tags
from provisioner.condor import attributes

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # no condor_config on a machine without HTCondor
    import htcondor2

BOOTING, IDLE, BUSY, DRAINING, DRAINED, LOST, FAILED, TERMINATED = (
    "booting", "idle", "busy", "draining", "drained", "lost", "failed", "terminated")
STATES = (BOOTING, IDLE, BUSY, DRAINING, DRAINED, LOST, FAILED)
JOINED = (IDLE, BUSY, DRAINING, DRAINED)
_ENDED = ("shutting-down", "terminated")


@dataclass
class Instance:
    """One cloud instance as any back end lists it."""
    id: str
    queue: str
    launch_id: str
    type: str
    state: str  # the cloud's: pending, running, stopping, stopped, shutting-down, terminated, error
    launched: float
    draining: bool = False  # tagged provisioner:state=draining
    collector: Optional[str] = None  # its provisioner:collector tag (None: launched without one)


@dataclass
class VM:
    instance: Instance
    machines: list = field(default_factory=list)  # startd ads advertising this instance id
    state: str = BOOTING

    @property
    def id(self) -> str:
        return self.instance.id

    @property
    def launched(self) -> float:
        return self.instance.launched

    @property
    def machine(self) -> Optional[str]:
        """The startd's name, for drain."""
        return self.machines[0].get("Machine") or self.machines[0].get("Name") if self.machines else None


def classify(inst: Instance, ads: list, now: float, boot_timeout: float, was_joined: bool) -> str:
    if inst.state in _ENDED:
        return TERMINATED
    if inst.state in ("stopping", "stopped"):
        return DRAINED  # powered itself off (idle shutdown): only terminating it is left
    if inst.state == "error":  # the cloud gave up on it (Nova: "No valid host was found")
        return LOST if was_joined else FAILED
    if ads:
        draining = inst.draining or any(ad.get("Draining") for ad in ads)
        busy = any(ad.get("Activity") in ("Busy", "Retiring") or ad.get("State") == "Claimed" for ad in ads)
        if busy:
            return DRAINING if draining else BUSY
        return DRAINED if draining else IDLE
    if was_joined or inst.draining:  # tagged draining, it had joined: a graceful drain may still run jobs
        return LOST
    return FAILED if now - inst.launched > boot_timeout else BOOTING


@dataclass
class GuardSettings:
    failures: int = 5  # boot failures or early deaths ...
    window: float = 3600.0  # ... within this many seconds trip the guard
    backoff: float = 900.0  # first pause; doubles at each new trip
    backoff_max: float = 14400.0
    early_death: float = 300.0  # a VM that leaves this soon after joining counts as a failure


class Guard:
    """Black-hole guard: a broken image must not be relaunched forever (TARDIS #205)."""

    def __init__(self, settings: GuardSettings, saved: Optional[dict] = None, save=None):
        self.s = settings
        self.events: List[Tuple[float, str]] = []  # (when, what) of VMs launched since the last trip
        self.trips = 0
        self.until = float("-inf")
        self.reason = ""
        self.tripped_at = float("-inf")
        if saved:  # a restart must not hand a broken image a fresh allowance of failures
            self.events = [tuple(e) for e in saved["events"]]
            self.trips, self.reason = saved["trips"], saved["reason"]
            self.until, self.tripped_at = _time(saved["until"]), _time(saved["tripped_at"])
        self._save = save

    def state(self) -> dict:
        return {"events": self.events, "trips": self.trips, "reason": self.reason,
                "until": _json_time(self.until), "tripped_at": _json_time(self.tripped_at)}

    def _changed(self) -> None:
        if self._save is not None:
            self._save(self.state())

    def record(self, now: float, what: str, launched: float) -> None:
        # a VM launched before the last trip is that trip's cause, not evidence for a new one
        if launched > self.tripped_at:
            self.events.append((now, what))
            self._changed()

    def check(self, now: float) -> Optional[Tuple[float, str]]:
        """The pause in force (until, reason), tripping the guard when failures pile up."""
        self.events = [e for e in self.events if now - e[0] <= self.s.window]
        if len(self.events) >= self.s.failures:
            pause = min(self.s.backoff * 2 ** self.trips, self.s.backoff_max)
            self.trips += 1
            kinds = sorted({what for _, what in self.events})
            self.until, self.tripped_at = now + pause, now
            self.reason = (f"black-hole guard: {len(self.events)} {' and '.join(kinds)} in "
                           f"{int(self.s.window)}s, no launches for {int(pause)}s (trip {self.trips})")
            self.events = []
            self._changed()
        return (self.until, self.reason) if now < self.until else None

    def joined(self, vm_launched: float) -> bool:
        """A VM launched after the last trip joined: the image works again. True if that reset the guard."""
        if self.trips and vm_launched > self.tripped_at and not self.events:
            self.trips, self.reason = 0, ""
            self._changed()
            return True
        return False


def _json_time(t: float):
    return None if t == float("-inf") else t


def _time(t) -> float:
    return float("-inf") if t is None else t


class Tracker:
    """What one queue's lifecycle remembers between cycles (its guard also across restarts)."""

    def __init__(self, settings: GuardSettings, saved: Optional[dict] = None, save=None,
                 joined: Optional[dict] = None, save_joined=None):
        self.guard = Guard(settings, saved, save)
        # instance id -> (joined, launched); kept across restarts, else a restarted factory that
        # finds a joined VM's startd missing (a collector restarted too) takes it for a boot failure
        self.joined: Dict[str, Tuple[float, float]] = {k: tuple(v) for k, v in (joined or {}).items()}
        self._save_joined = save_joined
        self.lost_since: Dict[str, float] = {}
        self.failed: set = set()
        self.terminated_by_us: set = set()
        self.orphans: List[VM] = []  # VMs of unconfigured queues this queue cleans up
        self.orphans_lost: Dict[str, float] = {}  # since when an orphan's startd is missing
        self.recovered = False

    def update(self, now: float, instances: List[Instance], ads_by_id: Dict[str, list],
               boot_timeout: float) -> List[VM]:
        vms, seen, before = [], set(), dict(self.joined)
        for inst in instances:
            seen.add(inst.id)
            vm = VM(inst, ads_by_id.get(inst.id, []))
            # one we terminated may be listed as running a while (libcloud's shutting-down, Nova's deleting)
            vm.state = TERMINATED if inst.id in self.terminated_by_us else classify(
                inst, vm.machines, now, boot_timeout, inst.id in self.joined)
            if vm.state in JOINED:
                self.lost_since.pop(inst.id, None)
                if inst.id not in self.joined and vm.machines:  # not one stopped before its startd was seen
                    # the startd's own start, not now: after a restart every VM is seen anew
                    started = vm.machines[0].get("DaemonStartTime")
                    self.joined[inst.id] = (started if isinstance(started, (int, float)) else now, inst.launched)
                    self.recovered = self.guard.joined(inst.launched) or self.recovered
            elif vm.state == FAILED and inst.id not in self.failed:
                self.failed.add(inst.id)
                self.guard.record(now, "boot failures", inst.launched)
            elif vm.state == LOST and inst.id not in self.lost_since:
                self.lost_since[inst.id] = now
                self._died(now, inst.id, inst.draining)
            elif vm.state == TERMINATED:
                self._gone(now, inst.id, inst.draining)
            if vm.state != TERMINATED:
                vms.append(vm)
        for iid in [i for i in self.joined if i not in seen]:
            self._gone(now, iid, False)
        # No longer listed, gone for good: a factory running for months must not keep every VM it had.
        self.failed &= seen
        self.terminated_by_us &= seen
        self.lost_since = {k: v for k, v in self.lost_since.items() if k in seen}
        if self._save_joined is not None and self.joined != before:
            self._save_joined(self.joined)
        return vms

    def terminated(self, ids) -> None:
        """VMs the factory terminated: no death of theirs counts, after a restart either, which
        would find them joined in the ledger and gone from the listing."""
        ids = set(ids)
        self.terminated_by_us |= ids
        if ids & self.joined.keys():
            self.joined = {k: v for k, v in self.joined.items() if k not in ids}
            if self._save_joined is not None:
                self._save_joined(self.joined)

    def _gone(self, now: float, iid: str, drained: bool) -> None:
        if iid in self.joined and iid not in self.lost_since:
            self._died(now, iid, drained)
        self.joined.pop(iid, None)
        self.lost_since.pop(iid, None)

    def _died(self, now: float, iid: str, drained: bool) -> None:
        if drained or iid in self.terminated_by_us or iid not in self.joined:  # lost by its tag alone
            return
        joined, launched = self.joined[iid]
        if now - joined <= self.guard.s.early_death:
            self.guard.record(now, "early deaths", launched)


def tracker(services, queue: str, settings: GuardSettings, orphan: bool = False) -> Tracker:
    """The queue's tracker, shared by its batchstatus and its target through services.
    ``orphan``: for the VMs of a queue no longer configured, cleaned up by another; its
    cancelled VMs must not count as boot failures against the queue should it come back."""
    trackers = services.extra.setdefault("cloud.trackers", {})
    if (queue, orphan) not in trackers:
        ledger, guard, joined = services.ledger, f"cloud.guard/{queue}", f"cloud.joined/{queue}"
        if ledger is None:
            trackers[(queue, orphan)] = Tracker(settings)
        else:
            saved, save = (None, None) if orphan else (ledger.get_state(guard),
                                                       lambda state: ledger.put_state(guard, state))
            trackers[(queue, orphan)] = Tracker(settings, saved, save, ledger.get_state(joined),
                                                lambda ids: ledger.put_state(joined, ids))
    return trackers[(queue, orphan)]


def machines_by_instance(ads) -> Dict[str, list]:
    out: Dict[str, list] = {}
    for ad in ads:
        iid = ad.get(tags.INSTANCE_ATTR)
        if iid:
            out.setdefault(iid, []).append(ad)
    return out


def startds(services, collector: Optional[str], projection) -> Dict[str, list]:
    """This factory's startds in the pool, by the instance id they advertise: one collector
    query. Raises what the collector raises (htcondor2.HTCondorException)."""
    constraint = attributes.created_by(services.factory_id)
    return machines_by_instance(services.condor.collector(collector).query(htcondor2.AdType.Startd, constraint,
                                                                           projection))
