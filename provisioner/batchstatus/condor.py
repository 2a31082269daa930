"""This factory's pilots per queue and state, from ONE schedd query by attribute."""
from collections import defaultdict, deque

from provisioner.batchstatus.base import BatchStatus
from provisioner.condor import attributes
from provisioner.errors import ProvisionerError, SourceError
from provisioner.options import Option
from provisioner.source import Source
from provisioner.status import Pilots

_RECENT = 1000  # ended pilots remembered per queue, for Throttle


class CondorPilots(Source):
    def __init__(self, key, condor, factory_id):
        super().__init__(key)
        self.condor, self.factory_id = condor, factory_id
        self.previous = {}
        self.counted = set()  # completed pilots already in ``ended``
        self.ended = defaultdict(lambda: deque(maxlen=_RECENT))

    def read(self, now):
        _, schedd, pool = self.key
        constraint = attributes.created_by(self.factory_id)
        try:
            ads = self.condor.schedd(schedd, pool).query(constraint, attributes.PILOT_PROJECTION)
        except Exception as exc:  # htcondor2 raises HTCondorException and OSError subclasses
            raise SourceError(f"schedd {schedd or 'local'}: {exc}") from None
        by_queue = defaultdict(list)
        current = {}
        for ad in ads:
            by_queue[ad.get(attributes.QUEUE)].append(ad)
            current[(ad["ClusterId"], ad["ProcId"])] = ad
        # Completed pilots stay in the queue a while (leave_in_queue), so even one that ran
        # for seconds between two reads is seen, with how long it ran.
        done = {key for key, ad in current.items() if ad.get("JobStatus") == 4}
        for key in done - self.counted:
            ad = current[key]
            self.ended[ad.get(attributes.QUEUE)].append((ad.get("EnteredCurrentStatus") or now, _ran(ad)))
        self.counted = done
        # One that left without that (removed by hand, an older pilot) ended by the read that misses it.
        for key, ad in self.previous.items():
            if key not in current and ad.get("JobStatus") == 2:
                start = ad.get("JobCurrentStartDate") or now
                self.ended[ad.get(attributes.QUEUE)].append((now, now - start))
        self.previous = current
        return by_queue


def _ran(ad) -> float:
    """Seconds a completed pilot ran; 0 if it was never seen running (it died at once)."""
    if (ad.get("RemoteWallClockTime") or 0) > 0:
        return float(ad["RemoteWallClockTime"])
    start = ad.get("JobCurrentStartDate")
    return float((ad.get("EnteredCurrentStatus") or start) - start) if start else 0.0


class CondorBatchStatus(BatchStatus):
    name = "condor"
    options = {
        "scheddhost": Option("str", None, help="schedd holding the pilots (default: local)"),
        "collectorhost": Option("str", None),
    }

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        submit = queue.batchsubmit
        other = getattr(submit.cls, "batchstatus", None)  # a third-party target need not derive from Target
        if other:  # unseen, its pilots would be submitted again every cycle, without end
            raise ProvisionerError(f"batchstatusplugin: Condor cannot see the pilots of "
                                   f"{submit.written or submit.name}, which are no HTCondor jobs: use {other}")

    def source_key(self):
        return ("condor", self.opts["scheddhost"], self.opts["collectorhost"])

    def open_source(self):
        return CondorPilots(self.source_key(), self.services.condor, self.services.factory_id)

    def pilots(self, snapshot):
        ads = snapshot.get(self.queue.name, [])
        count = _count(ads)
        return Pilots(pending=sum(count[s] for s in _PENDING), running=sum(count[s] for s in _RUNNING),
                      held=count[5], done=count[4], records=ads,
                      recent=list(self.source.ended[self.queue.name]))

    def others(self, snapshot, names):
        return sum(n for queue, ads in snapshot.items() if queue not in names
                   for status, n in _count(ads).items() if status in _PENDING + _RUNNING)


# As APF: a held pilot (5) counts as pending, so MaxPending and MaxToRun see a site that holds
# every pilot (periodic_remove takes them out); transferring output (6) and suspended (7)
# pilots hold their slots, as running.
_PENDING, _RUNNING = (1, 5), (2, 6, 7)


def _count(ads):
    count = defaultdict(int)
    for ad in ads:
        count[ad.get("JobStatus")] += 1
    return count


PLUGIN = CondorBatchStatus
