"""One queue: its plugins, its decision (the policy chain) and its action."""
import logging

from provisioner.config import QueueConfig
from provisioner.errors import ProvisionerError, TargetError
from provisioner.sched.base import Context
from provisioner.status import Decision, StepResult

log = logging.getLogger("provisioner")


class Queue:
    def __init__(self, cfg: QueueConfig, services):
        self.cfg, self.name = cfg, cfg.name

        def build(spec):
            try:
                return spec.cls(cfg, spec.opts, services)
            except ProvisionerError as exc:
                raise ProvisionerError(f"{cfg.path}: [{cfg.name}] {exc}") from None

        self.wms = build(cfg.wmsstatus)
        self.batch = build(cfg.batchstatus)
        self.steps = [(spec.name, build(spec)) for spec in cfg.sched]
        if not self.steps:  # n would stay 0: a queue that never submits, silently
            raise ProvisionerError(f"{cfg.path}: [{cfg.name}] schedplugin: names no step "
                                   "(leave it out for Ready; enabled = False stops a queue)")
        self.target = build(cfg.batchsubmit)
        self.interval = cfg.interval
        self.next_due = float("-inf")
        self.paused_until = float("-inf")
        self.pause_reason = ""

    @property
    def uses_factory_total(self) -> bool:
        return any(name == "maxperfactory" for name, _ in self.steps)

    def validate(self) -> None:
        try:
            self.target.validate()
        except ProvisionerError as exc:
            raise ProvisionerError(f"{self.cfg.path}: [{self.name}] {exc}") from None

    def decide(self, ctx: Context) -> Decision:
        d = Decision(self.name, ctx.now, work=ctx.work, pilots=ctx.pilots)
        n = 0
        for name, step in self.steps:
            n, reason = step(n, ctx)
            d.steps.append(StepResult(name, int(n), reason))
        d.n = int(n)
        # optional: a third-party step need not derive from sched.base.Step
        asks = (getattr(step, "recheck_after", None) for _, step in self.steps)
        soon = [s for s in (ask(ctx) for ask in asks if ask) if s]
        if soon:
            self.next_due = min(self.next_due, ctx.now + min(soon))
        if ctx.pilots.pause and ctx.pilots.pause[0] > self.paused_until:
            self.paused_until, self.pause_reason = ctx.pilots.pause
        if ctx.now < self.paused_until:
            d.pause = (self.paused_until, self.pause_reason)
        if d.pause and d.n > 0:
            d.note = f"paused: {self.pause_reason}"
        elif d.n > 0:
            d.action, d.count = "submit", d.n
        elif d.n < 0 and self.target.can_retire:
            d.action, d.count = "retire", -d.n
        elif d.n < 0:
            d.note = f"{self.target.name} cannot retire"
        return d

    def act(self, d: Decision, ctx: Context, ledger) -> None:
        self.maintain(ctx, ledger)
        if d.action not in ("submit", "retire"):
            return
        launch_id = ledger.intent(ctx.now, self.name, self.target.name, d.action, d.count)
        try:
            if d.action == "submit":
                d.ids = self.target.submit(d.count, ctx, launch_id)
            else:
                d.ids = self.target.retire(d.count, ctx)
        except TargetError as exc:
            ledger.complete(launch_id, [], "failed", str(exc))
            d.note = f"{d.action} failed: {exc}"
            pause = getattr(exc, "pause", None)
            if pause:
                self.paused_until, self.pause_reason = ctx.now + pause, str(exc)
                d.pause = (self.paused_until, self.pause_reason)
            d.action, d.count = "failed", 0
            return
        except Exception as exc:  # a bug: what it made carries the launch id, as after a crash
            ledger.complete(launch_id, [], "interrupted", f"internal error: {exc!r}")
            raise
        ledger.complete(launch_id, d.ids)
        d.count = len(d.ids)
        recheck = self.target.recheck_after(d.action, d.ids)
        if recheck is not None:
            self.next_due = min(self.next_due, ctx.now + recheck)

    def maintain(self, ctx: Context, ledger) -> None:
        """A target's own upkeep each cycle (VM targets: terminate drained or failed VMs), recorded."""
        hook = getattr(self.target, "maintain", None)
        if hook is None:
            return
        try:
            done = hook(ctx)
        except TargetError as exc:
            log.warning("queue=%s upkeep failed: %s", self.name, exc)
            return
        for action, ids, note in done:
            launch_id = ledger.intent(ctx.now, self.name, self.target.name, action, len(ids))
            ledger.complete(launch_id, ids, "done", note)
            log.info("queue=%s %s %d (%s)", self.name, action, len(ids), note)
