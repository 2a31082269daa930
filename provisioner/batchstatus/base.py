from provisioner.plugin import Plugin
from provisioner.source import StatusPlugin
from provisioner.status import Pilots


class BatchStatus(Plugin, StatusPlugin):
    family = "batchstatus"

    def pilots(self, snapshot) -> Pilots:
        """This queue's share of a source snapshot."""
        raise NotImplementedError
