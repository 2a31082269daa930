import math
from fractions import Fraction

from provisioner.options import Option
from provisioner.sched.base import Step


class Scale(Step):
    """Multiply by a factor, rounding up (away from zero for retires too)."""
    name = "scale"
    options = {"factor": Option("float", 1.0, minimum=0)}

    def __call__(self, n, ctx):
        f = self.opts["factor"]
        # the factor as written: in floats 50 * 0.14 is 7.000000000000001, which ceil makes 8
        exact = abs(n) * Fraction(repr(f))
        out = math.ceil(exact) if n >= 0 else -math.ceil(exact)
        return out, f"x{f:g}"


PLUGIN = Scale
