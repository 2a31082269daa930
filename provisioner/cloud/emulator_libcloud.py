"""EMULATED libcloud compute driver, answering from an ``EmulatedEC2``.

Contract, for the simulator and the demo: ``services.extra["libcloud"] =
driver_factory(ec2)`` makes every Libcloud queue, whatever its provider, launch into
the same emulated cloud as the EC2 queues. The driver answers the NodeDriver calls
``provisioner/cloud/libcloudapi.py`` makes: ``create_node`` (one node per call, or
``ex_mincount`` of them for the ``ec2`` provider; tags from ``ex_metadata``; user data
from ``ex_userdata``; ``ex_spot``; an availability zone from ``location``), ``list_nodes(ex_filters)``,
``destroy_node`` and ``ex_create_tags``. Nodes carry their tags in ``extra["tags"]``
and their size in ``extra["instance_type"]``; states map as libcloud's EC2 driver maps them. An EC2 error comes back as libcloud's
``BaseHTTPError`` with the code first in its message, as libcloud's drivers put it.
"""
from typing import Callable, List

from botocore.exceptions import ClientError
from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.base import Node
from libcloud.compute.drivers.ec2 import BaseEC2NodeDriver
from libcloud.compute.types import NodeState


def driver_factory(ec2) -> Callable:
    """``(provider, key, secret, **driver_options) -> driver``, as libcloudapi wants it."""
    def make(provider, key=None, secret=None, **ignored):
        return EmulatedDriver(ec2, provider)
    return make


class EmulatedDriver:
    def __init__(self, ec2, provider: str):
        self.ec2, self.provider = ec2, provider

    def create_node(self, name, size, image, location=None, ex_userdata=None, ex_metadata=None, ex_mincount=1,
                    ex_maxcount=1, ex_clienttoken=None, ex_spot=False, **ignored):
        tagset = ex_metadata or {}
        # another provider's image ids are not AMI ids: only EC2's are checked as EC2 checks them
        ami = image.id if self.provider == "ec2" else "ami-emulated"
        req = dict(ImageId=ami, InstanceType=size.id, MinCount=ex_mincount, MaxCount=ex_maxcount,
                   ClientToken=ex_clienttoken, UserData=ex_userdata or "",
                   TagSpecifications=[{"ResourceType": "instance",
                                       "Tags": [{"Key": k, "Value": v} for k, v in tagset.items()]}])
        if location is not None:
            req["Placement"] = {"AvailabilityZone": location.id}
        if ex_spot:
            req["InstanceMarketOptions"] = {"MarketType": "spot"}
        nodes = [self._node(i) for i in self._call(self.ec2.run_instances, **req)["Instances"]]
        return nodes if self.provider == "ec2" else nodes[0]

    def list_nodes(self, ex_filters=None) -> List[Node]:
        filters = [{"Name": k, "Values": [v]} for k, v in (ex_filters or {}).items()]
        out, token = [], None
        while True:
            page = self._call(self.ec2.describe_instances, Filters=filters, **({"NextToken": token} if token else {}))
            out += [self._node(i) for r in page["Reservations"] for i in r["Instances"]]
            token = page.get("NextToken")
            if not token:
                return out

    def destroy_node(self, node) -> bool:
        self._call(self.ec2.terminate_instances, InstanceIds=[node.id])
        return True

    def ex_create_tags(self, node, tags) -> bool:
        self._call(self.ec2.create_tags, Resources=[node.id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return True

    def _node(self, desc) -> Node:
        state = BaseEC2NodeDriver.NODE_STATE_MAP.get(desc["State"]["Name"], NodeState.UNKNOWN)  # as libcloud's
        return Node(id=desc["InstanceId"], name=desc["InstanceId"], state=state, public_ips=[],
                    private_ips=[], driver=self, created_at=desc["LaunchTime"],
                    extra={"tags": {t["Key"]: t["Value"] for t in desc.get("Tags", [])},
                           "instance_type": desc["InstanceType"]})

    @staticmethod
    def _call(op, **kwargs):
        try:
            return op(**kwargs)
        except ClientError as exc:
            err = exc.response["Error"]
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            raise BaseHTTPError(status, f"{err['Code']}: {err.get('Message', '')}") from None
