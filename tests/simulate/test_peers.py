"""The peer policies the simulator compares, each on hand-computed cases of its
documented formula, and the named policies as the configs they rewrite."""
import math
import os
from types import SimpleNamespace

import pytest

from provisioner import cli
from provisioner import config as configmod
from provisioner import plugins
from provisioner.cloud.lifecycle import BOOTING, BUSY, DRAINING, IDLE
from provisioner.errors import ProvisionerError
from provisioner.sched.base import Context
from provisioner.simulate import policies, traces
from provisioner.status import Pilots, Work


def step(name, queue=None, **opts):
    cls = plugins.load("sched", name)
    full = {k: o.default for k, o in cls.options.items()}
    full.update(opts)
    return cls(queue, full, None)


def ctx(idle=0, jobs=(), pending=0, running=0, states=None, now=10_000.0):
    return Context("q", now, Work(idle=idle, jobs=list(jobs)),
                   Pilots(pending=pending, running=running, states=dict(states or {})))


def chain(steps, c):
    """APF's chain: n starts at 0, each step takes the previous n."""
    n = 0
    for s in steps:
        n = s(n, c)[0]
    return n


@pytest.fixture
def cloud_queue(sim_conf):
    """The EC2 queue of the test config: c5.2xlarge, 8 cores and 16384 MB."""
    return configmod.load(sim_conf("cloud")).queues[0]


@pytest.fixture
def pilot_queue(sim_conf):
    """The HTCondor pilot queue of the test config (batch status Condor: no VM states)."""
    return configmod.load(sim_conf("pilot")).queues[0]


# a pilot queue as GlideinWMS sees it: no instance types
PILOTS = SimpleNamespace(batchsubmit=SimpleNamespace(name="condorlocal", opts={}))


def jobs(n, cpus=1, memory=2048):
    return [{"RequestCpus": cpus, "RequestMemory": memory}] * n


def glideinwms(queue=PILOTS, **opts):
    return step("glideinwms", queue, **opts)


# -- GlideinWMS -----------------------------------------------------------------------

@pytest.mark.parametrize("idle,pending,expect", [
    (0, 0, 0),                 # no effective idle: no request, not even the reserve
    (1, 0, 1 + 5),             # ceil(1/3) + reserve 5
    (10, 0, 4 + 5),            # ceil(10/3) + 5
    (10, 3, 4 + 5 - 3),        # the factory tops up to the request: minus what is pending
    (285, 0, 100),             # ceil(285/3) + 5 = 100 = max_idle
    (400, 0, 100),             # 134 + 5, capped by max_idle
    (400, 40, 60),
])
def test_glideinwms_request(idle, pending, expect):
    assert glideinwms()(999, ctx(idle=idle, pending=pending))[0] == expect


def test_glideinwms_options_change_the_formula():
    s = glideinwms(ramp_up=2.0, reserve_idle=0, max_idle=7)
    assert s(0, ctx(idle=9))[0] == 5  # ceil(9/2)
    assert s(0, ctx(idle=20))[0] == 7


def test_glideinwms_curb_halves_and_the_maxima_stop():
    s = glideinwms(curb_vms_idle=3, max_vms_idle=6, max_running=50)
    assert s(0, ctx(idle=30, states={IDLE: 2}))[0] == 15  # ceil(30/3) + 5, under the curb
    assert s(0, ctx(idle=30, states={IDLE: 3}))[0] == 7  # 15 // 2
    assert s(0, ctx(idle=31, states={IDLE: 5}))[0] == 8  # (11 + 5) // 2
    assert s(0, ctx(idle=30, states={IDLE: 6}))[0] == 0  # idle VMs at max_vms_idle
    assert s(0, ctx(idle=30, running=50, states={IDLE: 0}))[0] == 0  # running at max_running


def test_glideinwms_removes_excess_only_after_consecutive_cycles():
    s = glideinwms(remove_excess_cycles=3)
    excess = ctx(idle=0, pending=4)
    assert [s(0, excess)[0] for _ in range(2)] == [0, 0]
    assert s(0, excess)[0] == -4  # the third cycle in a row
    assert s(0, excess)[0] == -4  # still in excess: still removed
    s = glideinwms(remove_excess_cycles=3)
    assert [s(0, excess)[0] for _ in range(2)] == [0, 0]
    assert s(0, ctx(idle=12, pending=9))[0] == 0  # request 9 = pending: the streak is broken
    assert [s(0, excess)[0] for _ in range(3)] == [0, 0, -4]


def test_glideinwms_partial_excess():
    s = glideinwms(remove_excess_cycles=1)
    assert s(0, ctx(idle=3, pending=10))[0] == 6 - 10  # request ceil(3/3) + 5 = 6


