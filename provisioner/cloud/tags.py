"""Tag keys every VM and its volumes carry, so a restarted factory finds its own."""
from typing import Optional

FACTORY = "provisioner:factory"
QUEUE = "provisioner:queue"
LAUNCH = "provisioner:launch"
COLLECTOR = "provisioner:collector"  # collectorhost, "" for the local one: which pool's queues own it
STATE = "provisioner:state"  # "draining" once the factory asked the VM's startd to drain

#: the startd attribute carrying the VM's instance id (set by the user-data)
INSTANCE_ATTR = "EC2InstanceId"


def for_launch(factory_id: str, queue: str, launch_id: str, collector: Optional[str]) -> dict:
    return {FACTORY: factory_id, QUEUE: queue, LAUNCH: launch_id, COLLECTOR: collector or "",
            "Name": f"{factory_id}/{queue}"}
