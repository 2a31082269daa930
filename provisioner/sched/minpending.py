from provisioner.options import Option
from provisioner.sched.base import Step


class MinPending(Step):
    """Keep at least ``minimum`` pilots pending."""
    name = "minpending"
    options = {"minimum": Option("int", None, minimum=0)}

    def __call__(self, n, ctx):
        m, pending = self.opts["minimum"], ctx.pilots.pending
        if m is None:
            return n, "no minimum"
        out = max(n, m - pending)
        return out, f"pending={pending} min={m}"


PLUGIN = MinPending
