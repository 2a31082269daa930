"""COBalD's LinearController behind a Standardiser, as a policy step. Ignores its input.

Source: the COBalD documentation (cobald.readthedocs.io, "Controllers" and
"Decorators"): ``LinearController(target, low_utilisation=0.5,
high_allocation=0.5, rate=1)`` lowers the pool's demand by ``rate`` per second
while utilisation is below ``low_utilisation``, else raises it by ``rate`` per
second while allocation is above ``high_allocation``; ``Standardiser(target,
minimum, maximum, granularity, surplus, backlog)`` clamps the demand, rounds it
to ``granularity`` and keeps it within ``surplus`` above and ``backlog`` below
the supply. COBalD does not look at the job queue: it reads the pool's
allocation (share of resources claimed) and utilisation (share in use). Here
both are the share of joined VMs running a job; an empty pool reports 1, as
COBalD's composites do when they have no children.

The demand persists across cycles; the step returns demand - (booting + joined),
so a negative result retires idle VMs (drained first by the target).
"""
import math

from provisioner.cloud import lifecycle
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
        self.demand = 0.0
        self.last = None

    def __call__(self, n, ctx):
        o, p = self.opts, ctx.pilots
        joined = p.running
        busy = p.states.get(lifecycle.BUSY, 0) + p.states.get(lifecycle.DRAINING, 0) if p.states else p.running
        share = busy / joined if joined else 1.0
        interval = ctx.now - self.last if self.last is not None else self.queue.interval
        self.last = ctx.now
        if share < o["low_utilisation"]:
            self.demand -= o["rate"] * interval
        elif share > o["high_allocation"]:
            self.demand += o["rate"] * interval
        supply = p.pending + p.running
        self.demand = self._standardise(self.demand, supply)
        out = int(self.demand) - supply
        return out, f"demand={self.demand:g} supply={supply} utilisation={share:.2f}"

    def _standardise(self, demand, supply):
        o = self.opts
        if o["surplus"] is not None:
            demand = min(demand, supply + o["surplus"])
        if o["backlog"] is not None:
            demand = max(demand, supply - o["backlog"])
        demand = max(demand, o["minimum"])
        if o["maximum"] is not None:
            demand = min(demand, o["maximum"])
        g = o["granularity"]
        return math.floor(demand / g) * g if demand < supply else math.ceil(demand / g) * g


PLUGIN = Cobald
