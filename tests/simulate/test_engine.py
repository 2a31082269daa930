"""The replay engine: determinism, the order of events at one instant, exact waits.

Times are relative to the scenario start; the factory cycles at 0, S, 2S, ... with
S = apfqueue.sleep, and a cold pool has no machine until the first VM or pilot boots.
"""
import os
import subprocess
import sys

import pytest

from provisioner import config as configmod
from provisioner.errors import ProvisionerError
from provisioner.simulate import backends, metrics, report, scenario, traces
from provisioner.simulate.engine import Simulation
from provisioner.simulate.run import replay
from provisioner.simulate.traces import Job

BOTH = pytest.mark.parametrize("kind", ["cloud", "pilot"])


def rel(sim, t):
    return None if t is None else t - sim.scenario.start


def decision_at(sim, t):
    (d,) = [d for d in sim.decisions if rel(sim, d.time) == t]
    return d


def full(kind):
    """A job shape that fills one machine: a c5.2xlarge VM has 8 cores, a pilot one."""
    return {"cpus": 8} if kind == "cloud" else {}


def burst(kind="cloud", n=40):
    """A fixed, irregular trace: arrivals over ~2 h, run times 5 to 25 min, 1 to 3 cores on VMs
    (a pilot brings one core)."""
    cores = 3 if kind == "cloud" else 1
    return traces.normalise([Job(i, (i * 37) % 900 + i * 150, 300 + (i * 53) % 1200, cpus=1 + i % cores)
                             for i in range(n)])


# -- exact waits -------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("boot", [150, 0])
def test_a_job_on_a_cold_pool_waits_for_the_next_cycle_then_one_boot(sim_conf, simulate, kind, boot):
    sleep = 45
    sim = simulate(sim_conf(kind, sleep=sleep, boot_time=boot), [Job(0, 1.0, 100.0)])
    assert isinstance(sim.backend, backends.Cloud if kind == "cloud" else backends.PilotSite)
    (run,) = sim.runs
    # arrives 1 s after the cycle at 0; the cycle at S launches; the machine joins a boot later
    # (boot 0: within the cycle, and the matching after it starts the job at S)
    assert run.waited == (sleep - 1) + boot
    assert (run.decision_wait, run.boot_wait) == (sleep - 1, boot)
    assert (rel(sim, run.started), rel(sim, run.ended)) == (sleep + boot, sleep + boot + 100)
    assert len(sim.backend.vms()) == 1
    overall = metrics.summarise(sim)[-1]
    assert overall.finished == 1 and overall.launches == 1
    assert overall.wait_max == overall.prov_max == (sleep - 1) + boot


@BOTH
def test_a_job_arriving_at_a_cycle_is_seen_by_it(sim_conf, simulate, kind):
    sim = simulate(sim_conf(kind), [Job(0, 60.0, 100.0)])
    (run,) = sim.runs
    assert decision_at(sim, 60).action == "submit"
    assert (run.decision_wait, run.boot_wait, run.waited) == (0, 180, 180)


# -- the order of events at one instant ----------------------------------------------

@BOTH
def test_a_machine_joining_at_a_cycle_is_seen_by_that_cycle(sim_conf, simulate, kind):
    # launched at 60, joins at 60 + 180 = 240, itself a cycle
    sim = simulate(sim_conf(kind), [Job(0, 1.0, 100.0)])
    assert rel(sim, sim.runs[0].started) == 240
    d = decision_at(sim, 240)
    assert (d.work.idle, d.pilots.pending, d.pilots.running) == (0, 0, 1)
    assert d.action == "none"


