from provisioner.options import Option
from provisioner.sched.base import Step


def _share(ratio):
    if ratio > 1:  # a share of pilots: above 1 the brake could never act
        return f"must be at most 1 (a share of pilots), got {ratio:g}"
    return None


class Throttle(Step):
    """Black-hole brake: when too many recent pilots died young, submit only a few.

    Of the pilots that ended within ``interval`` seconds, if the share that ran
    less than ``maxtime`` seconds exceeds ``ratio``, submit at most ``submit``.
    """
    name = "throttle"
    options = {
        "interval": Option("int", 3600, minimum=1),
        "maxtime": Option("int", 60, minimum=0),
        "ratio": Option("float", 0.5, minimum=0, check=_share),
        "submit": Option("int", 1, minimum=0),
        "minpilots": Option("int", 5, minimum=1, help="ended pilots needed before judging"),
    }

    def __call__(self, n, ctx):
        since = ctx.now - self.opts["interval"]
        ended = [run for end, run in ctx.pilots.recent if end >= since]
        if n <= 0:
            return n, "nothing to throttle"
        if len(ended) < self.opts["minpilots"]:
            return n, f"{len(ended)} pilots ended recently, too few to judge"
        short = sum(1 for run in ended if run < self.opts["maxtime"])
        share = short / len(ended)
        if share > self.opts["ratio"]:
            return min(n, self.opts["submit"]), f"{short}/{len(ended)} pilots died young"
        return n, f"{short}/{len(ended)} short pilots"


PLUGIN = Throttle
