"""What the VM targets share: sizing options, one launch call with fallback, drain-first retire.

A back end (``ec2api.EC2Backend``, ``libcloudapi.LibcloudBackend``) does the cloud calls;
this class decides which ones and keeps the lifecycle's books.
"""
import itertools
import logging
import time
from typing import List

from provisioner.batchsubmit.base import Target
from provisioner.cloud import drain, lifecycle, retry, sizing, tags, userdata
from provisioner.errors import ProvisionerError, TargetError
from provisioner.options import Option

log = logging.getLogger("provisioner")

OPTIONS = {
    **userdata.OPTIONS,
    "instance_types": Option("list", required=True, help="instance types in preference order"),
    "market": Option("str", "on-demand", choices=("on-demand", "spot")),
    "spot_max_price": Option("float", None, minimum=0, help="USD per hour (default: the on-demand price)"),
    "max_per_call": Option("int", 1000, minimum=1, help="VMs per launch call, where the API limits it"),
    "retry_budget": Option("float", 30.0, minimum=0, help="seconds of back-off per cloud call on throttling/5xx"),
    "error_pause": Option("int", 1800, minimum=0, help="pause after a configuration error from the cloud (s)"),
    "boot_timeout": Option("int", 900, minimum=30, help="a VM not in the pool by then is a boot failure (s)"),
    "max_draining_percent": Option("float", 25.0, minimum=1, help="disruption budget: VMs draining at once"),
    "drain_recheck": Option("int", 5, minimum=1,
                            help="s after draining idle VMs before the queue looks again to terminate them"),
    "guard_failures": Option("int", 5, minimum=1, help="black-hole guard: failures that trip it ..."),
    "guard_window": Option("int", 3600, minimum=1, help="... within this window (s)"),
    "guard_backoff": Option("int", 900, minimum=1, help="first pause (s), doubled at each trip"),
    "guard_backoff_max": Option("int", 14400, minimum=1),
    "early_death": Option("int", 300, minimum=0, help="a VM leaving this soon after joining is a failure (s)"),
    "collectorhost": Option("str", None, help="collector the factory reads machines from and drains through"),
}


class _CollectorDown(Exception):
    pass


class NoInstances(Exception):
    """A launch call answered as done but named no VM."""


class CloudError(TargetError):
    """A cloud refusal: ``pause`` set when retrying next cycle cannot help."""

    def __init__(self, message, pause=None):
        super().__init__(message)
        self.pause = pause


# A retire drains VMs idle at the status read; the startd refuses if a job took one since.
IDLE_ONLY = 'State == "Unclaimed"'


