"""Which VMs to drain or terminate: never a running job, within a disruption budget."""
import math
from typing import List, Tuple

from provisioner.cloud.lifecycle import BOOTING, DRAINED, DRAINING, FAILED, IDLE, LOST, VM


def retire_plan(vms: List[VM], n: int, max_draining_percent: float) -> Tuple[List[VM], List[VM]]:
    """(VMs to drain, VMs to terminate) for retiring n: the youngest idle VMs are drained
    (they have warmed the fewest caches), then the youngest never-joined ones terminated.
    At most ``max_draining_percent`` of the queue's VMs drain at once (at least one)."""
    live = [vm for vm in vms if vm.state != FAILED]
    in_flight = sum(1 for vm in live if vm.state in (DRAINING, DRAINED))
    budget = max(1, math.floor(len(live) * max_draining_percent / 100)) - in_flight
    idle = sorted((vm for vm in live if vm.state == IDLE), key=lambda vm: vm.launched, reverse=True)
    drain = idle[:max(0, min(n, budget))]
    booting = sorted((vm for vm in live if vm.state == BOOTING), key=lambda vm: vm.launched, reverse=True)
    terminate = booting[:max(0, n - len(drain))] if len(drain) == len(idle) else []
    return drain, terminate


def finished(vms: List[VM], now: float, lost_since: dict, lost_timeout: float) -> List[VM]:
    """VMs with nothing left to lose: drained, never joined in time, or lost for too long."""
    return [vm for vm in vms if vm.state in (DRAINED, FAILED)
            or (vm.state == LOST and now - lost_since.get(vm.id, now) > lost_timeout)]
