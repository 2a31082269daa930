"""trivial: prints what the wrapper found and exits 0; checks a site's setup."""
from wrapperlib.log import redacted

from .base import Plugin


class Trivial(Plugin):
    def execute(self):
        opts = self.opts
        print("trivial: site=%s queue=%s grid=%s vo=%s pilottype=%s" % (
            opts.site, opts.queue, opts.grid, opts.vo, self.pilottype))
        print("trivial: node " + " ".join("%s=%s" % item for item in self.node.items()))
        print("trivial: other options: %s" % " ".join(redacted(self.args)))
        return 0
