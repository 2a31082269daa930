from provisioner.options import Option
from provisioner.sched.base import Step, limit


class MaxToRun(Step):
    """Keep pending + running at or under ``maximum``; retires only with ``allow_negative``."""
    name = "maxtorun"
    options = {"maximum": Option("int", None, minimum=0), "allow_negative": Option("bool", False)}

    def __call__(self, n, ctx):
        m = self.opts["maximum"]
        if m is None:
            return n, "no maximum"
        return limit(n, "have", ctx.pilots.pending + ctx.pilots.running, m, self.opts["allow_negative"])


PLUGIN = MaxToRun
