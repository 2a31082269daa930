from provisioner.options import Option
from provisioner.sched.base import Step


class Activated(Step):
    """APF's older all-in-one step, with APF's option names and order: ready - pending,
    capped by max_jobs_torun, raised to min_pilots_pending, capped per cycle, raised to
    min_pilots_per_cycle, capped by max_pilots_pending; 0 while the site is offline.

    Unlike APF, never below 0 (it never retires). Kept for old configs; new ones chain
    Ready with the limiter steps.
    """
    name = "activated"
    # APF's shipped defaults set it: its number for a cycle with a status missing, which is skipped here.
    ignored_options = ("default",)
    options = {
        "max_jobs_torun": Option("int", None, minimum=0, help="pending + running pilots at most"),
        "min_pilots_pending": Option("int", None, minimum=0),
        "max_pilots_per_cycle": Option("int", None, minimum=0),
        "min_pilots_per_cycle": Option("int", None, minimum=0),
        "max_pilots_pending": Option("int", None, minimum=0),
        "testmode.allowed": Option("bool", False, help="send testmode.pilots while the site is in test"),
        "testmode.pilots": Option("int", 0, minimum=0),
        "testmode.max_pending": Option("int", 10, minimum=0, help="in test, none while more are pending"),
    }

    def __call__(self, n, ctx):
        o, p, site = self.opts, ctx.pilots, ctx.work.site_status
        if site == "offline":
            return 0, "site offline"
        if site == "test" and o["testmode.allowed"]:
            if p.pending > o["testmode.max_pending"]:
                return 0, f"site in test, pending={p.pending} over {o['testmode.max_pending']}"
            return o["testmode.pilots"], "site in test"
        out = max(0, ctx.work.idle - p.pending)
        if o["max_jobs_torun"] is not None:
            out = min(out, o["max_jobs_torun"] - p.pending - p.running)
        if o["min_pilots_pending"] is not None:
            out = max(out, o["min_pilots_pending"] - p.pending)
        if o["max_pilots_per_cycle"] is not None:
            out = min(out, o["max_pilots_per_cycle"])
        if o["min_pilots_per_cycle"] is not None:
            out = max(out, o["min_pilots_per_cycle"])
        if o["max_pilots_pending"] is not None:
            out = min(out, o["max_pilots_pending"] - p.pending)
        return max(0, out), f"activated={ctx.work.idle} pending={p.pending} running={p.running}"


PLUGIN = Activated
