"""A queue's VMs and their lifecycle states, from ONE instance listing per cloud account
(by the factory's tag) and ONE collector query per pool, shared by every queue.

Works for any VM target (ec2, libcloud): the target's back end lists the instances.
VMs tagged for a queue no longer configured are handed to the first subscribed queue
to drain and terminate.
"""
import time
from collections import defaultdict

from provisioner.batchstatus.base import BatchStatus
from provisioner.cloud import lifecycle, retry, tags, target
from provisioner.condor import attributes
from provisioner.errors import ProvisionerError, SourceError
from provisioner.source import Source
from provisioner.status import Pilots

# How long after a launch interrupted by a stop its VMs may still be unlisted: the call may
# still be in flight (botocore's read timeout is 60 s), and a cloud lists new instances with a lag.
SETTLE = 120.0
_PROJECTION = ["Name", "Machine", "State", "Activity", "Draining", "Cpus", "Memory", "EnteredCurrentState",
               "DaemonStartTime", attributes.QUEUE, attributes.LAUNCH, tags.INSTANCE_ATTR]


def list_instances(backend, services, budget_seconds):
    """The account's instances tagged for this factory: one listing, retried within the budget;
    SourceError if the account cannot be listed."""
    budget = retry.Budget(services.clock, services.extra.get("sleep", time.sleep), budget_seconds,
                          is_transient=backend.transient)
    try:
        return budget.call(backend.list, services.factory_id)
    except Exception as exc:
        raise SourceError(f"{backend.key[0]} instances: {backend.describe(exc)}") from None


class CloudInstances(Source):
    def __init__(self, key, backend, services, budget_seconds):
        super().__init__(key)
        self.backend, self.services, self.budget_seconds = backend, services, budget_seconds

    def read(self, now):
        instances = list_instances(self.backend, self.services, self.budget_seconds)
        collector = self.key[-1]
        try:
            machines = lifecycle.startds(self.services, collector, _PROJECTION)
        except Exception as exc:  # htcondor2.HTCondorException
            raise SourceError(f"collector {collector or 'local'}: {exc}") from None
        by_queue = defaultdict(list)
        for inst in instances:
            by_queue[inst.queue].append(inst)
        return by_queue, machines


class CloudBatchStatus(BatchStatus):
    name = "cloud"
    options = {}
    can_wind_down = True

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        self._target()

    def _target(self):
        spec = self.queue.batchsubmit
        if not issubclass(spec.cls, target.CloudTarget):
            raise ProvisionerError(f"batchstatus Cloud needs a VM target (ec2, libcloud), not {spec.name}")
        return spec

    def source_key(self):
        spec = self._target()
        backend = spec.cls.make_backend(self.queue, spec.opts, self.services)
        return backend.key + (spec.opts["collectorhost"],)

    def open_source(self):
        spec = self._target()
        backend = spec.cls.make_backend(self.queue, spec.opts, self.services)
        return CloudInstances(self.source_key(), backend, self.services, spec.opts["retry_budget"])

    def unmanaged_by(self, old) -> int:
        """How many VMs of this queue, launched under its previous configuration (``old``, its
        batch status), this one would not manage: those the previous account lists that this
        one's does not, or all of them when the collector changed. Lists instances only (the
        old collector may be gone); SourceError if an account cannot be listed."""
        def listed(status):
            spec = status._target()
            backend = spec.cls.make_backend(status.queue, spec.opts, status.services)
            instances = list_instances(backend, status.services, spec.opts["retry_budget"])
            return {i.id for i in instances if i.queue == self.queue.name}

        before = listed(old)
        if not before:
            return 0
        if old.source_key()[-1] != self.source_key()[-1]:  # the collector its VMs joined
            return len(before)
        return len(before - listed(self))

    def pilots(self, snapshot):
        by_queue, machines = snapshot
        opts = self._target().opts
        now = self.services.clock.now()
        t = lifecycle.tracker(self.services, self.queue.name, target.guard_settings(opts))
        # A queue winding down has no VMs of its own: they are orphans, and its own tracker
        # must not see them go (its ledger record of joined VMs serves the orphan tracker).
        vms = [] if self.winding_down else t.update(now, by_queue.get(self.queue.name, []), machines,
                                                    opts["boot_timeout"])
        if self.source.consumers and self.source.consumers[0] is self:
            known = self.services.queue_names | {p.queue.name for p in self.source.consumers if not p.winding_down}
            # Orphans are acted on, never counted (but by a queue winding down: they are all it has).
            # Their queue's tracker (its memory is in the ledger) tells a VM that never joined
            # (nothing to lose: boot timeout -1) from one whose startd is missing for now: that
            # one may run a job and is lost, given boot_timeout to return.
            # Only the VMs launched to join this source's collector are acted on: another collector's
            # startds are not seen here, so a VM running jobs there would look lost or never joined.
            mine = opts["collectorhost"] or ""
            t.orphans, t.orphans_lost = [], {}
            for q, insts in by_queue.items():
                if q not in known:
                    orphan = lifecycle.tracker(self.services, q, target.guard_settings(opts), orphan=True)
                    t.orphans += [vm for vm in orphan.update(now, insts, machines, -1)
                                  if vm.instance.collector in (None, mine)]
                    t.orphans_lost.update(orphan.lost_since)
        states = defaultdict(int)
        for vm in t.orphans if self.winding_down else vms:
            states[vm.state] += 1
        return Pilots(pending=states[lifecycle.BOOTING],
                      running=sum(states[s] for s in (*lifecycle.JOINED, lifecycle.LOST)),
                      held=states[lifecycle.FAILED], records=vms, states={k: v for k, v in states.items() if v},
                      pause=t.guard.check(now) or self._unsettled(now, vms))

    def _unsettled(self, now, vms):
        """A pause for this decision only while a launch a stop interrupted lists none of its VMs
        yet: a restart launching for the same demand meanwhile would launch twice."""
        ledger = self.services.ledger
        if ledger is None or self.winding_down:
            return None
        seen = {vm.instance.launch_id for vm in vms}
        unseen = [r["launch_id"] for r in ledger.interrupted(self.queue.name, "submit", now - SETTLE)
                  if r["launch_id"] not in seen]
        if not unseen:
            return None
        return (now + 1e-3, f"launch {unseen[-1]} was interrupted by a stop and lists no VM yet; no launch "
                            f"until it does or {int(SETTLE)}s after it")


PLUGIN = CloudBatchStatus
