"""The default policy step, Elastic, on hand-computed cases."""
import math
from types import SimpleNamespace

import pytest

from provisioner import config as configmod
from provisioner.cloud.lifecycle import BOOTING, BUSY, IDLE, VM
from provisioner.sched.base import Context
from provisioner.sched.elastic import Elastic
from provisioner.simulate import metrics
from provisioner.simulate.traces import Job
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


def vm(state, idle_since=None, free_cpus=0, launched=0.0):
    ads = [{"Machine": "m", "EnteredCurrentState": idle_since, "Cpus": free_cpus}] if state in (IDLE, BUSY) else []
    return VM(SimpleNamespace(id="i-1", launched=launched, type="c5.2xlarge"), ads, state)


def ctx(now, idle_jobs=(), running=0, vms=(), submitted=()):
    """``submitted``: the jobs' QDates (default: all at time 0, one batch)."""
    states = {}
    for v in vms:
        states[v.state] = states.get(v.state, 0) + 1
    joined = sum(1 for v in vms if v.state in (IDLE, BUSY))
    ads = [{"QDate": q} for q in list(submitted) or [0] * (len(idle_jobs) + running)]
    return Context("q", now, Work(idle=len(idle_jobs), running=running, jobs=list(idle_jobs), ads=ads),
                   Pilots(pending=states.get(BOOTING, 0), running=joined, records=list(vms), states=states))


def test_launches_the_packed_need_less_what_is_booting_or_idle(elastic):
    step = elastic()
    assert step(0, ctx(0, jobs(20)))[0] == 3  # 20 one-core jobs on 8-core VMs
    assert step(0, ctx(60, jobs(20), vms=[vm(BOOTING), vm(IDLE, 50)]))[0] == 1
    assert step(0, ctx(120, jobs(3, cpus=4)))[0] == 2  # two 4-core jobs per VM


def test_a_one_vm_shortage_while_enough_jobs_run_waits_one_interval(elastic):
    step = elastic()  # patience_jobs = 16, interval 60 s
    busy = [vm(BUSY)]
    n, reason = step(0, ctx(0, jobs(2), running=16, vms=busy))
    assert n == 0 and "waiting for freed cores" in reason
    assert step(0, ctx(30, jobs(2), running=16, vms=busy))[0] == 0
    assert step(0, ctx(60, jobs(2), running=16, vms=busy))[0] == 1  # still short: no core came free
    assert step(0, ctx(120, (), running=16, vms=busy))[0] == 0
    assert step(0, ctx(180, jobs(1), running=16, vms=busy))[0] == 0  # a new shortage waits again


@pytest.mark.parametrize("case", ["cold pool", "few jobs run", "whole-VM job", "two VMs short", "patience off"])
def test_no_waiting_when_freed_cores_cannot_help(elastic, case):
    step = elastic(patience=case != "patience off")
    idle, running = {"cold pool": (jobs(2), 0), "few jobs run": (jobs(2), 15), "whole-VM job": (jobs(1, cpus=8), 16),
                     "two VMs short": (jobs(16), 16), "patience off": (jobs(2), 16)}[case]
    assert step(0, ctx(0, idle, running=running))[0] == (2 if case == "two VMs short" else 1)


def test_retires_idle_vms_after_linger_and_never_while_jobs_need_them(elastic):
    vms = [vm(IDLE, idle_since=1000), vm(IDLE, idle_since=1090), vm(BUSY)]
    assert elastic()(0, ctx(1100, running=1, vms=vms))[0] == -2
    assert elastic(linger=60)(0, ctx(1100, running=1, vms=vms))[0] == -1  # only the one idle for 100 s
    assert elastic()(0, ctx(1100, jobs(8), running=1, vms=vms))[0] == -1  # one VM needed: one stays
    assert elastic()(0, ctx(1100, jobs(16), running=1, vms=vms))[0] == 0


BURST = list(range(61))  # QDates: a job a second from t=0 to t=60


def test_a_burst_launches_ahead_for_the_jobs_expected_until_a_vm_launched_next_could_join(elastic):
    step = elastic(lead=1.0, boot_time=180, patience=False)
    # 60 jobs after the first in 60 s, and they wait: the next decision in 15 s (recheck), so
    # 1/s * (15 + 180) s = 195 jobs; the 8 VMs for the 61 waiting leave 3 cores: 192 cores = 24 VMs
    n, reason = step(0, ctx(60, jobs(61), submitted=BURST))
    assert n == 8 + 24 and "coming=195 ahead=24" in reason
    # arrivals stop: nothing new since the last look, nothing ahead, nothing more while those boot
    booting = [vm(BOOTING) for _ in range(32)]
    n, reason = step(0, ctx(75, jobs(61), vms=booting, submitted=BURST))
    assert n == 0 and "coming" not in reason

    step = elastic(boot_time=180, patience=False)  # the default lead, 0.6: 117 jobs
    busy = [vm(BUSY, free_cpus=8) for _ in range(5)]  # 40 more free cores on busy VMs: 74 cores = 9 VMs
    assert step(0, ctx(60, jobs(61), vms=busy, submitted=BURST))[0] == 8 + 9
    step = elastic(boot_time=180, patience=False, recheck=0)  # next decision in an interval: 144 jobs
    assert step(0, ctx(60, jobs(61), vms=busy, submitted=BURST))[0] == 8 + 12