@BOTH
def test_a_job_finishing_at_a_cycle_frees_its_machine_for_a_job_arriving_then(sim_conf, simulate, kind):
    # A runs 240..360; B, as large, arrives at 360, a cycle: completion, arrival and
    # matching all come before the cycle, so B starts at once and nothing is launched.
    sim = simulate(sim_conf(kind), [Job(0, 1.0, 120.0, **full(kind)), Job(1, 360.0, 50.0, **full(kind))])
    a, b = sim.runs
    assert rel(sim, a.ended) == rel(sim, b.started) == 360 and b.waited == 0
    d = decision_at(sim, 360)
    assert (d.work.idle, d.work.running, d.action) == (0, 1, "none")
    assert len(sim.backend.vms()) == 1


@BOTH
def test_a_job_arriving_between_cycles_takes_an_idle_machine_at_once(sim_conf, simulate, kind):
    # A leaves its machine idle at 250; B arrives at 275, no cycle: matched on arrival
    sim = simulate(sim_conf(kind), [Job(0, 1.0, 10.0), Job(1, 275.0, 10.0)])
    b = sim.runs[1]
    assert rel(sim, b.started) == 275 and b.waited == 0
    assert len(sim.backend.vms()) == 1


class InterruptFirst(backends.Cloud):
    """The first VM is interrupted a fixed time after it joins."""

    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_boot(self, vm, now):
        super().on_boot(vm, now)
        if vm is self.records[0]:
            self._timer(now + self.after, "interrupt", vm.id)


def test_a_job_finishing_as_its_vm_is_interrupted_has_finished(sim_conf, simulate):
    # the job runs 240..340, the VM is interrupted at 240 + 100: completions come first
    sim = simulate(sim_conf("cloud"), [Job(0, 1.0, 100.0)], InterruptFirst(100))
    (run,) = sim.runs
    assert (run.runs, rel(sim, run.ended)) == (1, 340)
    (vm,) = sim.backend.vms()
    assert vm.interrupted and rel(sim, vm.ended) == 340


def test_a_job_still_running_when_its_vm_is_interrupted_runs_again(sim_conf, simulate):
    sim = simulate(sim_conf("cloud"), [Job(0, 1.0, 100.0)], InterruptFirst(99))
    (run,) = sim.runs
    assert run.runs == 2 and rel(sim, run.ended) > 340
    assert [vm.interrupted for vm in sim.backend.vms()] == [True, False]


def test_a_job_evicted_and_idle_when_the_replay_stops_waits_until_the_stop(sim_conf):
    # the job waits 1..240, runs until its VM is interrupted at 290, then waits again
    # (a new VM boots 300..480) when the replay stops at 400: both stretches count
    conf = sim_conf("cloud")
    sim = Simulation(configmod.load(conf), [Job(0, 1.0, 3600.0)], scenario.load(conf), InterruptFirst(50),
                     until=400).run()
    (run,) = sim.runs
    stop = rel(sim, sim.clock.now())
    assert run.runs == 1 and run.ended is None and run.machine is None and 290 < stop <= 400
    assert metrics.summarise(sim)[-1].wait_max == (240 - 1) + (stop - 290)


def test_a_replay_stopped_early_counts_and_bounds_only_the_jobs_submitted_before(sim_conf):
    jobs = [Job(0, 0.0, 600.0), Job(1, 36000.0, 600.0), Job(2, 72000.0, 600.0, cpus=64)]
    result = replay(sim_conf("cloud"), jobs, until=3600)
    overall = result.overall
    assert (overall.jobs, overall.finished) == (1, 1)
    assert overall.bound_wasted * 3600 == pytest.approx(180)  # one boot, for the one job
    assert metrics.unfit(result.sim) == {}  # the job no VM holds comes after the stop
    assert report.rows(result.summaries)[-1][2] == "1"  # the jobs column: all done


def test_a_pilot_timing_out_as_a_job_arrives_is_gone_before_matching(sim_conf, simulate):
    # the pilot runs A 240..250 and exits idle at 250 + 100 = 350, when B arrives
    conf = sim_conf("pilot", **{"pilot.idle_timeout": 100})
    sim = simulate(conf, [Job(0, 1.0, 10.0), Job(1, 350.0, 10.0)])
    b = sim.runs[1]
    assert rel(sim, sim.backend.vms()[0].ended) == 350
    # B waits for the cycle at 360 and a new pilot's boot
    assert rel(sim, b.started) == 360 + 180 and len(sim.backend.vms()) == 2


