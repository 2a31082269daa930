"""COBalD's LinearController behind a Standardiser, as a policy step. Ignores its input.

Source: the COBalD documentation (cobald.readthedocs.io, "Controllers" and
"Decorators"): ``LinearController(target, low_utilisation=0.5,
high_allocation=0.5, rate=1)`` lowers the pool's demand by ``rate`` per second
while utilisation is below ``low_utilisation``, else raises it by ``rate`` per
second while allocation is above ``high_allocation``; ``Standardiser(target,
minimum, maximum, granularity, surplus, backlog)`` keeps the demand within
``surplus`` above and ``backlog`` below the supply, then within ``minimum`` and
``maximum``, and hands the pool that demand rounded down to ``granularity``.
COBalD does not look at the job queue: it reads the pool's allocation (share
of resources claimed) and utilisation (share in use). Here both are the share
of joined VMs running a job; an empty pool reports 1, as COBalD's composites do
when they have no children.

The demand persists across cycles; the step returns the rounded demand less
(booting + joined), so a negative result retires idle VMs (drained first by the
target).

VM queues only (``batchstatusplugin = Cloud``): COBalD reads each drone's
utilisation from its startd, which here only the VM lifecycle provides. A pilot's
batch status knows only that the pilot runs, so every pilot would count as busy
and the demand would rise for ever; such a queue is refused.
"""
import math

from provisioner.cloud import lifecycle
from provisioner.errors import ProvisionerError
from provisioner.options import Option
from provisioner.sched.base import Step


class Cobald(Step):
    name = "cobald"
    options = {
        "low_utilisation": Option("float", 0.5, minimum=0),
        "high_allocation": Option("float", 0.5, minimum=0),
        "rate": Option("float", 1.0, minimum=0, help="demand change per second"),
        "minimum": Option("float", 0.0, minimum=0),
        "maximum": Option("float", None, minimum=0),
        "granularity": Option("int", 1, minimum=1),
        "surplus": Option("float", None, minimum=0, help="demand at most supply + surplus"),
        "backlog": Option("float", None, minimum=0, help="demand at least supply - backlog"),
    }

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        if queue.batchstatus.name != "cloud":
            raise ProvisionerError(f"sched Cobald: needs the VM states of batchstatusplugin = Cloud (busy VMs are "
                                   f"its utilisation); batchstatus {queue.batchstatus.name} has none")
        self.demand = 0.0
        self.last = None

    def __call__(self, n, ctx):
        o, p = self.opts, ctx.pilots
        joined = p.running
        busy = p.states.get(lifecycle.BUSY, 0) + p.states.get(lifecycle.DRAINING, 0)
        share = busy / joined if joined else 1.0
        interval = ctx.now - self.last if self.last is not None else self.queue.interval
        self.last = ctx.now
        if share < o["low_utilisation"]:
            self.demand -= o["rate"] * interval
        elif share > o["high_allocation"]:
            self.demand += o["rate"] * interval
        supply = p.pending + p.running
        g = o["granularity"]
        # as COBalD's Standardiser: the pool gets the demand rounded down to the granularity, the
        # controller goes on from the unrounded one, so rounding never adds to the rate
        target = self._clamp(math.floor(self.demand / g) * g, supply)
        self.demand = self._clamp(self.demand, supply)
        out = int(target) - supply
        return out, f"demand={self.demand:g} target={target:g} supply={supply} utilisation={share:.2f}"

    def _clamp(self, demand, supply):
        """Within backlog below and surplus above the supply, then minimum and maximum, which win."""
        o = self.opts
        if o["surplus"] is not None:
            demand = min(demand, supply + o["surplus"])
        if o["backlog"] is not None:
            demand = max(demand, supply - o["backlog"])
        demand = max(demand, o["minimum"])
        if o["maximum"] is not None:
            demand = min(demand, o["maximum"])
        return demand


PLUGIN = Cobald
