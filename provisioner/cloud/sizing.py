"""How many VMs the idle jobs need: first-fit-decreasing packing into instance types.

A queue lists its instance types in preference order. Jobs, largest first, go
into the first open VM with room, else open a VM of the first type that can hold
them; jobs that fit no type are reported, not counted.
Jobs are grouped by shape first, so 100,000 idle jobs of a few shapes pack in
time proportional to shapes x VMs, not jobs x VMs.
"""
import math
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import classad2

from provisioner.cloud import lifecycle

# cores, memory (MB), gpus, on-demand price per hour (USD, indicative)
CATALOGUE = {
    "t3.medium": (2, 4096, 0, 0.0416), "t3.large": (2, 8192, 0, 0.0832), "t3.xlarge": (4, 16384, 0, 0.1664),
    "m5.large": (2, 8192, 0, 0.096), "m5.xlarge": (4, 16384, 0, 0.192), "m5.2xlarge": (8, 32768, 0, 0.384),
    "m5.4xlarge": (16, 65536, 0, 0.768), "m5.8xlarge": (32, 131072, 0, 1.536),
    "m6i.large": (2, 8192, 0, 0.096), "m6i.xlarge": (4, 16384, 0, 0.192), "m6i.2xlarge": (8, 32768, 0, 0.384),
    "c5.large": (2, 4096, 0, 0.085), "c5.xlarge": (4, 8192, 0, 0.17), "c5.2xlarge": (8, 16384, 0, 0.34),
    "c5.4xlarge": (16, 32768, 0, 0.68), "c5.9xlarge": (36, 73728, 0, 1.53),
    "r5.large": (2, 16384, 0, 0.126), "r5.xlarge": (4, 32768, 0, 0.252), "r5.2xlarge": (8, 65536, 0, 0.504),
    "g4dn.xlarge": (4, 16384, 1, 0.526), "g4dn.12xlarge": (48, 196608, 4, 3.912),
    "p3.2xlarge": (8, 62464, 1, 3.06),
}


@dataclass(frozen=True)
class InstanceType:
    name: str
    cpus: int
    memory: int  # MB
    gpus: int = 0
    price: float = 0.0

    def fits(self, shape: Tuple[int, int, int]) -> bool:
        return shape[0] <= self.cpus and shape[1] <= self.memory and shape[2] <= self.gpus


def parse_spec(name: str, text: str) -> InstanceType:
    """``cpus=8 memory=32768 gpus=1 price=0.4`` -> InstanceType; ValueError on a bad spec."""
    values = {}
    for word in text.replace(",", " ").split():
        key, sep, value = word.partition("=")
        if not sep or key not in ("cpus", "memory", "gpus", "price"):
            raise ValueError(f"expected cpus=N memory=MB [gpus=N] [price=USD], got {word!r}")
        values[key] = float(value) if key == "price" else int(value)
    if "cpus" not in values or "memory" not in values:
        raise ValueError("cpus= and memory= are required")
    return InstanceType(name, values["cpus"], values["memory"], values.get("gpus", 0), values.get("price", 0.0))


def resolve(names: Sequence[str], specs: Dict[str, str]) -> List[InstanceType]:
    """Instance types from the queue's specs, else the catalogue; ValueError names the unknown one."""
    out = []
    for name in names:
        if name in specs:
            out.append(parse_spec(name, specs[name]))
        elif name in CATALOGUE:
            out.append(InstanceType(name, *CATALOGUE[name]))
        else:
            raise ValueError(f"unknown instance type {name!r}: give its size as instance_type.{name} = "
                             f"cpus=N memory=MB")
    return out


def _number(ad, attr, default):
    value = ad.get(attr, default)
    if isinstance(value, classad2.ExprTree):  # evaluated only when not a literal: eval() costs 8x get()
        try:
            value = ad.eval(attr)
        except Exception:  # an expression that does not evaluate outside a match
            return default
    # Undefined and Error are classad2.Value, an IntEnum: numbers to isinstance, not to HTCondor
    numeric = isinstance(value, (int, float)) and not isinstance(value, (bool, classad2.Value))
    return value if numeric else default


def shape(ad) -> Tuple[int, int, int]:
    """(cpus, memory MB, gpus) a job asks for; HTCondor's defaults where unset."""
    return (math.ceil(_number(ad, "RequestCpus", 1)), math.ceil(_number(ad, "RequestMemory", 1)),
            math.ceil(_number(ad, "RequestGpus", 0)))


@dataclass
class Packing:
    vms: Dict[str, int] = field(default_factory=dict)  # instance type -> new VMs needed
    unfit: int = 0  # jobs no configured type can hold
    used: int = 0  # open VMs (booting, or joined and idle) that take some of the jobs
    unused: int = 0  # open VMs that take none
    shapes: Dict[str, set] = field(default_factory=dict)  # instance type -> job shapes its new VMs take
    fit_jobs: int = 0  # jobs some type can hold ...
    fit_cpus: int = 0  # ... and their cores

    @property
    def total(self) -> int:
        return sum(self.vms.values())

    @property
    def net(self) -> int:
        """New VMs to launch, else (negative) the open VMs that take no job. Of several
        types, an idle VM the waiting jobs do not fit must not hold back the VM they need."""
        return self.total or -self.unused


