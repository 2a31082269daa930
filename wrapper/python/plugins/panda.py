"""panda: runs a PanDA pilot, pilot.py -q QUEUE -s SITE [--url SERVER], with the
options neither stage knows appended; downloads it like generic."""
import sys

from .generic import Generic


class Panda(Generic):
    entry = "pilot.py"

    def command(self):
        opts = self.opts
        argv = [sys.executable, self.entry_path, "-q", opts.queue, "-s", opts.site]
        if opts.serverurl:
            argv += ["--url", opts.serverurl]
        return argv + self.args