def test_glideinwms_effective_idle_is_the_jobs_a_vm_of_the_queue_can_run(cloud_queue):
    s = glideinwms(cloud_queue)
    # 64 cores: no c5.2xlarge (8 cores) runs them, so no effective idle, not even the reserve
    assert s(0, ctx(idle=30, jobs=jobs(30, cpus=64)))[0] == 0
    # 30 that fit and 30 that do not: ceil(30/3) + 5
    n, reason = s(0, ctx(idle=60, jobs=jobs(30) + jobs(30, cpus=64)))
    assert n == 10 + 5 and reason.startswith("effective_idle=30 "), reason
    # a WMS that gives counts only: every job is taken to fit, as VMDemand takes them
    assert s(0, ctx(idle=30))[0] == 10 + 5


# -- COBalD ----------------------------------------------------------------------------

def cobald(interval=100, **opts):
    return step("cobald", SimpleNamespace(interval=interval, batchstatus=SimpleNamespace(name="cloud")), **opts)


def test_cobald_empty_pool_counts_as_fully_allocated_and_demand_rises():
    s = cobald(rate=0.05)  # 0.05/s over the first interval of 100 s: +5
    assert s(0, ctx(now=1000))[0] == 5
    # the five are booting (not joined): the pool still reports 1, demand 10
    assert s(0, ctx(pending=5, now=1100))[0] == 5
    assert s.demand == 10


def test_cobald_demand_falls_by_rate_times_interval_under_low_utilisation():
    s = cobald(rate=0.1)
    assert s(0, ctx(now=0))[0] == 10
    # 10 joined, 2 busy: utilisation 0.2 < 0.5; 30 s at 0.1/s: -3
    assert s(0, ctx(running=10, states={BUSY: 2, IDLE: 8}, now=30))[0] == -3
    assert s.demand == 7


def test_cobald_demand_rises_with_allocation_above_high():
    s = cobald(rate=0.1)
    s(0, ctx(now=0))
    # 10 joined, 7 busy or draining: 0.7 > 0.5: +0.1/s for 20 s
    assert s(0, ctx(running=10, states={BUSY: 5, DRAINING: 2, IDLE: 3}, now=20))[0] == 2


def test_cobald_holds_between_the_thresholds():
    s = cobald(rate=0.1, low_utilisation=0.4, high_allocation=0.6)
    s(0, ctx(now=0))
    assert s(0, ctx(running=10, states={BUSY: 5, IDLE: 5}, now=50))[0] == 0
    assert s.demand == 10


def test_cobald_rounds_only_the_request_not_the_demand():
    """COBalD's Standardiser hands the pool a demand rounded down to the
    granularity but keeps the controller's own, so the rate is not inflated."""
    s = cobald(rate=0.025)  # 2.5 per 100 s
    supply, outs = 0, []
    for i in range(4):
        out = s(0, ctx(pending=supply, now=100 * i))[0]
        outs.append(out)
        supply += out
    assert outs == [2, 3, 2, 3]  # demand 2.5, 5, 7.5, 10
    assert supply == 10


def test_cobald_falls_at_its_rate_when_the_rate_is_below_one_per_cycle():
    s = cobald(rate=0.1)
    s(0, ctx(now=0))  # demand 10, 10 VMs
    supply, outs = 10, []
    for i in range(1, 5):  # every 5 s at 0.1/s: -0.5 a cycle, nothing busy
        out = s(0, ctx(running=supply, states={IDLE: supply}, now=5 * i))[0]
        outs.append(out)
        supply += out
    assert outs == [-1, 0, -1, 0]  # demand 9.5, 9, 8.5, 8
    assert supply == 8


def test_cobald_granularity():
    s = cobald(rate=0.06, granularity=4)
    assert s(0, ctx(now=0))[0] == 4  # demand 6: 4, a multiple of 4 at or below it
    assert s(0, ctx(pending=4, now=100))[0] == 8  # demand 12


@pytest.mark.parametrize("opts,expect", [
    ({"surplus": 3}, 13 - 10),                       # demand 100 at most supply + 3
    ({"surplus": 3, "maximum": 12}, 12 - 10),        # the maximum wins
    ({"maximum": 5}, 5 - 10),                        # even below the supply
    ({"surplus": 2.5}, 12 - 10),                     # a fractional bound: whole VMs at or below it
])
def test_cobald_clamps_a_rising_demand(opts, expect):
    s = cobald(rate=1.0, **opts)
    full = ctx(running=10, states={BUSY: 10})  # allocation 1: +100 over the first 100 s
    assert s(0, full)[0] == expect


@pytest.mark.parametrize("opts,expect", [
    ({"backlog": 2}, 8 - 10),                        # demand -100 at least supply - 2
    ({"backlog": 2, "minimum": 9}, 9 - 10),          # the minimum wins
    ({}, 0 - 10),                                    # minimum 0
])
def test_cobald_clamps_a_falling_demand(opts, expect):
    s = cobald(rate=1.0, **opts)
    empty = ctx(running=10, states={IDLE: 10})  # utilisation 0: -100 over the first 100 s
    assert s(0, empty)[0] == expect


