"""The factory cycle: read each status source once, decide every due queue, act.

The cycle takes its clock, sources and targets from ``Services``; it never reads
the wall clock or sleeps, so the simulator drives it in virtual time.
"""
import logging
from collections import defaultdict
from typing import Dict, List

from provisioner import cleanlogs, winddown
from provisioner.config import FactoryConfig
from provisioner.errors import ConfigErrors, ProvisionerError, SourceError
from provisioner.queue import Queue
from provisioner.sched.base import Context
from provisioner.status import Decision

log = logging.getLogger("provisioner")


def build_queues(config: FactoryConfig, services) -> List[Queue]:
    """Every enabled queue with its plugins built and its target's settings checked; all
    problems of all queues in one ConfigErrors. Opens no source and calls no remote API."""
    queues, problems = [], []
    for qcfg in config.enabled_queues:
        try:
            q = Queue(qcfg, services)
            q.validate()
            queues.append(q)
        except ProvisionerError as exc:
            problems.append(exc)
    if problems:
        raise ConfigErrors(problems)
    alike = defaultdict(list)
    for q in queues:
        picks = q.wms.selects()
        if picks is not None:
            alike[(q.wms.family, q.wms.source_key(), picks)].append(q.name)
    for names in (n for n in alike.values() if len(n) > 1):
        # Deliberate for several CEs feeding one WMS queue; a costly surprise for VM queues.
        log.warning("queues %s read the same jobs (their wmsstatus options do not tell them apart): each "
                    "provisions for all of them", ", ".join(names))
    return queues


