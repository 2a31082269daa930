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
        out = room if self.opts["allow_negative"] else max(0, room)
        if n < 0:
            out = n
        return out, f"have={have} max={m}"


PLUGIN = MaxToRun