def test_cobald_clamped_demand_is_where_the_controller_goes_on_from():
    s = cobald(rate=1.0, surplus=3)
    assert s(0, ctx(running=10, states={BUSY: 10}, now=0))[0] == 3
    assert s.demand == 13  # not 100: the next cycle starts from the clamp


# -- gcpm ------------------------------------------------------------------------------

def test_gcpm_needed_plus_buffer_less_booting_and_idle(cloud_queue):
    s = step("gcpm", cloud_queue, buffer=1)
    # 20 one-core jobs: 8 per c5.2xlarge, 3 VMs; + 1 buffer - 1 booting - 1 idle
    assert s(0, ctx(idle=20, jobs=jobs(20), pending=1, states={BOOTING: 1, IDLE: 1}))[0] == 2
    # memory bound: 6000 MB each, 2 per VM (16384 MB): 5 jobs, 3 VMs
    assert s(0, ctx(idle=5, jobs=jobs(5, memory=6000)))[0] == 3 + 1
    assert s(0, ctx())[0] == 1  # the buffer alone


def test_gcpm_maximum_caps_all_workers(cloud_queue):
    s = step("gcpm", cloud_queue, buffer=2, maximum=6)
    # wants 3 + 2 - 1 = 4, but 1 booting + 4 joined leave room for 1
    assert s(0, ctx(idle=20, jobs=jobs(20), pending=1, running=4, states={BOOTING: 1, BUSY: 4}))[0] == 1


def test_gcpm_retires_only_idle_workers(cloud_queue):
    s = step("gcpm", cloud_queue, buffer=1)
    assert s(0, ctx(running=4, states={IDLE: 4}))[0] == -3  # keeps the buffer
    # 3 booting count against the need, but only the 1 idle VM can go
    assert s(0, ctx(pending=3, running=5, states={BOOTING: 3, IDLE: 1, BUSY: 4}))[0] == -1
    assert step("gcpm", cloud_queue, buffer=0, maximum=2)(0, ctx(running=6, states={IDLE: 1, BUSY: 5}))[0] == -1


@pytest.mark.parametrize("name,why", [("gcpm", "its buffer is of idle VMs"),
                                      ("cobald", "busy VMs are its utilisation")])
def test_gcpm_and_cobald_refuse_a_queue_without_vm_states(pilot_queue, name, why):
    """A pilot's batch status tells no idle pilot from a busy one: gcpm would submit its
    buffer every cycle and COBalD would raise its demand for ever."""
    with pytest.raises(ProvisionerError) as err:
        step(name, pilot_queue)
    assert str(err.value).endswith(f"needs the VM states of batchstatusplugin = Cloud ({why}); "
                                   "batchstatus condor has none")