# -- determinism ------------------------------------------------------------------

def outcome(result):
    return (result.summaries, result.sim.timeline,
            [(d.time, d.queue, d.action, d.count, d.reason) for d in result.sim.decisions])


@BOTH
def test_same_seed_same_replay(sim_conf, kind):
    conf = sim_conf(kind, boot_jitter=90, boot_failure_rate=0.2)
    first, second = replay(conf, burst(kind)), replay(conf, burst(kind))
    assert outcome(first) == outcome(second)
    assert first.overall.finished == 40


@BOTH
def test_boot_jitter_makes_the_seed_matter(sim_conf, kind):
    conf = sim_conf(kind, boot_jitter=90)
    one, two = replay(conf, burst(kind), seed=1), replay(conf, burst(kind), seed=2)
    assert outcome(one) != outcome(two)
    assert sorted(r.waited for r in one.sim.runs) != sorted(r.waited for r in two.sim.runs)


_REPLAY = """
import sys
from provisioner.simulate import traces
from provisioner.simulate.run import replay
r = replay(sys.argv[1], traces.load(sys.argv[2])[0])
print(repr((r.summaries, r.sim.timeline, [(d.time, d.action, d.count, d.reason) for d in r.sim.decisions])))
"""


def test_same_seed_same_replay_across_processes(sim_conf, tmp_path):
    """Nothing may depend on Python's per-process string hashing (set order, hash())."""
    conf = sim_conf("cloud", boot_jitter=90, boot_failure_rate=0.2)
    trace = tmp_path / "burst.csv"
    trace.write_text("submit,runtime,cpus\n" + "".join(f"{j.submit},{j.runtime},{j.cpus}\n" for j in burst()))
    outs = []
    for hashseed in ("1", "2"):
        r = subprocess.run([sys.executable, "-c", _REPLAY, conf, str(trace)], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "PYTHONHASHSEED": hashseed})
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1]


# -- configuration errors ---------------------------------------------------------------

def test_a_job_for_a_queue_nobody_serves_is_an_error(sim_conf):
    conf = sim_conf("cloud")
    with pytest.raises(ProvisionerError, match="^trace job 1: queue 'NOPE': no enabled queue serves it"):
        replay(conf, [Job(0, 0.0, 10.0), Job(1, 5.0, 10.0, queue="NOPE")])


def test_a_job_names_its_queue_by_wmsqueue_or_section(sim_conf, simulate):
    queues = "[A]\nwmsqueue = ANALY\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready\n" \
             "wmsstatus.condor.queueattribute = TargetQueue\n" \
             "[B]\nwmsqueue = PROD\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready\n" \
             "wmsstatus.condor.queueattribute = TargetQueue\n"
    sim = simulate(sim_conf(queues), [Job(0, 1.0, 10.0, queue="ANALY"), Job(1, 1.0, 10.0, queue="B"),
                                      Job(2, 1.0, 10.0)])
    assert [r.queue for r in sim.runs] == ["A", "B", "A"]  # no queue: the first one
    assert sorted(vm.queue for vm in sim.backend.vms()) == ["A", "A", "B"]
    assert all(r.ended is not None for r in sim.runs)


