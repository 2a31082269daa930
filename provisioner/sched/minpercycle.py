from provisioner.options import Option
from provisioner.sched.base import Step


class MinPerCycle(Step):
    """At least ``minimum`` submitted in one cycle. Unlike APF, a retire is kept as it is:
    APF's max(n, minimum) turned every retire into a submit."""
    name = "minpercycle"
    options = {"minimum": Option("int", None, minimum=0)}

    def __call__(self, n, ctx):
        m = self.opts["minimum"]
        if m is None:
            return n, "no minimum"
        if n < 0:
            return n, f"retire kept (min={m} is for submits)"
        if n >= m:
            return n, f"at or over {m}"
        return m, f"raised to {m}"


PLUGIN = MinPerCycle
