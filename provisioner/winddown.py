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
from typing import List, Set, Tuple

from provisioner import config as configmod
from provisioner.errors import ConfigError, ProvisionerError
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


def remember(ledger, queues, unsure=frozenset()) -> None:
    """Keep each VM queue's options for a restart that finds the queue removed: those its
    plugins read, not the rest of its section ([DEFAULT]'s helper keys, other plugins' keys)."""
    for q in queues:
        if q.batch.can_wind_down and not isinstance(q, WindingDown):
            secrets = sorted(k for spec in q.cfg.plugins for k, v in spec.effective().items() if v == "********")
            prefixes = tuple(f"{spec.family}.{n}." for spec in q.cfg.plugins for n in {spec.name, spec.written})
            read = {k: v for k, v in q.cfg.raw.items() if k in configmod.QUEUE_OPTIONS or k.startswith(prefixes)}
            kept = {"path": q.cfg.path, **({"secrets": secrets} if secrets else {"options": read})}
            if q.name in unsure:  # the options it may have left VMs under, for the next check
                before = ledger.get_state(KEY + q.name)
                kept["previous"] = before.get("previous") or {"path": before["path"], "options": before["options"]}
            ledger.put_state(KEY + q.name, kept)


def moved(ledger, queues, services) -> Tuple[List[ConfigError], Set[str]]:
    """(problems, unsure): VM queues that now read another cloud account or collector than
    the one their VMs are on, while some are still there (a queue's VMs are known by its
    name on its account, so those would go unmanaged); and the queues for which that could
    not be told, whose previous options ``remember`` keeps beside the current ones (the next
    start or reload tells). Lists an account only when a queue's source changed."""
    problems, unsure = [], set()
    for q in queues:
        kept = ledger.get_state(KEY + q.name)
        kept = kept and kept.get("previous", kept)  # the options a check could not yet tell from
        if not (q.batch.can_wind_down and kept and "options" in kept):
            continue
        try:
            previous = configmod.queue_from_items(q.name, kept["path"], kept["options"])
            old = previous.batchstatus.cls(previous, previous.batchstatus.opts, services)  # all the check needs
        except ProvisionerError as exc:
            log.warning("queue=%s: its kept options no longer load, so a change of its cloud account cannot be "
                        "told: %s", q.name, str(exc).splitlines()[0])
            continue
        if (old.family, old.source_key()) == (q.batch.family, q.batch.source_key()):
            continue
        try:
            left = q.batch.unmanaged_by(old)
        except ProvisionerError as exc:
            unsure.add(q.name)
            log.warning("queue=%s: whether its options now name another cloud account than the VMs it launched "
                        "cannot be told (checked again at the next start or reload): %s", q.name,
                        str(exc).splitlines()[0])
            continue
        if left:
            problems.append(ConfigError(q.cfg.path, q.name, None, f"its cloud account or collector changed while "
                                        f"{left} of its VMs are on the previous one, where they would go "
                                        f"unmanaged: give the queue a new name (the old one then winds them down) "
                                        f"or restore its previous account"))
    return problems, unsure


def remembered(ledger) -> List[str]:
    """The VM queues whose options the ledger keeps: the configured ones, and removed ones
    still winding down (or not yet found so by a restart)."""
    return sorted(key[len(KEY):] for key in ledger.states(KEY))


def names(queues) -> List[str]:
    """The removed queues among a factory's ``queues`` still winding their VMs down."""
    return [q.name for q in queues if isinstance(q, WindingDown)]


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
