from provisioner.plugin import Plugin
from provisioner.source import StatusPlugin
from provisioner.status import Work


class WMSStatus(Plugin, StatusPlugin):
    family = "wmsstatus"

    def work(self, snapshot) -> Work:
        """This queue's share of a source snapshot."""
        raise NotImplementedError
