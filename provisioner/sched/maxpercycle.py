from provisioner.options import Option
from provisioner.sched.base import Step


class MaxPerCycle(Step):
    """At most ``maximum`` submitted in one cycle."""
    name = "maxpercycle"
    options = {"maximum": Option("int", None, minimum=0)}

    def __call__(self, n, ctx):
        m = self.opts["maximum"]
        if m is None:
            return n, "no maximum"
        if n <= m:
            return n, "under cap"
        return m, f"capped at {m}"


PLUGIN = MaxPerCycle
