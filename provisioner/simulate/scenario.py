"""What a simulation needs beyond the factory config: the ``[Simulate]`` section of
factory.conf (ignored by the daemon, which reads only ``[Factory]``).

    [Simulate]
    seed = 1
    # s simulated after the last job ends, for VMs to go
    tail = 7200
    # s with idle jobs but none starting before the replay gives up
    stall = 86400
    # s, mean; each VM draws uniformly in mean +- boot_jitter
    boot_time = 120
    boot_jitter = 0
    # share of VMs (or pilots) that never join
    boot_failure_rate = 0.0
    # per running VM, for spot instances
    spot_interruptions_per_hour = 0
    # the account's vCPU limit on its running VMs (default: none)
    vcpu_quota = 256
    # pilot sites (the HTCondor targets): the slot each pilot brings, and its idle shutdown
    pilot.cpus = 1
    pilot.memory = 2048
    pilot.price = 0.05
    pilot.idle_timeout = 1200
    # per instance type overrides for the cloud: boot_time.<type>, boot_jitter.<type>,
    # boot_failure_rate.<type>
"""
from dataclasses import dataclass, field, replace
from typing import Dict, Optional

from provisioner.config import read_ini
from provisioner.errors import ConfigError, ConfigErrors
from provisioner.options import Option

OPTIONS = {
    "seed": Option("int", 1),
    "start": Option("float", 1_700_000_000.0, minimum=0, help="epoch of the trace's first submit"),
    "tail": Option("int", 7200, minimum=0),
    "stall": Option("int", 86400, minimum=0, help="s without any job starting or finishing before giving up"),
    "boot_time": Option("float", 120.0, minimum=0),
    "boot_jitter": Option("float", 0.0, minimum=0),
    "boot_failure_rate": Option("float", 0.0, minimum=0, check=lambda v: f"must be at most 1, got {v:g}" if v > 1
                                else None),
    "spot_interruptions_per_hour": Option("float", 0.0, minimum=0),
    "vcpu_quota": Option("int", None, minimum=1, help="the cloud account's limit on the vCPUs of its VMs"),
    "pilot.cpus": Option("int", 1, minimum=1),
    "pilot.memory": Option("int", 2048, minimum=1),
    "pilot.price": Option("float", 0.05, minimum=0),
    "pilot.idle_timeout": Option("int", 1200, minimum=0),
    "fail_after": Option("int", 60, minimum=1, help="s a pilot that fails to join lives before it dies"),
}
_PER_TYPE = ("boot_time.", "boot_jitter.", "boot_failure_rate.")
# virtual time is float epoch seconds: near 2**63 a cycle's 60 s no longer moves it (the
# replay never ends) and job ads cannot hold it; 2**32 (the year 2106) keeps it exact
MAX_START = 2 ** 32


@dataclass
class Scenario:
    seed: int = 1
    start: float = 1_700_000_000.0
    tail: int = 7200
    stall: int = 86400
    boot_time: float = 120.0
    boot_jitter: float = 0.0
    boot_failure_rate: float = 0.0
    spot_interruptions_per_hour: float = 0.0
    vcpu_quota: Optional[int] = None
    pilot_cpus: int = 1
    pilot_memory: int = 2048
    pilot_price: float = 0.05
    pilot_idle_timeout: int = 1200
    fail_after: int = 60
    per_type: Dict[str, Dict[str, float]] = field(default_factory=dict)  # type -> {boot_time: ..}

    def for_type(self, itype: str, key: str) -> float:
        return self.per_type.get(itype, {}).get(key, getattr(self, key))


def load(path: str) -> Scenario:
    errors: list = []
    cp = read_ini(path, errors, interpolate=False)
    if cp is None:
        raise ConfigErrors(errors)
    sc = Scenario()
    if not cp.has_section("Simulate"):
        return sc
    errors = []
    for key, raw in cp.items("Simulate"):
        prefix = next((p for p in _PER_TYPE if key.startswith(p)), None)
        try:
            if prefix:
                value = replace(OPTIONS[prefix[:-1]], default=None).parse(raw)  # None: as for every type
                if value is not None:
                    sc.per_type.setdefault(key[len(prefix):], {})[prefix[:-1]] = value
            elif key in OPTIONS:
                setattr(sc, key.replace(".", "_"), OPTIONS[key].parse(raw))
            else:
                errors.append(ConfigError(path, "Simulate", key, "unknown option"))
        except ValueError as exc:
            errors.append(ConfigError(path, "Simulate", key, str(exc)))
    if sc.start > MAX_START:
        errors.append(ConfigError(path, "Simulate", "start", f"must be at most {MAX_START}, got {sc.start:g}"))
    if errors:
        raise ConfigErrors(errors)
    return sc
