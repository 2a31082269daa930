from provisioner.options import Option
from provisioner.sched.base import Step


class KeepNRunning(Step):
    """Hold pending + running at ``keep_running`` (or at the input when unset).

    The one step whose purpose is to retire: a negative result retires the surplus.
    """
    name = "keepnrunning"
    options = {"keep_running": Option("int", None, minimum=0)}

    def __call__(self, n, ctx):
        target = self.opts["keep_running"]
        target = n if target is None else target
        have = ctx.pilots.pending + ctx.pilots.running
        return target - have, f"keep={target} have={have}"


PLUGIN = KeepNRunning
