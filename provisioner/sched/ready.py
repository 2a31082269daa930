from provisioner.options import Option
from provisioner.sched.base import Step


class Ready(Step):
    """Idle jobs (less an offset) not yet covered by pending pilots. Ignores its input."""
    name = "ready"
    options = {"offset": Option("int", 0, help="idle jobs to leave uncovered")}

    def __call__(self, n, ctx):
        ready = ctx.work.idle - self.opts["offset"]
        out = max(0, ready - ctx.pilots.pending)
        return out, f"ready={ready} pending={ctx.pilots.pending}"


PLUGIN = Ready
