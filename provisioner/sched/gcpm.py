"""gcpm's idle buffer, as a policy step. Ignores its input.

Source: the gcpm README (github.com/mickaneda/gcpm, "Google Cloud Platform Condor
Pool Manager"): for each machine type it creates workers while there are idle
jobs they can run, keeps ``idle`` extra workers ready (the idle buffer), never
more than ``max``, and removes workers that sit idle. Here: the idle jobs packed
into the queue's instance types, plus ``buffer`` VMs, less what is booting or
idle; a negative result retires idle VMs beyond the buffer.

VM queues only (``batchstatusplugin = Cloud``): the buffer is counted in idle VMs,
and only the VM lifecycle tells an idle worker from a busy one. A pilot's batch
status does not, so on a pilot queue every cycle would see no idle worker and
submit the buffer again; such a queue is refused.
"""
from provisioner.cloud import lifecycle, sizing
from provisioner.errors import ProvisionerError
from provisioner.options import Option
from provisioner.sched.base import Step


class Gcpm(Step):
    name = "gcpm"
    options = {"buffer": Option("int", 1, minimum=0, help="idle workers kept ready"),
               "maximum": Option("int", None, minimum=0, help="workers at most")}

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        if queue.batchstatus.name != "cloud":
            raise ProvisionerError(f"sched Gcpm: needs the VM states of batchstatusplugin = Cloud (its buffer is "
                                   f"of idle VMs); batchstatus {queue.batchstatus.name} has none")
        self.types = sizing.queue_types(queue)

    def __call__(self, n, ctx):
        p = ctx.pilots
        needed = sizing.needed(ctx.work, self.types)
        idle = p.states.get(lifecycle.IDLE, 0)
        out = needed + self.opts["buffer"] - p.pending - idle
        if self.opts["maximum"] is not None:
            out = min(out, self.opts["maximum"] - p.pending - p.running)
        if out < 0:
            out = max(out, -idle)
        return out, f"needed={needed} buffer={self.opts['buffer']} booting={p.pending} idle={idle}"


PLUGIN = Gcpm
