"""The default policy step, Elastic, on hand-computed cases."""
from types import SimpleNamespace

import pytest

from provisioner import config as configmod
from provisioner.cloud.lifecycle import BOOTING, BUSY, IDLE, VM
from provisioner.sched.base import Context
from provisioner.sched.elastic import Elastic
from provisioner.status import Pilots, Work


@pytest.fixture
def elastic(sim_conf):
    """elastic(**opts) -> an Elastic step for the test's EC2 queue (c5.2xlarge: 8 cores, 16384 MB)."""
    queue = configmod.load(sim_conf("cloud")).queues[0]

    def make(**opts):
        full = {k: o.default for k, o in Elastic.options.items()}
        full.update(opts)
        return Elastic(queue, full, None)

    return make


def jobs(n, cpus=1):
    return [{"RequestCpus": cpus, "RequestMemory": 2048 * cpus}] * n


def vm(state, idle_since=None, free_cpus=0):
    ads = [{"Machine": "m", "EnteredCurrentState": idle_since, "Cpus": free_cpus}] if state in (IDLE, BUSY) else []
    return VM(SimpleNamespace(id="i-1", launched=0.0), ads, state)


def ctx(now, idle_jobs=(), running=0, vms=()):
    states = {}
    for v in vms:
        states[v.state] = states.get(v.state, 0) + 1
    joined = sum(1 for v in vms if v.state in (IDLE, BUSY))
    return Context("q", now, Work(idle=len(idle_jobs), running=running, jobs=list(idle_jobs)),
                   Pilots(pending=states.get(BOOTING, 0), running=joined, records=list(vms), states=states))


def test_launches_the_packed_need_less_what_is_booting_or_idle(elastic):
    step = elastic()
    assert step(0, ctx(0, jobs(20)))[0] == 3  # 20 one-core jobs on 8-core VMs
    assert step(0, ctx(60, jobs(20), vms=[vm(BOOTING), vm(IDLE, 50)]))[0] == 1
    assert step(0, ctx(120, jobs(3, cpus=4)))[0] == 2  # two 4-core jobs per VM


def test_a_one_vm_shortage_while_jobs_run_waits_one_cycle(elastic):
    step = elastic()
    busy = [vm(BUSY)]
    n, reason = step(0, ctx(0, jobs(2), running=8, vms=busy))
    assert n == 0 and "waiting a cycle" in reason
    assert step(0, ctx(60, jobs(2), running=8, vms=busy))[0] == 1  # still short: no core came free
    assert step(0, ctx(120, (), running=8, vms=busy))[0] == 0
    assert step(0, ctx(180, jobs(1), running=8, vms=busy))[0] == 0  # a new shortage waits again


@pytest.mark.parametrize("case", ["cold pool", "whole-VM job", "two VMs short", "patience off"])
def test_no_waiting_when_freed_cores_cannot_help(elastic, case):
    step = elastic(patience=case != "patience off")
    idle, running = {"cold pool": (jobs(2), 0), "whole-VM job": (jobs(1, cpus=8), 8),
                     "two VMs short": (jobs(16), 8), "patience off": (jobs(2), 8)}[case]
    assert step(0, ctx(0, idle, running=running))[0] == (2 if case == "two VMs short" else 1)


def test_retires_idle_vms_after_linger_and_never_while_jobs_need_them(elastic):
    vms = [vm(IDLE, idle_since=1000), vm(IDLE, idle_since=1090), vm(BUSY)]
    assert elastic()(0, ctx(1100, running=1, vms=vms))[0] == -2
    assert elastic(linger=60)(0, ctx(1100, running=1, vms=vms))[0] == -1  # only the one idle for 100 s
    assert elastic()(0, ctx(1100, jobs(8), running=1, vms=vms))[0] == -1  # one VM needed: one stays
    assert elastic()(0, ctx(1100, jobs(16), running=1, vms=vms))[0] == 0


def test_lead_launches_for_the_jobs_expected_within_a_cycle_and_a_boot(elastic):
    step = elastic(lead=1.0, boot_time=180, patience=False)
    assert step(0, ctx(0))[0] == 0
    # 80 jobs in 60 s: smoothed rate 0.3 * 80/60 = 0.4/s; 0.4 * (60 + 180) = 96 jobs = 12 VMs ahead
    n, reason = step(0, ctx(60, jobs(80)))
    assert n == 10 + 12 and "coming=96 ahead=12" in reason
    # free cores on busy VMs count first: 40 free -> 56 cores to come = 7 VMs
    busy = [vm(BUSY, free_cpus=8) for _ in range(5)]
    step = elastic(lead=1.0, boot_time=180, patience=False)
    step(0, ctx(0))
    assert step(0, ctx(60, jobs(80), vms=busy))[0] == 10 + 7
    # arrivals stop: the smoothed rate decays (0.28/s: 67 jobs, 27 cores beyond the free ones: 3 VMs)
    assert step(0, ctx(120, jobs(80), vms=busy))[0] == 10 + 3
    assert [step(0, ctx(t, jobs(80), vms=busy))[0] for t in (180, 240)] == [10, 10]  # 47 jobs: fewer than the free cores
