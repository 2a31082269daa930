"""EMULATED EC2, in process and in the injected (virtual or wall) time.

Contract, for the simulator and tests:

* ``EmulatedEC2(clock, pool=None, types=None, boot_time=90.0, boot_failure_rate=0.0,
  seed=0, capacity=None, spot_capacity=None, page_size=1000, region="us-east-1",
  vcpu_quota=None)``.
  ``types`` maps an instance type to ``(cpus, memory MB, gpus, price per hour)``
  (default: ``provisioner.cloud.sizing.CATALOGUE``); an unknown type is refused like
  AWS does. ``boot_time`` is seconds or a callable ``f(rng, instance_type) -> seconds``.
  ``boot_failure_rate`` is the chance a VM boots but never joins the pool (a broken
  image). ``capacity`` / ``spot_capacity`` map a type to how many more VMs of that
  market may start (missing: unlimited); beyond it ``run_instances`` raises
  ``InsufficientInstanceCapacity`` (spot: ``InsufficientInstanceCapacity`` too).
  ``vcpu_quota``: the account's limit on the vCPUs of its pending and running
  instances, all types and markets; a launch beyond it raises ``VcpuLimitExceeded``
  and starts nothing, as AWS does.
* ``services.extra["ec2"] = emulated.client``: a callable taking the boto3 client
  arguments (``region_name``, ``endpoint_url``, ...) and returning this object, which
  answers the boto3 EC2 client calls the ``ec2`` target and ``Cloud`` batchstatus make,
  with boto3's response shapes and ``botocore.exceptions.ClientError`` codes:
  ``run_instances`` (ImageId, InstanceType, MinCount, MaxCount, ClientToken - honoured:
  a repeated token returns the first answer -, TagSpecifications for instance and
  volume, InstanceMarketOptions, UserData, SubnetId/Placement), ``describe_instances``
  (Filters ``tag:K``, ``tag-key``, ``instance-state-name``, ``instance-id``; InstanceIds;
  MaxResults/NextToken pagination), ``terminate_instances``, ``create_tags``,
  ``describe_volumes`` (tag filters) and ``describe_instance_types``. An instance's
  description is shared between answers until the instance changes: callers must not change it.
  ``calls`` counts calls per operation; ``fail_next(op, code, times=1, status=400)``
  makes the next calls of ``op`` raise that error code (e.g. ``RequestLimitExceeded``,
  ``InternalError`` with status 500, ``AuthFailure``, ``InvalidAMIID.NotFound``).
* Time: every call first runs ``advance(clock.now())``; the simulator may also call
  ``advance(now)`` itself. Instances start ``pending`` and become ``running`` after
  their boot time; a good boot then adds a startd ad (a ``StartdAd``) to ``pool.machines`` (``Name``,
  ``Machine``, ``EC2InstanceId``, ``Cpus``/``Memory``/``Gpus`` free and ``Total*``,
  ``State`` Unclaimed, ``Activity`` Idle, ``ProvisionerFactory``, ``ProvisionerQueue``,
  ``ProvisionerLaunch`` from the instance tags). Failed boots never join.
  Terminating removes the machine ad; terminated instances stay visible for an hour.
* ``negotiate(pool)``: a tiny negotiator for the emulated pool: matches idle user jobs
  to machines with free cores/memory/gpus (sets the job ``RemoteHost``), updates each
  machine's State/Activity from the jobs running on it, and finishes graceful drains
  (``Retiring`` -> ``Drained`` once a machine's jobs are gone). Call it after jobs
  finish (``Schedd.finish``) and after ``advance``.
"""
from datetime import datetime, timezone
import itertools
import zlib
import random
from typing import Callable, Dict, List, Optional, Union

from botocore.exceptions import ClientError

from provisioner.cloud import tags
from provisioner.cloud.sizing import CATALOGUE
from provisioner.condor import attributes
from provisioner.condor.emulator import StartdAd

_GONE_AFTER = 3600.0  # terminated instances stay listed this long, as on AWS


