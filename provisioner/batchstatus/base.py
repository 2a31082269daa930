from provisioner.plugin import Plugin
from provisioner.source import StatusPlugin
from provisioner.status import Pilots


class BatchStatus(Plugin, StatusPlugin):
    family = "batchstatus"
    #: its pilots outlive a removed queue and need the factory to end them (VMs): see winddown;
    #: such a plugin also answers ``unmanaged_by`` (batchstatus/cloud.py)
    can_wind_down = False
    #: set on the status of a removed queue kept to end its pilots
    winding_down = False

    def pilots(self, snapshot) -> Pilots:
        """This queue's share of a source snapshot."""
        raise NotImplementedError

    def others(self, snapshot, names) -> int:
        """Pending + running pilots in the snapshot of queues not in ``names`` (a disabled
        queue's, say): MaxPerFactory counts them, as APF's did."""
        return 0
