"""APF's KeepNRunning retire, for the end of APF's usual chain.

KeepNRunning returns ``keep_running - (pending + running)``; put after Ready it
would turn every submission into a retire. This step applies it only when the
chain before asks for nothing and no job is idle, which is how an APF queue
gives back pilots (VMs) once its work is done: ``schedplugin = Ready,
MaxPerCycle, MaxPending, APFRetire``. Source: AutoPyFactory's KeepNRunning
sched plugin and its use at the end of a chain.
"""
from provisioner.options import Option
from provisioner.sched.base import Step


class APFRetire(Step):
    name = "apfretire"
    options = {"keep_running": Option("int", 0, minimum=0)}

    def __call__(self, n, ctx):
        if n != 0 or ctx.work.idle:
            return n, "work waiting" if ctx.work.idle else "submitting" if n > 0 else "retire asked before"
        have = ctx.pilots.pending + ctx.pilots.running
        out = min(0, self.opts["keep_running"] - have)
        return out, f"keep={self.opts['keep_running']} have={have}"


PLUGIN = APFRetire
