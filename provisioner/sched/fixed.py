from provisioner.options import Option
from provisioner.sched.base import Step


class Fixed(Step):
    """A fixed number of pilots every cycle. Ignores its input."""
    name = "fixed"
    options = {"pilotspercycle": Option("int", 0, minimum=0)}

    def __call__(self, n, ctx):
        return self.opts["pilotspercycle"], "fixed"


PLUGIN = Fixed
