"""A VM queue removed while no remaining queue reads its cloud account.

The orphan cleanup of the Cloud batch status runs in a queue that lists the same
account; with none left, the removed queue's VMs would be left to their own idle
shutdown. So the removed queue stays, launching nothing, and its VMs are drained and
terminated as orphans are (busy ones once their jobs end); it goes with the last one.

A reload has the removed queue's options at hand. For a restart, every VM queue's
options are kept in the ledger (``remember``) unless they hold a secret, which the
ledger must not: such a queue, removed while the factory was stopped, is reported.
"""
import logging
from typing import List

from provisioner import config as configmod
from provisioner.errors import ProvisionerError
from provisioner.queue import Queue
from provisioner.sched.base import Context
from provisioner.source import Source
from provisioner.status import Decision, StepResult, Work
from provisioner.wmsstatus.base import WMSStatus

log = logging.getLogger("provisioner")

KEY = "winddown/"  # + queue name: {"path", "options"} or {"path", "secrets"}


class _Nothing(Source):
    def read(self, now):
        return None


class _NoWork(WMSStatus):
    """Its work is not read: a schedd that is down must not hold the cleanup up."""
    name = "winddown"

    def source_key(self):
        return ("winddown",)

    def open_source(self):
        return _Nothing(self.source_key())

    def work(self, snapshot) -> Work:
        return Work()


class WindingDown(Queue):
    def __init__(self, cfg, services):
        super().__init__(cfg, services)
        self.wms = _NoWork(cfg, {}, services)
        self.steps = []
        self.batch.winding_down = True
        self.done = False

    def decide(self, ctx: Context) -> Decision:
        p = ctx.pilots
        left = p.pending + p.running + p.held
        self.done = left == 0
        d = Decision(self.name, ctx.now, work=ctx.work, pilots=p)
        d.steps.append(StepResult("winddown", 0, f"removed from the configuration: {left} VMs left to drain"
                                                 " and terminate"))
        return d


def remember(ledger, queues) -> None:
    """Keep each VM queue's options for a restart that finds the queue removed: those its
    plugins read, not the rest of its section ([DEFAULT]'s helper keys, other plugins' keys)."""
    for q in queues:
        if q.batch.can_wind_down and not isinstance(q, WindingDown):
            secrets = sorted(k for spec in q.cfg.plugins for k, v in spec.effective().items() if v == "********")
            prefixes = tuple(f"{spec.family}.{n}." for spec in q.cfg.plugins for n in {spec.name, spec.written})
            read = {k: v for k, v in q.cfg.raw.items() if k in configmod.QUEUE_OPTIONS or k.startswith(prefixes)}
            kept = {"secrets": secrets} if secrets else {"options": read}
            ledger.put_state(KEY + q.name, {"path": q.cfg.path, **kept})


def remembered(ledger) -> List[str]:
    """The VM queues whose options the ledger keeps: the configured ones, and removed ones
    still winding down (or not yet found so by a restart)."""
    return sorted(key[len(KEY):] for key in ledger.states(KEY))


def forget(ledger, name: str) -> None:
    ledger.drop_state(KEY + name)


def removed(ledger, queues, config) -> List[configmod.QueueConfig]:
    """The VM queues gone from ``config``: those of ``queues`` (the running factory's, at a
    reload), then those the ledger remembers; a queue that cannot be rebuilt is reported."""
    names = {q.name for q in config.queues}
    out = [q.cfg for q in queues if q.name not in names and q.batch.can_wind_down]
    have = names | {c.name for c in out}
    for key, kept in sorted(ledger.states(KEY).items()):
        name = key[len(KEY):]
        if name in have:
            continue
        if "secrets" in kept:
            forget(ledger, name)  # reported once: nothing more can be done
            log.warning("queue=%s was removed from %s while the factory was stopped; its VMs cannot be wound down, "
                        "since its options held secrets (%s) that the ledger does not keep: they are left to "
                        "their idle shutdown", name, kept["path"], ", ".join(kept["secrets"]))
            continue
        try:
            out.append(configmod.queue_from_items(name, kept["path"], kept["options"]))
        except ProvisionerError as exc:
            forget(ledger, name)
            log.warning("queue=%s was removed from %s while the factory was stopped; its VMs cannot be wound down:"
                        " its kept options no longer load: %s", name, kept["path"], str(exc).splitlines()[0])
    return out
