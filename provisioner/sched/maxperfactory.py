from provisioner.options import Option
from provisioner.sched.base import Step


class MaxPerFactory(Step):
    """Cap pending + running over every queue of the factory.

    The maximum comes from ``sched.maxperfactory.maximum`` or else from
    ``maxperfactory.maximum`` in ``[Factory]`` (APF's place for it), which the
    config loader copies here.
    """
    name = "maxperfactory"
    options = {"maximum": Option("int", None, minimum=0)}

    def __call__(self, n, ctx):
        m = self.opts["maximum"]
        if m is None or n <= 0:
            return n, "no factory maximum" if m is None else "nothing to cap"
        if ctx.factory_pilots is None:
            return 0, f"factory total unknown (a queue's pilot status failed): holding under {m}"
        room = max(0, m - ctx.factory_pilots)
        return min(n, room), f"factory has {ctx.factory_pilots} of {m}"


PLUGIN = MaxPerFactory
