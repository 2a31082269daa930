"""The EC2 calls of the ec2 target and the Cloud batchstatus, through boto3.

The client comes from ``services.extra["ec2"]`` when present (the emulator, the
simulator), else from boto3's usual credential chain: the named profile, the
environment, the instance role, or the credentials file given in the config.
"""
import difflib
import functools
import hashlib
import re
from typing import List

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from provisioner.cloud import retry, tags
from provisioner.cloud.lifecycle import Instance
from provisioner.errors import ProvisionerError

# Answers meaning "not this type/place now": try the next one in preference order.
FALLBACK = retry.CAPACITY | {"SpotMaxPriceTooLow", "Unsupported", "InsufficientFreeAddressesInSubnet"}
# The account's limit for the type's family (or its spot requests): a smaller launch may fit.
QUOTA = {"VcpuLimitExceeded", "InstanceLimitExceeded", "MaxSpotInstanceCountExceeded"}
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")  # the form of every AWS region name
_LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]


@functools.lru_cache(maxsize=1)
def _ec2_regions() -> List[str]:
    """The EC2 regions botocore knows (read once: a session takes some 80 ms)."""
    import botocore.session

    s = botocore.session.Session()
    return sorted({r for p in s.get_available_partitions() for r in s.get_available_regions("ec2", p)})


def client_token(token: str) -> str:
    """EC2 takes at most 64 characters; a longer token keeps its head and a digest of the
    whole, so tokens that share 64 leading characters (a long factory id) stay distinct."""
    if len(token) <= 64:
        return token
    return f"{token[:23]}-{hashlib.sha256(token.encode()).hexdigest()[:40]}"


def make_client(opts, services):
    kwargs = {"region_name": opts["region"]}
    if opts["endpoint_url"]:
        kwargs["endpoint_url"] = opts["endpoint_url"]
    factory = services.extra.get("ec2")
    if factory is not None:
        return factory(**kwargs)
    import boto3
    import botocore.config
    import botocore.session

    session = botocore.session.Session(profile=opts["profile"])
    if opts["credentials_file"]:
        session.set_config_variable("credentials_file", opts["credentials_file"])
    # Our own back-off (retry.Budget) decides retries, within the cycle's budget.
    config = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                                    read_timeout=60)
    return boto3.Session(botocore_session=session).client("ec2", config=config, **kwargs)