@pytest.mark.parametrize("name", ["gcpm", "cobald"])
def test_simulate_gcpm_or_cobald_on_a_pilot_queue_is_one_line_naming_the_queue(sim_conf, tmp_path, capsys, name):
    conf = sim_conf("pilot")
    trace = tmp_path / "two.csv"
    trace.write_text("submit,runtime\n0,600\n30,600\n")
    assert cli.main(["simulate", "--conf", conf, "--trace", str(trace), "--out", str(tmp_path / "out"), "--quiet",
                     "--policy", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'queues.conf'}: [PILOT] sched "), err


# -- APF: Ready, MaxPerCycle, MaxPending, APFRetire ----------------------------------------

def apf(keep_running=0):
    return [step("ready"), step("maxpercycle", maximum=20), step("maxpending", maximum=50),
            step("apfretire", keep_running=keep_running)]


@pytest.mark.parametrize("idle,pending,running,expect", [
    (100, 0, 0, 20),      # ready 100, 20 a cycle, no cap while nothing is pending
    (100, 45, 10, 5),     # ready 55, 20, room 50 - 45 = 5
    (100, 60, 0, 0),      # over max pending: 0, and no retire while jobs wait
    (3, 5, 8, 0),         # idle jobs covered by pending pilots: 0, nothing retired
    (0, 0, 5, -5),        # nothing idle, chain asks 0: retire down to keep_running 0
    (0, 2, 3, -5),
])
def test_apf_chain(idle, pending, running, expect):
    assert chain(apf(), ctx(idle=idle, pending=pending, running=running)) == expect


def test_apf_retire_keeps_running_and_never_submits():
    assert chain(apf(keep_running=2), ctx(pending=1, running=4)) == -3
    assert chain(apf(keep_running=10), ctx(running=4)) == 0


def test_apfretire_passes_any_non_zero_request():
    s = step("apfretire")
    assert s(7, ctx(running=9))[0] == 7
    assert s(-2, ctx(running=9))[0] == -2
    assert s(0, ctx(idle=1, running=9))[0] == 0


# -- the named policies ------------------------------------------------------------------

def expected_chain(name):
    return [plugins.canonical("sched", s) for s in policies.POLICIES[name]["schedplugin"].split(",")]


@pytest.mark.parametrize("name", list(policies.POLICIES))
def test_named_policy_config_loads_with_its_chain(sim_conf, tmp_path, name, queue_texts):
    # a [DEFAULT] chain and a queue's own chain are both replaced
    conf = sim_conf("[DEFAULT]\nschedplugin = Fixed\nsched.fixed.pilotspercycle = 3\n\n" + queue_texts["cloud"]
                    + "\n" + queue_texts["pilot"])
    cfg = policies.apply(configmod.load(conf), name, 150.0)
    assert [q.name for q in cfg.queues] == ["CLOUD", "PILOT"]
    for q in cfg.queues:
        assert [s.name for s in q.sched] == expected_chain(name)
        for key, value in policies.POLICIES[name].items():
            if key.startswith("sched."):
                got = q.option(key)
                assert got == type(got)(value.replace("{boot_time}", "150"))
    cloud, pilot = cfg.queues
    assert cloud.option("batchsubmit.ec2.max_draining_percent") == 100
    assert cloud.batchsubmit.opts["instance_types"] and pilot.batchsubmit.name == "condorlocal"


def test_named_policy_keeps_relative_paths_and_queue_dirs(tmp_path):
    (tmp_path / "queues.d").mkdir()
    (tmp_path / "queues.d" / "b.conf").write_text("[B]\nbatchsubmitplugin = CondorLocal\nschedplugin = Fixed\n")
    (tmp_path / "queues.d" / "ignored.txt").write_text("[C]\n")
    (tmp_path / "queues.conf").write_text("[A]\nbatchsubmitplugin = CondorLocal\n")
    (tmp_path / "factory.conf").write_text("[Factory]\nfactoryId = sim\nqueueConf = queues.conf\n"
                                           "queueDirConf = queues.d\nbaseLogDir = logs\nstatedir = state\n")
    cfg = policies.apply(configmod.load(str(tmp_path / "factory.conf")), "gcpm", 120)
    assert [(q.name, [s.name for s in q.sched]) for q in cfg.queues] == [("A", ["gcpm"]), ("B", ["gcpm"])]
    assert os.path.realpath(cfg.state_dir) == os.path.realpath(tmp_path / "state")
    assert os.path.realpath(cfg.log_dir).startswith(os.path.realpath(tmp_path / "logs"))


def test_unknown_policy_is_refused(sim_conf):
    with pytest.raises(KeyError, match="unknown policy 'nope'"):
        policies.apply(configmod.load(sim_conf("cloud")), "nope", 120)


def test_named_policy_keeps_the_queue_files_the_loader_found_and_their_paths(tmp_path):
    """queueConf = file://... (APF's usual form) is the loader's to resolve; a rewritten queue
    keeps its own file's path, so an error names the user's file, not a copy."""
    (tmp_path / "queues.conf").write_text("[A]\nbatchsubmitplugin = CondorLocal\n")
    (tmp_path / "factory.conf").write_text(f"[Factory]\nfactoryId = sim\nqueueConf = file://{tmp_path}/queues.conf\n"
                                           "enablequeues = False\n")
    cfg = policies.apply(configmod.load(str(tmp_path / "factory.conf")), "apf", 120)
    (a,) = cfg.queues
    assert a.path == str(tmp_path / "queues.conf")
    assert [s.name for s in a.sched] == expected_chain("apf")
    assert not a.enabled  # [Factory] enablequeues = False still holds


def test_vmdemand_on_a_pilot_queue_names_the_users_queue_file(sim_conf, tmp_path):
    from provisioner.simulate.run import replay

    with pytest.raises(ProvisionerError) as err:
        replay(sim_conf("pilot"), [traces.Job(0, 0.0, 60.0)], "vmdemand")
    assert str(err.value).startswith(f"{tmp_path / 'queues.conf'}: [PILOT] sched VMDemand: "), err.value


@pytest.mark.parametrize("name", list(policies.POLICIES))
def test_named_policy_replays_a_burst_to_the_end(sim_conf, name):
    from provisioner.simulate.run import replay

    trace = traces.normalise([traces.Job(i, 20.0 * i + (i % 4) * 170, 400 + 37 * (i % 9)) for i in range(30)])
    result = replay(sim_conf("cloud", boot_time=120), trace, name)
    assert result.label == name
    assert result.overall.finished == 30 and result.overall.launches >= 1
    assert math.isfinite(result.overall.cost)
