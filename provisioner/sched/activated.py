from provisioner.options import Option
from provisioner.sched.base import Step


class Activated(Step):
    """APF's older all-in-one step: ready - pending, then per-cycle and pending caps.

    Kept for old configs; new ones chain Ready with the limiter steps.
    """
    name = "activated"
    options = {
        "max_jobs_running": Option("int", None, minimum=0),
        "max_pilots_per_cycle": Option("int", None, minimum=0),
        "min_pilots_per_cycle": Option("int", 0, minimum=0),
        "max_pilots_pending": Option("int", None, minimum=0),
        "testmode.enabled": Option("bool", False),
        "testmode.pilots": Option("int", 0, minimum=0),
    }

    def __call__(self, n, ctx):
        o, p = self.opts, ctx.pilots
        if o["testmode.enabled"] and ctx.work.site_status == "test":
            return o["testmode.pilots"], "test mode"
        out = max(0, ctx.work.idle - p.pending)
        if o["max_pilots_pending"] is not None:
            out = min(out, max(0, o["max_pilots_pending"] - p.pending))
        if o["max_jobs_running"] is not None:
            out = min(out, max(0, o["max_jobs_running"] - p.pending - p.running))
        if o["max_pilots_per_cycle"] is not None:
            out = min(out, o["max_pilots_per_cycle"])
        out = max(out, o["min_pilots_per_cycle"])
        return out, f"activated={ctx.work.idle} pending={p.pending} running={p.running}"


PLUGIN = Activated