class EC2Backend:
    def __init__(self, opts, services):
        self.opts, self.services = opts, services
        self.key = ("ec2", opts["region"], opts["endpoint_url"], opts["profile"], opts["credentials_file"])
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = make_client(self.opts, self.services)
        return self._client

    def validate(self, where: str) -> None:
        o = self.opts
        if not o["ami_id"].startswith("ami-"):
            raise ProvisionerError(f"{where}ami_id: {o['ami_id']!r} is not an AMI id (ami-...)")
        import botocore.session
        from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

        # botocore's own test: failing there, it would skip every cycle of a factory that started
        url = o["endpoint_url"]
        if url and not (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
            raise ProvisionerError(f"{where}endpoint_url: not a URL botocore takes (http:// or https://host[:port])")
        if not o["endpoint_url"]:  # else a private cloud's own region names
            # A region newer than this botocore still has the AWS form (us-east-1); a typo seldom does.
            if o["region"] not in _ec2_regions() and not _REGION.fullmatch(o["region"]):
                close = difflib.get_close_matches(o["region"], _ec2_regions(), 1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ProvisionerError(f"{where}region: {o['region']!r} is not an EC2 region{hint}")
        if "ec2" in self.services.extra:  # an emulated cloud takes no credentials
            return
        # Checked here, not at the first call, where botocore names neither file nor option.
        session = botocore.session.Session()  # a fresh one: a session reads its files once
        if o["credentials_file"]:
            try:
                with open(o["credentials_file"]):
                    pass
            except OSError as exc:
                raise ProvisionerError(f"{where}credentials_file: cannot read {o['credentials_file']}: "
                                       f"{exc.strerror}") from None
            session.set_config_variable("credentials_file", o["credentials_file"])
        if o["profile"] or o["credentials_file"]:
            try:
                profiles = session.available_profiles
            except BotoCoreError as exc:  # ConfigParseError names the file, never its values
                bad = getattr(exc, "kwargs", {}).get("path")
                key = "credentials_file" if bad and bad == o["credentials_file"] else "profile"
                raise ProvisionerError(f"{where}{key}: {exc}") from None
            if o["profile"] and o["profile"] not in profiles:
                raise ProvisionerError(f"{where}profile: no profile {o['profile']!r} in "
                                       f"{o['credentials_file'] or '~/.aws/credentials'} or the AWS config file")
            if not o["profile"] and "default" not in profiles:
                raise ProvisionerError(f"{where}credentials_file: {o['credentials_file']} has no [default] "
                                       f"profile: set profile to one of its sections")

    def choices(self, types):
        """(instance type, subnet or zone) in preference order: types first, then places."""
        places = self.opts["subnets"] or self.opts["zones"] or [None]
        return [(t, p) for t in types for p in places]

    def launch(self, count, itype, place, token, tagset, user_data) -> List[str]:
        o = self.opts
        tag_list = [{"Key": k, "Value": v} for k, v in tagset.items()]
        req = dict(ImageId=o["ami_id"], InstanceType=itype.name, MinCount=count, MaxCount=count,
                   ClientToken=client_token(token), UserData=user_data, InstanceInitiatedShutdownBehavior="terminate",
                   TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list},
                                      {"ResourceType": "volume", "Tags": tag_list}])
        if place and place.startswith("subnet-"):
            req["SubnetId"] = place
        elif place:
            req["Placement"] = {"AvailabilityZone": place}
        if o["market"] == "spot":
            spot = {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}
            if o["spot_max_price"] is not None:
                spot["MaxPrice"] = str(o["spot_max_price"])
            req["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": spot}
        if o["security_group_ids"]:
            req["SecurityGroupIds"] = o["security_group_ids"]
        if o["keypair"]:
            req["KeyName"] = o["keypair"]
        if o["iam_instance_profile"]:
            req["IamInstanceProfile"] = {"Name": o["iam_instance_profile"]}
        answer = self.client.run_instances(**req)
        ids = [i["InstanceId"] for i in answer["Instances"]]
        crash_hook(ids)
        return ids

    def launched(self, launch_id: str) -> List[str]:
        return [i.id for i in self._describe([{"Name": f"tag:{tags.LAUNCH}", "Values": [launch_id]}])]

    def list(self, factory_id: str) -> List[Instance]:
        return self._describe([{"Name": f"tag:{tags.FACTORY}", "Values": [factory_id]}])

    def _describe(self, filters) -> List[Instance]:
        filters = filters + [{"Name": "instance-state-name", "Values": _LIVE}]
        out, token = [], None
        while True:
            kwargs = {"Filters": filters, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = self.client.describe_instances(**kwargs)
            for res in page.get("Reservations", []):
                for i in res["Instances"]:
                    t = {x["Key"]: x["Value"] for x in i.get("Tags", [])}
                    out.append(Instance(i["InstanceId"], t.get(tags.QUEUE, ""), t.get(tags.LAUNCH, ""),
                                        i["InstanceType"], i["State"]["Name"], i["LaunchTime"].timestamp(),
                                        t.get(tags.STATE) == "draining", t.get(tags.COLLECTOR)))
            token = page.get("NextToken")
            if not token:
                return out

    def terminate(self, ids) -> None:
        for start in range(0, len(ids), 1000):
            self.client.terminate_instances(InstanceIds=ids[start:start + 1000])

    def tag(self, ids, tagset) -> None:
        for start in range(0, len(ids), 1000):
            self.client.create_tags(Resources=ids[start:start + 1000],
                                    Tags=[{"Key": k, "Value": v} for k, v in tagset.items()])

    # --- errors -----------------------------------------------------------------------------
    transient = staticmethod(retry.transient)
    ambiguous = staticmethod(retry.ambiguous)

    def kind(self, exc) -> str:
        """fallback (try the next type/place), quota (launch fewer), transient (retry later) or
        fatal (pause the queue)."""
        if isinstance(exc, ClientError) and retry.error_code(exc) in FALLBACK:
            return "fallback"
        if isinstance(exc, ClientError) and retry.error_code(exc) in QUOTA:
            return "quota"
        if retry.transient(exc):
            return "transient"
        return "fatal"

    @staticmethod
    def describe(exc) -> str:
        if isinstance(exc, ClientError):
            message = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())
            return f"{retry.error_code(exc)}: {message}"
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return "no usable credentials (profile, environment, instance role or credentials_file)"
        if isinstance(exc, BotoCoreError):
            return " ".join(str(exc).split())
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def crash_hook(ids) -> None:
    """Fault injection for the crash-recovery test: exit as if killed right after the
    cloud answered, before the ledger records the ids (PROVISIONER_CRASH_AFTER_LAUNCH=1)."""
    import os

    if os.environ.get("PROVISIONER_CRASH_AFTER_LAUNCH") == "1":
        os._exit(86)

