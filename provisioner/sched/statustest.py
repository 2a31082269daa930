from provisioner.options import Option
from provisioner.sched.base import Step


class StatusTest(Step):
    """Send ``pilots`` while the site is in test, whatever came before."""
    name = "statustest"
    options = {"pilots": Option("int", 0, minimum=0)}

    def __call__(self, n, ctx):
        if ctx.work.site_status == "test":
            return self.opts["pilots"], "site in test"
        return n, f"site {ctx.work.site_status}"


PLUGIN = StatusTest