def client_error(op: str, code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


class _Instance:
    def __init__(self, iid, itype, tagset, market, subnet, zone, launched, ready_at, joins, user_data):
        self.id, self.type, self.tags, self.market = iid, itype, tagset, market
        self.subnet, self.zone, self.launched, self.ready_at = subnet, zone, launched, ready_at
        self.joins, self.user_data = joins, user_data
        self.state = "pending"
        self.ended: Optional[float] = None
        self.volume = "vol-" + iid[2:]
        self._described = (None, None)  # (what the description was built from, the description)

    def describe(self) -> dict:
        """Built again only when something it shows changed: a replay lists every VM each cycle.
        Callers must not change the answer."""
        key = (self.id, self.type, self.state, self.launched, self.zone, self.subnet, self.market, self.volume,
               tuple(self.tags.items()))
        if self._described[0] == key:
            return self._described[1]
        codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
        out = {"InstanceId": self.id, "InstanceType": self.type, "ImageId": "ami-emulated",
               "State": {"Code": codes[self.state], "Name": self.state},
               "LaunchTime": datetime.fromtimestamp(self.launched, timezone.utc), "Placement": {"AvailabilityZone": self.zone},
               "SubnetId": self.subnet, "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
               "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": self.volume}}]}
        if self.market == "spot":
            out["InstanceLifecycle"] = "spot"
        self._described = (key, out)
        return out


