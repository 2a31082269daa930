from provisioner.options import Option
from provisioner.sched.base import Step


class MinPerCycle(Step):
    """At least ``minimum`` submitted in one cycle (a retire is kept as it is)."""
    name = "minpercycle"
    options = {"minimum": Option("int", None, minimum=0)}

    def __call__(self, n, ctx):
        m = self.opts["minimum"]
        if m is None or n < 0 or n >= m:
            return n, "at or over minimum" if m is not None and n >= 0 else "no minimum"
        return m, f"raised to {m}"


PLUGIN = MinPerCycle
