from provisioner.options import Option
from provisioner.sched.base import Step


class MaxToRun(Step):
    """Keep pending + running at or under ``maximum``; retires only with ``allow_negative``."""
    name = "maxtorun"
    options = {"maximum": Option("int", None, minimum=0), "allow_negative": Option("bool", False)}

    def __call__(self, n, ctx):
        m = self.opts["maximum"]
        if m is None:
            return n, "no maximum"
        have = ctx.pilots.pending + ctx.pilots.running
        room = m - have
        if n <= room:
            return n, f"have={have} under {m}"
        if room >= 0:
            return room, f"have={have} max={m}"
        if self.opts["allow_negative"]:
            return room, f"have={have} over {m}: retire {-room}"
        return min(n, 0), f"have={have} over {m}"  # a limiter only limits: a retire asked before passes


PLUGIN = MaxToRun