def test_a_job_without_a_queue_goes_to_the_first_queue_whose_constraint_selects_it(sim_conf, simulate, queue_texts):
    # two VM queues split by memory, as a site routes its jobs: the big job is HIMEM's,
    # in its VMs and in its row of the summary, not the first queue's
    small = queue_texts["cloud"] + "wmsstatus.condor.constraint = RequestMemory <= 16000\n"
    big = (queue_texts["cloud"].replace("[CLOUD]", "[HIMEM]").replace("wmsqueue = CLOUD", "wmsqueue = HIMEM")
           .replace("c5.2xlarge", "r5.2xlarge") + "wmsstatus.condor.constraint = RequestMemory > 16000\n")
    sim = simulate(sim_conf(small + "\n" + big), [Job(0, 1.0, 100.0, memory=2000), Job(1, 1.0, 100.0, memory=60000)])
    assert [r.queue for r in sim.runs] == ["CLOUD", "HIMEM"]
    assert sorted((vm.queue, vm.itype) for vm in sim.backend.vms()) == [("CLOUD", "c5.2xlarge"), ("HIMEM", "r5.2xlarge")]
    assert [(s.name, s.jobs) for s in metrics.summarise(sim)] == [("CLOUD", 1), ("HIMEM", 1), ("all", 2)]


def test_cloud_and_pilot_queues_in_one_config_each_get_their_machines(sim_conf, simulate, queue_texts):
    attr = "wmsstatus.condor.queueattribute = TargetQueue\n"
    conf = sim_conf(queue_texts["cloud"] + attr + "\n" + queue_texts["pilot"] + attr)
    sim = simulate(conf, [Job(0, 1.0, 100.0, queue="CLOUD"), Job(1, 1.0, 100.0, queue="PILOT")])
    assert isinstance(sim.backend, backends.Mixed)
    assert sorted((vm.queue, vm.itype) for vm in sim.backend.vms()) == [("CLOUD", "c5.2xlarge"), ("PILOT", "pilot")]
    assert all(r.ended is not None for r in sim.runs)
    assert sim.backend.alive() == 0


# -- the back ends' own behaviour ----------------------------------------------------------

def test_an_unclaimed_vm_powers_itself_off_after_idle_shutdown(sim_conf, simulate, queue_texts):
    # Ready never retires: two jobs ask for two VMs, both jobs fit the first; the
    # second VM's startd is never claimed and shuts down 1200 s after it joined
    conf = sim_conf(queue_texts["cloud"].replace("VMDemand", "Ready"))
    sim = simulate(conf, [Job(0, 1.0, 100.0), Job(1, 2.0, 100.0)])
    assert {rel(sim, r.started) for r in sim.runs} == {240}
    assert sorted((rel(sim, vm.ready), rel(sim, vm.ended)) for vm in sim.backend.vms()) == [
        (240, 240 + 1200), (240, 340 + 1200)]


def test_a_vcpu_quota_caps_the_vms_and_the_jobs_wait_for_them(sim_conf, simulate):
    # four 8-core jobs want four VMs; a quota of 16 vCPUs holds two, which run the
    # jobs two by two
    sim = simulate(sim_conf(vcpu_quota=16), [Job(i, 1.0 + i, 1000.0, cpus=8) for i in range(4)])
    assert sorted(rel(sim, r.started) for r in sim.runs) == [240, 240, 1240, 1240]
    assert len(sim.backend.vms()) == 2


def test_an_idle_pilot_exits_after_its_idle_timeout(sim_conf, simulate):
    sim = simulate(sim_conf("pilot", **{"pilot.idle_timeout": 600}), [Job(0, 1.0, 100.0), Job(1, 2.0, 100.0)])
    assert sorted((rel(sim, vm.ready), rel(sim, vm.ended)) for vm in sim.backend.vms()) == [
        (240, 340 + 600), (240, 340 + 600)]


@BOTH
def test_jobs_no_vm_or_pilot_can_hold_are_counted_as_unfit(sim_conf, simulate, kind):
    too_big = 64  # cores: more than the test's VM type and its one-core pilots
    sim = simulate(sim_conf(kind), [Job(0, 1.0, 100.0), Job(1, 2.0, 100.0, cpus=too_big)])
    assert [r.started is not None for r in sim.runs] == [True, False]
    assert list(metrics.unfit(sim).values()) == [1]