class CloudTarget(Target):
    can_retire = True
    batchstatus = "Cloud"
    option_prefixes = ("instance_type.",)

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        self._backend = None
        self._quota = {}  # instance type -> VMs per call its quota last took

    # --- what subclasses provide ------------------------------------------------------------
    @classmethod
    def make_backend(cls, queue, opts, services):
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------
    @property
    def backend(self):
        if self._backend is None:
            self._backend = self.make_backend(self.queue, self.opts, self.services)
        return self._backend

    def types(self) -> List[sizing.InstanceType]:
        specs = {k[len("instance_type."):]: v for k, v in self.opts.items() if k.startswith("instance_type.")}
        return sizing.resolve(self.opts["instance_types"], specs)

    def tracker(self) -> lifecycle.Tracker:
        return lifecycle.tracker(self.services, self.queue.name, guard_settings(self.opts))

    def budget(self) -> retry.Budget:
        return retry.Budget(self.services.clock, self.services.extra.get("sleep", time.sleep),
                            self.opts["retry_budget"], is_transient=self.backend.transient)

    def validate(self):
        where = self.namespace()
        try:
            self.types()
        except ValueError as exc:
            raise ProvisionerError(f"{where}instance_types: {exc}") from None
        userdata.check(self.queue, self.services, self.opts, where)
        self.backend.validate(where)

    def submit(self, n, ctx, launch_id):
        try:
            text = userdata.render_user_data(self.queue, self.services, launch_id, self.opts)
        except userdata.UserDataError as exc:  # a file read since the start-up checks (token_file) is gone
            why = f"{self.namespace()}{exc}" if exc.option else str(exc)
            log.warning("queue=%s launch: %s; giving up for this cycle", self.queue.name, why)
            raise CloudError(why) from None
        tagset = tags.for_launch(self.services.factory_id, self.queue.name, launch_id,
                                self.opts["collectorhost"])
        types = self.types()
        packing = sizing.pack_work(ctx.work, types, sizing.open_vms(ctx.pilots, types))
        budget, ids, refusals, full, attempts = self.budget(), [], [], set(), itertools.count()
        for itype, count in sizing.launch_plan(n, packing, types):
            want = len(ids) + count
            # No capacity: the next types in preference order that hold the same jobs.
            later = types[types.index(itype) + 1:]
            shapes = packing.shapes.get(itype.name, ())
            fallback = [t for t in later if all(t.fits(s) for s in shapes)]
            for t, place in self.backend.choices([itype, *fallback]):
                if t.name in full:
                    continue  # a quota is regional: the type's other places are refused too
                try:
                    if self._launch(want - len(ids), t, place, f"{launch_id}-{next(attempts)}", tagset, text,
                                    budget, launch_id, ids, refusals):
                        break
                    full.add(t.name)
                except Exception as exc:
                    kind = self.backend.kind(exc)
                    if kind == "fallback":  # the next choice launches only what is still missing
                        refusals.append(f"{t.name}{'@' + place if place else ''}: {self.backend.describe(exc)}")
                        continue
                    if ids:  # earlier chunks started: they go to the ledger; the error comes back next cycle
                        log.error("queue=%s %s launch: %s after %d VMs started", self.queue.name, self.name,
                                  self.backend.describe(exc), len(ids))
                        return ids
                    raise self._failure(exc, kind, "launch") from None
        if not ids:
            raise CloudError("nothing launched: " + "; ".join(refusals))
        if len(ids) < n:
            log.warning("queue=%s launched %d of %d (%s)", self.queue.name, len(ids), n, "; ".join(refusals))
        elif refusals:
            log.info("queue=%s launched after fallback (%s)", self.queue.name, "; ".join(refusals))
        return ids

    def _launch(self, n, itype, place, token, tagset, text, budget, launch_id, ids, refusals) -> bool:
        """Up to n more VMs of one type and place, their ids added to ``ids`` as each call
        returns, in as few calls as the API allows (one, unless max_per_call forces chunks).
        False when the account's quota for the type is reached first.

        Launches are all-or-nothing, so a quota refusal halves the call's size until the
        quota takes it. The size that fitted is where the next cycle starts, doubling while
        the quota takes it, so a full quota costs one refused call per cycle."""
        key = itype.name
        size = min(n, self._quota.get(key, n))
        probing, refused, calls = key in self._quota, None, itertools.count()

        def adopt(exc):
            # A failed call may still have started VMs: look for them before launching again.
            if not self.backend.ambiguous(exc):
                return None
            found = [i for i in self.backend.launched(launch_id) if i not in ids]
            return found or None

        done = 0
        while done < n:
            size = min(size, n - done, self.opts["max_per_call"])
            try:
                got = budget.call(self.backend.launch, size, itype, place, f"{token}-{next(calls)}", tagset, text,
                                  before_retry=adopt)
            except Exception as exc:
                if self.backend.kind(exc) != "quota":
                    raise
                refused = exc
                if size == 1:
                    break
                size //= 2
                continue
            if not got:
                # A driver that cannot read its cloud's answer (a namespace it does not expect)
                # returns none: calling again would launch more, unseen, without end. Fatal, so the
                # queue pauses; what was started carries the launch tag, and the listing finds it.
                raise NoInstances(f"the cloud answered a launch of {size} {key} without naming any VM")
            ids += got
            done += len(got)  # a provider launching one node a call may stop short at a quota
            if probing and refused is None:
                size *= 2
        if refused is None:
            self._quota.pop(key, None)
            return True
        self._quota[key] = size
        if done < n:
            refusals.append(f"{key}: quota reached after {done} ({self.backend.describe(refused)})")
        return done == n

    def _failure(self, exc, kind, what) -> CloudError:
        text = f"{self.name} {what}: {self.backend.describe(exc)}"
        if kind == "fatal":
            log.error("queue=%s %s; pausing for %ds", self.queue.name, text, self.opts["error_pause"])
            return CloudError(text, pause=self.opts["error_pause"] or None)
        log.warning("queue=%s %s; giving up for this cycle", self.queue.name, text)
        return CloudError(text)

    def retire(self, n, ctx):
        gone = self.tracker().terminated_by_us  # terminated by this cycle's upkeep
        vms = [vm for vm in ctx.pilots.records if vm.id not in gone]
        to_drain, to_terminate = drain.retire_plan(vms, n, self.opts["max_draining_percent"])
        drained = self._drain(to_drain, IDLE_ONLY)
        ids = [vm.id for vm in to_terminate]
        return drained + self._terminate(ids, "retire", unjoined=ids)

    def recheck_after(self, action, ids):
        # retire drains only idle VMs, drained within seconds: terminate them then, not a cycle later
        return self.opts["drain_recheck"] if action == "retire" and ids else None

    def _drain(self, vms, check_expr=None) -> List[str]:
        done = []
        for vm in vms:
            try:
                self.services.condor.drain(vm.machine, self.opts["collectorhost"], check_expr=check_expr,
                                           reason=f"provisioner {self.services.factory_id} retiring {vm.id}")
                done.append(vm.id)
            except Exception as exc:  # htcondor2.HTCondorException: leave it for the next cycle
                log.warning("queue=%s drain of %s (%s) failed: %s", self.queue.name, vm.id, vm.machine, exc)
        if done:
            try:
                self.budget().call(self.backend.tag, done, {tags.STATE: "draining"})
            except Exception as exc:  # the startds say Draining; the tag only helps after a restart
                log.warning("queue=%s tagging %d draining VMs failed: %s", self.queue.name, len(done),
                            self.backend.describe(exc))
        return done

    def _terminate(self, ids, why, unjoined=()) -> List[str]:
        """Terminate ``ids``; those of ``unjoined`` had not joined the pool at the status read, so
        the collector is asked again before each try (a back-off may last seconds): one that joined
        since may run a job already, and stays. If the collector cannot say, they all stay this
        cycle. Returns the ids terminated."""
        if not ids:
            return []
        unjoined, gone, down = set(unjoined), [], []

        def attempt():
            try:
                joined = self._joined() if unjoined else set()
            except _CollectorDown as exc:
                joined, down[:] = unjoined, [exc]
            gone[:] = [i for i in ids if i not in unjoined or i not in joined]
            if gone:
                self.backend.terminate(gone)

        try:
            self.budget().call(attempt)
        except Exception as exc:
            raise self._failure(exc, self.backend.kind(exc), f"terminate ({why})") from None
        if down:
            log.warning("queue=%s not terminating %d VMs that had not joined: collector: %s", self.queue.name,
                        len(unjoined), down[0])
        self.tracker().terminated(gone)
        return list(gone)

    def _joined(self) -> set:
        try:
            return set(lifecycle.startds(self.services, self.opts["collectorhost"], [tags.INSTANCE_ATTR]))
        except Exception as exc:  # htcondor2.HTCondorException
            raise _CollectorDown(str(exc)) from None

    def maintain(self, ctx):
        """Every cycle: terminate VMs that finished draining, never joined, or were lost;
        drain and terminate VMs of queues that no longer exist. Returns (action, ids, note)."""
        t = self.tracker()
        out = []
        done = drain.finished(ctx.pilots.records, ctx.now, t.lost_since, self.opts["boot_timeout"])
        failed = [vm.id for vm in done if vm.state == lifecycle.FAILED and vm.instance.state != "error"]
        broken = [vm.id for vm in done if vm.state == lifecycle.FAILED and vm.instance.state == "error"]
        orphans = t.orphans
        orphans_done = drain.finished(orphans, ctx.now, t.orphans_lost, self.opts["boot_timeout"])
        orphan_drain = [vm for vm in orphans if vm.state in (lifecycle.IDLE, lifecycle.BUSY)]
        # Not in the pool at the status read: one that joins before the terminate may run a job.
        unjoined = failed + [vm.id for vm in orphans_done
                             if vm.state == lifecycle.FAILED and vm.instance.state != "error"]
        ids = [vm.id for vm in done + orphans_done]
        if ids:
            gone = set(self._terminate(ids, "cleanup", unjoined))
            ids, failed = [i for i in ids if i in gone], [i for i in failed if i in gone]
            orphan_done = [vm.id for vm in orphans_done if vm.id in gone]
            if failed:
                out.append(("terminate", failed, f"boot timeout: not in the pool after {self.opts['boot_timeout']}s"))
            if broken:
                out.append(("terminate", broken, "boot failure: the cloud put them in error"))
            rest = [i for i in ids if i not in failed and i not in broken and i not in orphan_done]
            if rest:
                out.append(("terminate", rest, "drained"))
            if orphan_done:
                out.append(("terminate", orphan_done, "orphaned: their queue is no longer configured"))
        if orphan_drain:
            out.append(("drain", self._drain(orphan_drain), "orphaned: their queue is no longer configured"))
        if t.recovered:
            t.recovered = False
            out.append(("guard", [], "black-hole guard reset: a VM launched after the pause joined"))
        return out


def guard_settings(opts) -> lifecycle.GuardSettings:
    return lifecycle.GuardSettings(failures=opts["guard_failures"], window=opts["guard_window"],
                                   backoff=opts["guard_backoff"], backoff_max=opts["guard_backoff_max"],
                                   early_death=opts["early_death"])