def pack(jobs: Iterable, types: Sequence[InstanceType], open_vms: Sequence[InstanceType] = ()) -> Packing:
    shapes: Dict[Tuple[int, int, int], int] = {}
    for ad in jobs:
        s = shape(ad)
        shapes[s] = shapes.get(s, 0) + 1
    return pack_shapes(shapes, types, open_vms)


def pack_shapes(shapes: Dict[Tuple[int, int, int], int], types: Sequence[InstanceType],
                open_vms: Sequence[InstanceType] = ()) -> Packing:
    """Jobs go first into the open VMs (of their own types), then into new ones."""
    out = Packing()
    existing = [[False, t.cpus, t.memory, t.gpus] for t in open_vms]  # [taken, free cpus, memory, gpus]
    bins: Dict[str, List[list]] = {t.name: [] for t in types}  # [type, free cpus, memory, gpus] per new VM
    for s in sorted(shapes, reverse=True):  # decreasing: gpus-free shapes sort by cpus, then memory
        count = shapes[s]
        t = next((t for t in types if t.fits(s)), None)
        if t is None:
            out.unfit += count
            continue
        out.fit_jobs += count
        out.fit_cpus += count * s[0]
        for vm in (vm for group in (existing, *bins.values()) for vm in group):  # first fit over open VMs
            if count == 0:
                break
            k = min([count] + [vm[i + 1] // s[i] for i in range(3) if s[i]])
            if k > 0:
                for i in range(3):
                    vm[i + 1] -= k * s[i]
                count -= k
                if isinstance(vm[0], str):
                    out.shapes[vm[0]].add(s)
                else:
                    vm[0] = True
        if count:
            per_vm = min([count] + [(t.cpus, t.memory, t.gpus)[i] // s[i] for i in range(3) if s[i]])
            full, rest = divmod(count, per_vm)
            for i in range(full + (1 if rest else 0)):
                n = per_vm if i < full else rest
                bins[t.name].append([t.name, t.cpus - n * s[0], t.memory - n * s[1], t.gpus - n * s[2]])
            out.shapes.setdefault(t.name, set()).add(s)
    out.vms = {name: len(b) for name, b in bins.items() if b}
    out.used = sum(1 for vm in existing if vm[0])
    out.unused = len(existing) - out.used
    return out


def pack_work(work, types: Sequence[InstanceType], open_vms: Sequence[InstanceType] = ()) -> Packing:
    """The idle jobs packed; a WMS that reports counts only: HTCondor's default request per job."""
    if work.jobs or not work.idle:
        return pack(work.jobs, types, open_vms)
    return pack_shapes({(1, 1, 0): work.idle}, types, open_vms)


def launch_plan(n: int, packing: Packing, types: Sequence[InstanceType]) -> List[Tuple[InstanceType, int]]:
    """n new VMs as (type, count), by the packing: first the types that come later in
    preference order (their jobs fit no earlier type, so no other VM can take them), then
    the first type for VMs beyond the packing (launched ahead of jobs to come)."""
    plan = []
    for t in reversed(types):
        k = min(n, packing.vms.get(t.name, 0))
        if k:
            plan.append([t, k])
            n -= k
    if n > 0:
        if plan and plan[-1][0] is types[0]:
            plan[-1][1] += n
        else:
            plan.append([types[0], n])
    return [(t, k) for t, k in plan]


def open_vms(pilots, types: Sequence[InstanceType]) -> List[InstanceType]:
    """The VMs that will take idle jobs already (booting, or joined and idle), each as its
    instance type; a type no longer configured counts as the first. A grid-universe target
    (condorec2, one type) has no VM records: its pending pilots are the booting VMs."""
    if not pilots.states:
        return [types[0]] * pilots.pending
    by_name = {t.name: t for t in types}
    return [by_name.get(vm.instance.type, types[0]) for vm in pilots.records
            if vm.state in (lifecycle.BOOTING, lifecycle.IDLE)]


def queue_types(queue_cfg) -> List[InstanceType]:
    """The instance types a queue's VM target launches, in preference order."""
    opts = queue_cfg.batchsubmit.opts
    specs = {k[len("instance_type."):]: v for k, v in opts.items() if k.startswith("instance_type.")}
    if "instance_types" in opts:
        return resolve(opts["instance_types"], specs)
    if opts.get("instance_type"):  # condorec2: one type per queue
        return resolve([opts["instance_type"]], specs)
    raise ValueError(f"batchsubmit plugin {queue_cfg.batchsubmit.name} launches no instance types")


def types_or_pilots(queue_cfg) -> Optional[List[InstanceType]]:
    """The queue's instance types, or None for a pilot queue (one idle job, one pilot)."""
    try:
        return queue_types(queue_cfg)
    except ValueError:
        return None


def needed(work, types: Optional[Sequence[InstanceType]]) -> int:
    """VMs the idle jobs need, packed into ``types``; pilots (types None): one per idle job."""
    return pack(work.jobs, types).total if types else work.idle