class Factory:
    def __init__(self, config: FactoryConfig, services, ledger, monitors=(), removed=()):
        """``removed``: configurations of VM queues gone from ``config`` (``winddown.removed``);
        those whose cloud account no queue of ``config`` reads are kept until their VMs are gone."""
        self.config, self.services, self.ledger = config, services, ledger
        services.ledger = ledger
        services.queue_names = {q.name for q in config.queues}
        self.monitors = list(monitors)
        self.queues: List[Queue] = build_queues(config, services)
        self.sources: Dict = {}
        self.cleaner = cleanlogs.Cleaner(services.log_dir, {q.name: q.keepdays for q in config.queues},
                                         config.options["cleanlogs.keepdays"])
        problems, unsure = winddown.moved(ledger, self.queues, services)
        if problems:
            raise ConfigErrors(problems)
        for q in self.queues:
            self._subscribe(q)
        winddown.remember(ledger, self.queues, unsure)
        for qcfg in removed:
            self._wind_down(qcfg)

    def _wind_down(self, qcfg) -> None:
        try:
            q = winddown.WindingDown(qcfg, self.services)
            key = (q.batch.family, q.batch.source_key())
        except ProvisionerError as exc:
            winddown.forget(self.ledger, qcfg.name)
            log.warning("queue=%s removed from the configuration; its VMs cannot be wound down: %s", qcfg.name, exc)
            return
        if key in self.sources:  # a queue reading the account finds its VMs as orphans
            winddown.forget(self.ledger, q.name)
            return
        self._subscribe(q)
        self.queues.append(q)
        log.warning("queue=%s removed from the configuration, but no queue left reads its cloud account: "
                    "it stays, launching nothing, until its VMs are drained and terminated", q.name)

    def _subscribe(self, q: Queue) -> None:
        for plugin in (q.wms, q.batch):
            key = (plugin.family, plugin.source_key())
            if key not in self.sources:
                self.sources[key] = plugin.open_source()
            self.sources[key].subscribe(plugin)

    def _unsubscribe(self, q: Queue) -> None:
        for plugin in (q.wms, q.batch):
            key = (plugin.family, plugin.source_key())
            self.sources[key].consumers.remove(plugin)
            if not self.sources[key].consumers:
                del self.sources[key]

    def next_wake(self) -> float:
        return min((q.next_due for q in self.queues), default=float("inf"))

    def cycle(self, dry_run: bool = False) -> List[Decision]:
        now = self.services.clock.now()
        if not dry_run:  # before the due queues: a factory with none due still wakes hourly
            self.cleaner.maybe(now)
            self.ledger.prune(now)
        due = [q for q in self.queues if q.next_due <= now]
        if not due:
            return []
        for monitor in () if dry_run else self.monitors:
            try:
                monitor.on_cycle_start(due)
            except Exception:  # a monitor must never stop the factory
                log.exception("monitor %s failed", monitor.name)
        counted = self.queues if any(q.uses_factory_total for q in due) else due
        keys = {(q.wms.family, q.wms.source_key()) for q in due}
        keys |= {(q.batch.family, q.batch.source_key()) for q in counted}
        snaps = {}
        # A bug in one plugin is logged with its traceback and skips the queues it touches;
        # the other queues go on, as they would under APF's thread per queue.
        for key in sorted(keys, key=repr):
            try:
                snaps[key] = self.sources[key].read(now)
            except SourceError as exc:
                snaps[key] = exc
            except Exception as exc:
                readers = ", ".join(p.queue.name for p in self.sources[key].consumers)
                log.exception("status source of %s failed", readers)  # its key may hold credentials
                snaps[key] = SourceError(f"internal error: {exc!r}")
        pilots, broken = {}, {}
        for q in counted:
            snap = snaps[(q.batch.family, q.batch.source_key())]
            if not isinstance(snap, SourceError):
                try:
                    pilots[q.name] = q.batch.pilots(snap)
                except Exception as exc:
                    log.exception("queue=%s batch status failed", q.name)
                    broken[q.name] = exc
        # Unknown while a queue's pilots could not be read: a cap that cannot be checked holds.
        total = None if len(pilots) < len(counted) else sum(p.pending + p.running for p in pilots.values())
        if total is not None and counted is self.queues:
            names = {q.name for q in counted}
            readers = {(q.batch.family, q.batch.source_key()): q.batch for q in counted}
            total += sum(b.others(snaps[key], names) for key, b in readers.items())
        decisions = []
        for q in due:
            q.next_due = now + q.interval
            wsnap = snaps[(q.wms.family, q.wms.source_key())]
            bsnap = snaps[(q.batch.family, q.batch.source_key())]
            failed = next((s for s in (wsnap, bsnap) if isinstance(s, SourceError)), None)
            if failed is not None:
                d = Decision(q.name, now, action="skip", note=f"status unavailable, skipping cycle: {failed}")
                log.warning("queue=%s %s", q.name, d.note)
            elif q.name in broken:
                d = Decision(q.name, now, action="skip", note=f"internal error, skipping cycle: {broken[q.name]!r}")
            else:
                try:
                    ctx = Context(q.name, now, q.wms.work(wsnap), pilots[q.name], total)
                    d = q.decide(ctx)
                    if not dry_run:
                        q.act(d, ctx, self.ledger)
                except Exception as exc:
                    log.exception("queue=%s cycle failed", q.name)
                    d = Decision(q.name, now, action="skip", note=f"internal error, skipping cycle: {exc!r}")
                else:
                    if d.action == "submit" and total is not None:
                        total += d.count
                    # a submit or retire that failed is the operator's business, as a skipped cycle is
                    log.log(logging.WARNING if d.action == "failed" else logging.INFO, format_decision(d, dry_run))
            if not dry_run:
                self.ledger.record_decision(d)
            decisions.append(d)
        gone = [q for q in due if isinstance(q, winddown.WindingDown) and q.done]
        for q in gone:
            self._unsubscribe(q)
            self.queues.remove(q)
            winddown.forget(self.ledger, q.name)
            log.info("queue=%s wound down: none of its VMs is left", q.name)
        if not dry_run:
            for monitor in self.monitors:
                try:
                    monitor.on_cycle(now, decisions)
                    if gone:
                        monitor.reconfigure(self.config, winddown.names(self.queues))
                except Exception:  # a monitor must never stop the factory
                    log.exception("monitor %s failed", monitor.name)
        return decisions


def format_decision(d: Decision, dry_run: bool = False) -> str:
    w, p = d.work, d.pilots
    head = f"queue={d.queue} idle={w.idle} running={w.running} pending={p.pending} pilots_running={p.running}"
    steps = d.steps_text
    if d.action in ("submit", "retire"):
        verb = "would " + d.action if dry_run else d.action
        act = f"{verb} {d.count}" + (f" ids={_ids(d.ids)}" if d.ids else "")
    else:
        act = d.action
    if d.note:
        act += f" ({d.note})"
    return f"{head} | {steps} | {act}"


def _ids(ids) -> str:
    return ",".join(ids) if len(ids) <= 4 else f"{ids[0]}..{ids[-1]}"
