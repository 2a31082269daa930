import math

from provisioner.options import Option
from provisioner.sched.base import Step


class Scale(Step):
    """Multiply by a factor, rounding up (away from zero for retires too)."""
    name = "scale"
    options = {"factor": Option("float", 1.0, minimum=0)}

    def __call__(self, n, ctx):
        f = self.opts["factor"]
        out = math.ceil(n * f) if n >= 0 else -math.ceil(-n * f)
        return out, f"x{f:g}"


PLUGIN = Scale
