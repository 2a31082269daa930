"""VMs on EC2 through boto3: one run_instances per queue and cycle, spot or on-demand,
instance types and subnets/zones in preference order with fallback on capacity."""
from provisioner.cloud.ec2api import EC2Backend
from provisioner.cloud.target import OPTIONS, CloudTarget
from provisioner.options import Option


class EC2(CloudTarget):
    name = "ec2"
    options = {**OPTIONS,
               "region": Option("str", "us-east-1"),
               "endpoint_url": Option("str", None, help="another EC2 endpoint (tests, private clouds)"),
               "profile": Option("str", None, help="boto3 profile (default: the usual credential chain)"),
               "credentials_file": Option("str", None, help="an AWS credentials file to read the profile from"),
               "ami_id": Option("str", required=True),
               "subnets": Option("list", [], help="subnet ids in preference order"),
               "zones": Option("list", [], help="availability zones in preference order (without subnets)"),
               "security_group_ids": Option("list", []),
               "keypair": Option("str", None),
               "iam_instance_profile": Option("str", None)}

    @classmethod
    def make_backend(cls, queue, opts, services):
        return EC2Backend(opts, services)


PLUGIN = EC2
