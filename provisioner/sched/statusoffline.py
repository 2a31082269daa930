from provisioner.options import Option
from provisioner.sched.base import Step


class StatusOffline(Step):
    """Send at most ``pilots`` (default 0) while the site is offline. APF sent ``pilots``
    whatever came before; a cap sends none to an offline site without work, and lets a
    retire through."""
    name = "statusoffline"
    options = {"pilots": Option("int", 0, minimum=0)}

    def __call__(self, n, ctx):
        if ctx.work.site_status == "offline":
            return min(n, self.opts["pilots"]), "site offline"
        return n, f"site {ctx.work.site_status}"


PLUGIN = StatusOffline