@pytest.mark.parametrize("provider", ["openstack", "ec2"])
def test_a_libcloud_queue_launches_into_the_emulated_cloud(sim_conf, simulate, provider):
    text = f"""\
[LC]
wmsstatusplugin = Condor
batchstatusplugin = Cloud
schedplugin = VMDemand
batchsubmitplugin = Libcloud
batchsubmit.libcloud.provider = {provider}
batchsubmit.libcloud.image = {"ami-0123456789abcdef0" if provider == "ec2" else "6f0e3c1a-uuid"}
batchsubmit.libcloud.instance_types = m1.xlarge
batchsubmit.libcloud.instance_type.m1.xlarge = cpus=8 memory=16384 price=0.4
batchsubmit.libcloud.collector = cm.example.org
batchsubmit.libcloud.wrapper_url = https://example.org/wrapper.sh
"""
    sim = simulate(sim_conf(text), [Job(i, 1.0 + i, 600.0) for i in range(20)])
    overall = metrics.summarise(sim)[-1]
    assert overall.finished == 20 and overall.launches == 3  # 20 one-core jobs on 8-core VMs
    assert overall.cost > 0 and not sim.backend.live  # billed, and every VM went away
    calls = sim.backend.ec2.calls
    assert calls["run_instances"] == (1 if provider == "ec2" else 3)  # openstack: one node per call


def test_the_emulated_libcloud_driver_raises_what_libcloud_drivers_raise():
    from libcloud.common.exceptions import BaseHTTPError
    from libcloud.compute.base import NodeImage, NodeSize

    from provisioner.clock import VirtualClock
    from provisioner.cloud import emulator, emulator_libcloud, libcloudapi

    ec2 = emulator.EmulatedEC2(VirtualClock(0.0))
    driver = emulator_libcloud.driver_factory(ec2)("openstack")
    size = NodeSize("c5.large", "c5.large", 4096, None, None, None, driver)
    image = NodeImage("6f0e3c1a-uuid", None, driver)
    for code, status, kind in [("InsufficientInstanceCapacity", 400, "fallback"), ("InternalError", 500, "transient"),
                               ("AuthFailure", 401, "fatal")]:
        ec2.fail_next("run_instances", code, status=status)
        with pytest.raises(BaseHTTPError) as info:
            driver.create_node("n", size, image, ex_metadata={"k": "v"})
        backend = libcloudapi.LibcloudBackend({"provider": "openstack", "key": None, "credentials_file": None}, None)
        assert (libcloudapi._code(info.value), backend.kind(info.value)) == (code, kind)
    node = driver.create_node("n", size, image, ex_metadata={"k": "v"})
    assert [(n.id, n.extra["tags"], str(n.state)) for n in driver.list_nodes(ex_filters={"tag:k": "v"})] == \
        [(node.id, {"k": "v"}, "pending")]
    driver.destroy_node(node)
    assert str(driver.list_nodes()[0].state) == "terminated"


def test_progress_of_a_replay_stopped_early_runs_to_the_stop(sim_conf):
    # the trace's last job comes long after the stop: by finished jobs the bar would end at a half
    conf = sim_conf("cloud")
    seen = []
    Simulation(configmod.load(conf), [Job(0, 0.0, 600.0), Job(1, 36000.0, 600.0)], scenario.load(conf),
               backends.for_config(configmod.load(conf)), on_progress=seen.append, until=3600).run()
    assert seen == sorted(seen) and 0.95 <= seen[-1] <= 1.0


def test_a_replay_stopped_early_measures_at_the_stop(sim_conf):
    # a job no pilot holds waits from 0 to the stop: 1 h, not to the last cycle before it (3570 s)
    result = replay(sim_conf("pilot", sleep=70), [Job(0, 0.0, 600.0), Job(1, 0.0, 600.0, cpus=2)], until=3600)
    assert rel(result.sim, result.sim.clock.now()) == 3600
    assert result.overall.wait_max == 3600