def test_jobs_no_instance_type_holds_change_nothing_in_a_burst(elastic):
    plain = elastic(lead=1.0, boot_time=180, patience=False)
    expected = plain(0, ctx(60, jobs(61), submitted=BURST))
    step = elastic(lead=1.0, boot_time=180, patience=False)
    huge = jobs(100, cpus=64)  # c5.2xlarge has 8 cores
    n, reason = step(0, ctx(60, jobs(61) + huge, submitted=BURST + [0] * 100))
    assert (n, reason) == expected


@pytest.mark.parametrize("case", ["one cluster", "a trickle"])
def test_no_lead_without_a_burst(elastic, case):
    step = elastic(lead=1.0, patience=False)
    submitted = {"one cluster": [60] * 80, "a trickle": range(10, 17)}[case]  # 7 jobs: fewer than 8 after the first
    n, reason = step(0, ctx(60, jobs(len(submitted)), submitted=submitted))
    assert n == math.ceil(len(submitted) / 8) and "coming" not in reason


def test_decides_again_sooner_while_new_jobs_wait(elastic):
    def recheck(step, c):
        step(0, c)
        return step.recheck_after(c)

    step = elastic()
    assert recheck(step, ctx(0, jobs(1), submitted=[0])) == 15  # the head of a burst, or a lone job
    assert recheck(step, ctx(15, jobs(1), submitted=[0])) is None  # no job since the last look
    assert recheck(step, ctx(60, jobs(61), submitted=BURST)) == 15
    assert recheck(step, ctx(75, jobs(61), submitted=BURST)) is None
    later = BURST + list(range(76, 90))
    assert recheck(step, ctx(90, (), running=75, submitted=later)) is None  # new jobs, none waits
    assert recheck(step, ctx(150, jobs(1), running=75, submitted=later)) is None  # a job waits, none new
    step = elastic(recheck=0)
    step(0, ctx(0, jobs(1), submitted=[0]))
    assert recheck(step, ctx(60, jobs(61), submitted=BURST)) is None


def test_booting_vms_are_cancelled_once_no_job_waits(elastic):
    step = elastic(lead=1.0, boot_time=180, patience=False)
    assert step(0, ctx(60, jobs(61), submitted=BURST))[0] == 32  # 8 needed, 24 ahead
    booting = [vm(BOOTING, launched=60) for _ in range(32)]
    assert step(0, ctx(90, jobs(8), vms=booting, submitted=BURST))[0] == 0  # a job still waits: keep them
    n, reason = step(0, ctx(160, (), running=61, vms=booting, submitted=BURST))
    assert n == -24 and "cancel-booting=24" in reason  # the ones ahead; the 8 for the jobs that went elsewhere
    assert step(0, ctx(170, (), running=61, vms=booting[:8], submitted=BURST))[0] == 0  # are past half a boot
    # not ahead: only VMs in the first half of their boot (90 s) go
    step = elastic(boot_time=180, patience=False)
    booting = [vm(BOOTING, launched=t) for t in (0, 60, 100)]  # 145, 85 and 45 s into their boot
    n, reason = step(0, ctx(145, (), running=8, vms=booting))
    assert n == -2 and "cancel-booting=2" in reason


# -- end to end, through the simulator -----------------------------------------------------

def _replay(sim_conf, simulate, queue_texts, jobs, **opts):
    text = queue_texts["cloud"].replace("schedplugin = VMDemand", "schedplugin = Elastic\n"
                                        + "".join(f"sched.elastic.{k} = {v}\n" for k, v in opts.items()))
    sim = simulate(sim_conf(text, boot_jitter=30), jobs)
    return sim, metrics.summarise(sim)[-1]


def test_a_burst_of_submissions_waits_less_for_a_few_more_vms(sim_conf, simulate, queue_texts):
    jobs = [Job(i, 1.5 * i, 1800.0) for i in range(240)]  # a job every 1.5 s for 6 minutes: 30 VMs of work
    _, plain = _replay(sim_conf, simulate, queue_texts, jobs, lead=0, recheck=0)
    sim, burst = _replay(sim_conf, simulate, queue_texts, jobs)
    assert burst.finished == plain.finished == 240
    assert burst.prov_p95 < plain.prov_p95 - 30
    assert burst.launches <= 1.3 * plain.launches and burst.wasted < 1.3 * plain.wasted
    assert not sim.backend.live  # every VM launched ahead was used or went away


def test_one_cluster_submitted_at_once_is_not_a_burst(sim_conf, simulate, queue_texts):
    sim, summary = _replay(sim_conf, simulate, queue_texts, [Job(i, 10.0, 1800.0) for i in range(160)])
    assert summary.finished == 160 and summary.launches == 20  # 160 one-core jobs, 8-core VMs