class EmulatedEC2:
    def __init__(self, clock, pool=None, types: Optional[Dict[str, tuple]] = None,
                 boot_time: Union[float, Callable] = 90.0, boot_failure_rate: float = 0.0, seed: int = 0,
                 capacity: Optional[Dict[str, int]] = None, spot_capacity: Optional[Dict[str, int]] = None,
                 page_size: int = 1000, region: str = "us-east-1", vcpu_quota: Optional[int] = None):
        self.clock, self.pool = clock, pool
        self.types = dict(types or CATALOGUE)
        self.boot_time, self.boot_failure_rate = boot_time, boot_failure_rate
        self.rng = random.Random(seed)
        self.capacity = dict(capacity or {})
        self.spot_capacity = dict(spot_capacity or {})
        self.page_size, self.region = page_size, region
        self.vcpu_quota = vcpu_quota
        self.instances: Dict[str, _Instance] = {}
        self.tokens: Dict[str, dict] = {}
        self.calls: Dict[str, int] = {}
        self._faults: Dict[str, List[tuple]] = {}
        self._ids = itertools.count(1)

    def client(self, *args, **kwargs) -> "EmulatedEC2":
        return self

    def fail_next(self, op: str, code: str, times: int = 1, status: int = 400) -> None:
        self._faults.setdefault(op, []).extend([(code, status)] * times)

    # --- time -------------------------------------------------------------------------------
    def advance(self, now: Optional[float] = None) -> None:
        now = self.clock.now() if now is None else now
        for inst in list(self.instances.values()):
            if inst.state == "pending" and now >= inst.ready_at:
                inst.state = "running"
                if inst.joins and self.pool is not None:
                    self._join(inst, now)
            elif inst.state == "shutting-down":
                inst.state = "terminated"
            elif inst.state == "terminated" and now - inst.ended > _GONE_AFTER:
                del self.instances[inst.id]

    def _join(self, inst: _Instance, now: float) -> None:
        cpus, memory, gpus = self.types[inst.type][:3]
        add_machine(self.pool, inst.id, cpus, memory, gpus, inst.tags, now)

    def _call(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        self.advance()
        if self._faults.get(op):
            code, status = self._faults[op].pop(0)
            raise client_error(op, code, f"emulated {code}", status)

    # --- the boto3 calls --------------------------------------------------------------------
    def run_instances(self, ImageId=None, InstanceType="m1.small", MinCount=1, MaxCount=1, ClientToken=None,
                      TagSpecifications=(), InstanceMarketOptions=None, UserData="", SubnetId=None,
                      Placement=None, **ignored) -> dict:
        op = "RunInstances"
        self._call("run_instances")
        if ClientToken and ClientToken in self.tokens:
            return self.tokens[ClientToken]
        if InstanceType not in self.types:
            raise client_error(op, "InvalidParameterValue", f"Invalid value '{InstanceType}' for InstanceType.")
        if not ImageId or not str(ImageId).startswith("ami-"):
            raise client_error(op, "InvalidAMIID.Malformed", f"Invalid id: \"{ImageId}\"")
        if self.vcpu_quota is not None:
            used = sum(self.types[i.type][0] for i in self.instances.values() if i.state in ("pending", "running"))
            if used + MinCount * self.types[InstanceType][0] > self.vcpu_quota:
                raise client_error(op, "VcpuLimitExceeded",
                                   f"You have requested more vCPU capacity than your current vCPU limit of "
                                   f"{self.vcpu_quota} allows for the instance bucket that the specified "
                                   f"instance type belongs to.")
        market = (InstanceMarketOptions or {}).get("MarketType", "on-demand")
        limits = self.spot_capacity if market == "spot" else self.capacity
        available = limits.get(InstanceType, MaxCount)
        if available < MinCount:
            raise client_error(op, "InsufficientInstanceCapacity",
                               f"We currently do not have sufficient {InstanceType} capacity.", 500)
        count = min(MaxCount, available)
        if InstanceType in limits:
            limits[InstanceType] -= count
        tagset = {t["Key"]: t["Value"] for spec in TagSpecifications or () if spec["ResourceType"] == "instance"
                  for t in spec["Tags"]}
        zone = (Placement or {}).get("AvailabilityZone") or f"{self.region}a"
        now = self.clock.now()
        launched = []
        for _ in range(count):
            iid = f"i-{next(self._ids):017x}"
            boot = self.boot_time(self.rng, InstanceType) if callable(self.boot_time) else self.boot_time
            joins = self.rng.random() >= self.boot_failure_rate
            inst = _Instance(iid, InstanceType, dict(tagset), market, SubnetId or "subnet-emulated", zone, now,
                             now + boot, joins, UserData)
            self.instances[iid] = inst
            launched.append(inst.describe())
        answer = {"ReservationId": f"r-{next(self._ids):017x}", "Instances": launched}
        if ClientToken:
            self.tokens[ClientToken] = answer
        return answer

    def _matches(self, inst: _Instance, filters) -> bool:
        for f in filters or ():
            name, values = f["Name"], f["Values"]
            if name.startswith("tag:"):
                ok = inst.tags.get(name[4:]) in values
            elif name == "tag-key":
                ok = any(k in inst.tags for k in values)
            elif name == "instance-state-name":
                ok = inst.state in values
            elif name == "instance-id":
                ok = inst.id in values
            elif name == "instance-type":
                ok = inst.type in values
            else:
                raise client_error("DescribeInstances", "InvalidParameterValue", f"The filter '{name}' is invalid")
            if not ok:
                return False
        return True

    def describe_instances(self, Filters=None, InstanceIds=None, MaxResults=None, NextToken=None, **ignored):
        self._call("describe_instances")
        found = [i for i in self.instances.values()
                 if (not InstanceIds or i.id in InstanceIds) and self._matches(i, Filters)]
        if InstanceIds:
            missing = set(InstanceIds) - {i.id for i in found} - set(self.instances)
            if missing:
                raise client_error("DescribeInstances", "InvalidInstanceID.NotFound",
                                   f"The instance IDs '{', '.join(sorted(missing))}' do not exist")
        start = int(NextToken or 0)
        size = min(MaxResults or self.page_size, self.page_size)
        page = found[start:start + size]
        out = {"Reservations": [{"ReservationId": "r-emulated", "Instances": [i.describe() for i in page]}]
               if page else []}
        if start + size < len(found):
            out["NextToken"] = str(start + size)
        return out

    def terminate_instances(self, InstanceIds=(), **ignored) -> dict:
        self._call("terminate_instances")
        unknown = [i for i in InstanceIds if i not in self.instances]
        if unknown:
            raise client_error("TerminateInstances", "InvalidInstanceID.NotFound",
                               f"The instance ID '{unknown[0]}' does not exist")
        out, now = [], self.clock.now()
        for iid in InstanceIds:
            inst = self.instances[iid]
            before = inst.state
            if inst.state not in ("shutting-down", "terminated"):
                inst.state, inst.ended = "shutting-down", now
                self._leave(iid)
            out.append({"InstanceId": iid, "PreviousState": {"Name": before},
                        "CurrentState": {"Name": inst.state}})
        return {"TerminatingInstances": out}

    def shut_down(self, iid: str, now: float) -> None:
        """The instance ends itself (idle power-off with shutdown behaviour terminate, or a spot
        interruption): it leaves the pool and terminates, as if the provider ended it."""
        inst = self.instances.get(iid)
        if inst is not None and inst.state not in ("shutting-down", "terminated"):
            inst.state, inst.ended = "shutting-down", now
            self._leave(iid)

    def _leave(self, iid: str) -> None:
        if self.pool is None:
            return
        for name, ad in list(self.pool.machines.items()):
            if ad.get(tags.INSTANCE_ATTR) == iid:
                del self.pool.machines[name]

    def create_tags(self, Resources=(), Tags=(), **ignored) -> dict:
        self._call("create_tags")
        for iid in Resources:
            if iid in self.instances:
                self.instances[iid].tags.update({t["Key"]: t["Value"] for t in Tags})
        return {}

    def describe_volumes(self, Filters=None, **ignored) -> dict:
        self._call("describe_volumes")
        vols = [{"VolumeId": i.volume, "Attachments": [{"InstanceId": i.id}],
                 "Tags": [{"Key": k, "Value": v} for k, v in i.tags.items()]}
                for i in self.instances.values() if i.state != "terminated" and self._matches(i, Filters)]
        return {"Volumes": vols}

    def describe_instance_types(self, InstanceTypes=(), **ignored) -> dict:
        self._call("describe_instance_types")
        out = []
        for name in InstanceTypes or self.types:
            if name not in self.types:
                raise client_error("DescribeInstanceTypes", "InvalidInstanceType",
                                   f"The following supplied instance types do not exist: [{name}]")
            cpus, memory, gpus = self.types[name][:3]
            entry = {"InstanceType": name, "VCpuInfo": {"DefaultVCpus": cpus}, "MemoryInfo": {"SizeInMiB": memory}}
            if gpus:
                entry["GpuInfo"] = {"Gpus": [{"Count": gpus}]}
            out.append(entry)
        return {"InstanceTypes": out}

    # --- what a simulator reads -------------------------------------------------------------
    def running_cost(self, now: Optional[float] = None) -> float:
        """Dollars spent so far by every instance (per second, at the type's price)."""
        now = self.clock.now() if now is None else now
        return sum(self.types[i.type][3] * ((i.ended or now) - i.launched) / 3600.0
                   for i in self.instances.values())


def add_machine(pool, instance_id: str, cpus: int, memory: int, gpus: int, tagset: dict, now: float) -> str:
    """The startd ad a booted VM advertises (as its user-data configures it); returns its Name."""
    host = f"ip-{zlib.crc32(instance_id.encode()):08x}.ec2.internal"
    name = f"slot1@{host}"
    pool.machines[name] = StartdAd({
        "Name": name, "Machine": host, "MyType": "Machine", tags.INSTANCE_ATTR: instance_id,
        "Cpus": cpus, "Memory": memory, "Gpus": gpus, "TotalCpus": cpus, "TotalMemory": memory,
        "TotalGpus": gpus, "State": "Unclaimed", "Activity": "Idle", "EnteredCurrentState": int(now),
        "DaemonStartTime": int(now), attributes.FACTORY: tagset.get(tags.FACTORY, ""),
        attributes.QUEUE: tagset.get(tags.QUEUE, ""), attributes.LAUNCH: tagset.get(tags.LAUNCH, "")})
    return name


def negotiate(pool, schedd_name: Optional[str] = None) -> int:
    """Match idle user jobs to emulated machines with room; returns how many started."""
    from provisioner.condor.emulator import IDLE, RUNNING

    schedd = pool.schedd(schedd_name)
    running: Dict[str, list] = {}
    for jid, ad in schedd.jobs.items():
        if ad.get("JobStatus") == RUNNING and ad.get("RemoteHost") in pool.machines:
            running.setdefault(ad["RemoteHost"], []).append(ad)
    for name, m in pool.machines.items():
        used = running.get(name, [])
        m["Cpus"] = m["TotalCpus"] - sum(j.get("RequestCpus", 1) for j in used)
        m["Memory"] = m["TotalMemory"] - sum(j.get("RequestMemory", 0) for j in used)
        m["Gpus"] = m.get("TotalGpus", 0) - sum(j.get("RequestGpus", 0) for j in used)
    started = []
    open_machines = [m for m in pool.machines.values() if not m.get("Draining")]
    for jid, ad in schedd.jobs.items():
        if ad.get("JobStatus") != IDLE or ad.get(attributes.FACTORY) is not None:
            continue
        need = (ad.get("RequestCpus", 1), ad.get("RequestMemory", 0), ad.get("RequestGpus", 0))
        for m in open_machines:
            if m["Cpus"] >= need[0] and m["Memory"] >= need[1] and m["Gpus"] >= need[2]:
                m["Cpus"], m["Memory"], m["Gpus"] = m["Cpus"] - need[0], m["Memory"] - need[1], m["Gpus"] - need[2]
                ad["RemoteHost"] = m["Name"]
                running.setdefault(m["Name"], []).append(ad)
                started.append(jid)
                break
    schedd.set_status(started, RUNNING)
    now = int(pool.clock.now())
    for name, m in pool.machines.items():
        busy = bool(running.get(name))
        if m.get("Draining"):
            state, activity = ("Claimed", "Retiring") if busy else ("Drained", "Idle")
        else:
            state, activity = ("Claimed", "Busy") if busy else ("Unclaimed", "Idle")
        if (m["State"], m["Activity"]) != (state, activity):
            m["State"], m["Activity"], m["EnteredCurrentState"] = state, activity, now
    return len(started)
