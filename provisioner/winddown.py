"""A VM queue removed by a reload while no remaining queue reads its cloud account.

The orphan cleanup of the Cloud batch status runs in a queue that lists the same
account; with none left, the removed queue's VMs would be left to their own idle
shutdown. So the removed queue stays, launching nothing, and its VMs are drained and
terminated as orphans are (busy ones once their jobs end); it goes with the last one.
"""
import logging

from provisioner.queue import Queue
from provisioner.sched.base import Context
from provisioner.source import Source
from provisioner.status import Decision, StepResult, Work
from provisioner.wmsstatus.base import WMSStatus

log = logging.getLogger("provisioner")


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


def carried(queues, config) -> list:
    """The configurations of the queues that a reload to ``config`` removes and whose
    VMs may need winding down (the factory keeps those whose account no queue reads)."""
    names = {q.name for q in config.queues}
    return [q.cfg for q in queues if q.name not in names and q.batch.can_wind_down]
