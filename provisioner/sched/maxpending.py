from provisioner.options import Option
from provisioner.sched.base import Step, limit


class MaxPending(Step):
    """Keep pending pilots at or under ``maximum`` (as APF: no cap while none is pending).

    APF returned maximum - pending even when negative, silently retiring pilots;
    here a limiter only limits, unless ``allow_negative`` asks for the retire.
    """
    name = "maxpending"
    options = {"maximum": Option("int", None, minimum=0), "allow_negative": Option("bool", False)}

    def __call__(self, n, ctx):
        m, pending = self.opts["maximum"], ctx.pilots.pending
        if m is None:
            return n, "no maximum"
        if pending == 0:
            return n, "nothing pending"
        return limit(n, "pending", pending, m, self.opts["allow_negative"])


PLUGIN = MaxPending
