"""The project's default policy: exactly the VMs the idle jobs need, and idle VMs
kept only as long as a new one would take to boot. Ignores its input.

Launch: the idle jobs packed into the queue's instance types (first fit
decreasing), less the VMs that will take them already (booting, or joined and
idle). Nothing is held in reserve, so nothing idles waiting for work that may
never come.

Retire: a VM that goes idle is kept for ``linger`` seconds (default: the
``boot_time`` estimate) before it is retired. That is the ski-rental rule:
keeping a VM idle costs at most what a new boot would cost, so in the worst
case it wastes no more than twice the clairvoyant choice, and a job arriving
in that window starts at once instead of waiting a boot time. VMs retire only
while no job waits for them.
"""
from provisioner.cloud import lifecycle, sizing
from provisioner.options import Option
from provisioner.sched.base import Step


class Elastic(Step):
    name = "elastic"
    options = {
        "boot_time": Option("int", 180, minimum=0, help="expected seconds from launch to joining the pool"),
        "linger": Option("int", None, minimum=0, help="seconds an idle VM is kept (default: boot_time)"),
    }

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        try:
            self.types = sizing.queue_types(queue)
        except ValueError:
            self.types = None  # pilots: one idle job, one pilot

    def __call__(self, n, ctx):
        p = ctx.pilots
        needed = sizing.pack(ctx.work.jobs, self.types).total if self.types else ctx.work.idle
        booting = p.states.get(lifecycle.BOOTING, 0) if p.states else p.pending
        idle = p.states.get(lifecycle.IDLE, 0)
        out = needed - booting - idle
        reason = f"needed={needed} booting={booting} idle={idle}"
        if out < 0:
            linger = self.opts["linger"] if self.opts["linger"] is not None else self.opts["boot_time"]
            stale = sum(1 for vm in p.records if _idle_for(vm, ctx.now) >= linger)
            out = max(out, -stale)
            reason += f" idle>{linger}s={stale}"
        return out, reason


def _idle_for(vm, now) -> float:
    if getattr(vm, "state", None) != lifecycle.IDLE or not vm.machines:
        return -1.0
    return now - (vm.machines[0].get("EnteredCurrentState") or now)


PLUGIN = Elastic
