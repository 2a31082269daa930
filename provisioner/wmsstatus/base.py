from provisioner.plugin import Plugin
from provisioner.source import StatusPlugin
from provisioner.status import Work


class WMSStatus(Plugin, StatusPlugin):
    family = "wmsstatus"

    def work(self, snapshot) -> Work:
        """This queue's share of a source snapshot."""
        raise NotImplementedError

    def selects(self):
        """What picks this queue's jobs out of its source, comparable between queues (None:
        cannot tell): two queues picking alike each provision for the same jobs."""
        return None
