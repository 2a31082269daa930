"""VMs needed: the idle jobs packed into the queue's instance types, after the VMs that
will take them already (booting, or joined and idle, each with its own type's room).
Ignores its input.

Negative when more VMs sit idle than the idle jobs need: retire that many (only idle
ones; the target drains them first). Jobs that fit no instance type are reported in
the reason, not counted. Use it first in a VM queue's chain, e.g.
``schedplugin = VMDemand, MaxPerCycle, MaxToRun``.
"""
from provisioner.cloud import lifecycle, sizing
from provisioner.errors import ProvisionerError
from provisioner.sched.base import Step


class VMDemand(Step):
    name = "vmdemand"
    options = {}

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        try:
            self.types = sizing.queue_types(queue)
        except ValueError as exc:
            raise ProvisionerError(f"sched VMDemand: {exc}") from None

    def __call__(self, n, ctx):
        packing = sizing.pack_work(ctx.work, self.types, sizing.open_vms(ctx.pilots, self.types))
        states = ctx.pilots.states
        if states:
            booting, idle = states.get(lifecycle.BOOTING, 0), states.get(lifecycle.IDLE, 0)
        else:  # a grid-universe target (condorec2): its pending pilots are the booting VMs
            booting, idle = ctx.pilots.pending, 0
        out = packing.net
        if out < 0:
            out = max(out, -idle)
        vms = " ".join(f"{k}:{v}" for k, v in packing.vms.items()) or "none"
        reason = f"jobs={ctx.work.idle} vms={vms} booting={booting} idle={idle}"
        if packing.unfit:
            reason += f" unfit={packing.unfit}"
        if ctx.pilots.pause and ctx.now < ctx.pilots.pause[0]:
            reason += f" paused ({ctx.pilots.pause[1]})"
        return out, reason


PLUGIN = VMDemand
