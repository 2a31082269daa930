"""Each APF policy step on hand-computed cases, and the faults of APF not copied."""
import os

import pytest

from provisioner import config as configmod
from provisioner import plugins
from provisioner.cli import main
from provisioner.sched.base import Context
from provisioner.status import Pilots, Work


def step(name, **opts):
    cls = plugins.load("sched", name)
    full = {k: o.default for k, o in cls.options.items()}
    full.update(opts)
    return cls(None, full, None)


def ctx(idle=0, running=0, pending=0, pilots_running=0, site="online", recent=(), now=10_000.0,
        factory_pilots=0):
    return Context("q", now, Work(idle=idle, running=running, site_status=site),
                   Pilots(pending=pending, running=pilots_running, recent=list(recent)), factory_pilots)


def test_every_documented_apf_step_is_a_builtin():
    assert {"ready", "fixed", "scale", "maxpercycle", "minpercycle", "maxpending", "minpending", "maxtorun",
            "keepnrunning", "maxperfactory", "statusoffline", "statustest", "throttle",
            "activated"} <= set(plugins.names("sched"))


@pytest.mark.parametrize("idle,offset,pending,expect", [(10, 0, 0, 10), (10, 2, 3, 5), (3, 0, 5, 0), (0, 0, 0, 0)])
def test_ready(idle, offset, pending, expect):
    assert step("ready", offset=offset)(999, ctx(idle=idle, pending=pending))[0] == expect


def test_fixed_ignores_input():
    assert step("fixed", pilotspercycle=4)(100, ctx())[0] == 4


@pytest.mark.parametrize("n,factor,expect", [(10, 0.25, 3), (7, 1.0, 7), (0, 3, 0), (-3, 0.5, -2),
                                              (50, 0.14, 7), (100, 0.07, 7), (-50, 0.14, -7)])
def test_scale_rounds_up(n, factor, expect):
    assert step("scale", factor=factor)(n, ctx())[0] == expect


def test_max_and_min_per_cycle():
    assert step("maxpercycle", maximum=5)(12, ctx())[0] == 5
    assert step("maxpercycle", maximum=5)(3, ctx())[0] == 3
    assert step("minpercycle", minimum=2)(0, ctx())[0] == 2
    assert step("minpercycle", minimum=2)(9, ctx())[0] == 9
    assert step("minpercycle", minimum=2)(-4, ctx()) == (-4, "retire kept (min=2 is for submits)")


def test_maxpending_limits_but_never_retires_unless_asked():
    s = step("maxpending", maximum=10)
    assert s(8, ctx(pending=0))[0] == 8  # APF: no cap while nothing is pending
    assert s(8, ctx(pending=4))[0] == 6
    assert s(8, ctx(pending=15))[0] == 0  # APF returned -5 here and silently retired pilots
    assert step("maxpending", maximum=10, allow_negative=True)(8, ctx(pending=15))[0] == -5


def test_maxpending_and_maxtorun_pass_a_retire_or_retire_the_surplus():
    # without allow_negative a retire asked before passes as it is; with it, APF's min(n, max - have)
    assert step("maxpending", maximum=10)(-2, ctx(pending=15))[0] == -2
    assert step("maxpending", maximum=10, allow_negative=True)(-2, ctx(pending=15)) == (-5, "pending=15 over 10: retire 5")
    assert step("maxpending", maximum=10, allow_negative=True)(-9, ctx(pending=15))[0] == -9
    assert step("maxtorun", maximum=10)(-1, ctx(pending=6, pilots_running=9))[0] == -1
    assert step("maxtorun", maximum=10, allow_negative=True)(-1, ctx(pending=6, pilots_running=9))[0] == -5
    assert step("maxtorun", maximum=10, allow_negative=True)(0, ctx(pending=6, pilots_running=9))[0] == -5


def test_minpending():
    assert step("minpending", minimum=5)(1, ctx(pending=2))[0] == 3
    assert step("minpending", minimum=5)(4, ctx(pending=2))[0] == 4


def test_maxtorun():
    s = step("maxtorun", maximum=10)
    assert s(8, ctx(pending=2, pilots_running=3))[0] == 5
    assert s(8, ctx(pending=6, pilots_running=9))[0] == 0
    assert step("maxtorun", maximum=10, allow_negative=True)(8, ctx(pending=6, pilots_running=9))[0] == -5


def test_keepnrunning_retires_the_surplus():
    s = step("keepnrunning", keep_running=4)
    assert s(0, ctx(pending=1, pilots_running=1))[0] == 2
    assert s(0, ctx(pending=3, pilots_running=4))[0] == -3
    assert step("keepnrunning")(6, ctx(pending=1, pilots_running=2))[0] == 3  # unset: keep the input


def test_maxperfactory_counts_all_queues():
    s = step("maxperfactory", maximum=100)
    assert s(50, ctx(factory_pilots=90))[0] == 10
    assert s(50, ctx(factory_pilots=120))[0] == 0
    assert s(-5, ctx(factory_pilots=500))[0] == -5
    assert step("maxperfactory")(50, ctx(factory_pilots=500))[0] == 50  # no maximum anywhere


def test_site_status_steps():
    assert step("statusoffline")(9, ctx(site="offline"))[0] == 0
    assert step("statusoffline", pilots=1)(9, ctx(site="offline"))[0] == 1
    assert step("statusoffline")(9, ctx(site="online"))[0] == 9
    assert step("statusoffline", pilots=2)(0, ctx(site="offline"))[0] == 0  # a cap: none without work
    assert step("statusoffline")(-3, ctx(site="offline"))[0] == -3  # a retire passes
    assert step("statustest", pilots=2)(9, ctx(site="test"))[0] == 2
    assert step("statustest", pilots=2)(9, ctx(site="online"))[0] == 9


def test_throttle_brakes_a_black_hole_and_releases():
    now = 10_000.0
    young = [(now - 100, 5.0)] * 8 + [(now - 100, 3000.0)] * 2
    s = step("throttle", interval=3600, maxtime=60, ratio=0.5, submit=1)
    assert s(20, ctx(recent=young, now=now)) == (1, "8/10 pilots died young")
    healthy = [(now - 100, 5.0)] * 2 + [(now - 100, 3000.0)] * 8
    assert s(20, ctx(recent=healthy, now=now))[0] == 20
    old = [(now - 7200, 5.0)] * 10  # outside the window
    assert s(20, ctx(recent=old, now=now)) == (20, "0 pilots ended recently, too few to judge")


def test_activated_old_all_in_one():
    s = step("activated", max_pilots_per_cycle=10, max_pilots_pending=20, max_jobs_torun=30)
    assert s(0, ctx(idle=100, pending=5, pilots_running=10))[0] == 10
    assert s(0, ctx(idle=100, pending=18, pilots_running=10))[0] == 2
    assert s(0, ctx(idle=100, pending=5, pilots_running=24))[0] == 1
    assert s(0, ctx(idle=3, pending=5))[0] == 0
    assert s(0, ctx(idle=100, site="offline")) == (0, "site offline")


def test_activated_in_apf_order():
    # APF caps by max_pilots_pending last: the per-cycle minimum does not override it
    s = step("activated", min_pilots_per_cycle=2, max_pilots_pending=10)
    assert s(0, ctx(idle=0, pending=15))[0] == 0
    assert s(0, ctx(idle=0, pending=4))[0] == 2
    assert step("activated", min_pilots_pending=5)(0, ctx(idle=1, pending=2))[0] == 3
    t = step("activated", **{"testmode.allowed": True, "testmode.pilots": 3})
    assert t(0, ctx(idle=50, site="test"))[0] == 3
    assert t(0, ctx(idle=50, pending=11, site="test"))[0] == 0  # testmode.max_pending, default 10
    assert step("activated")(0, ctx(idle=50, site="test"))[0] == 50  # test mode not allowed: as online


def test_apf_activated_options_load(write_conf):
    cfg = configmod.load(write_conf("""
        [Q]
        batchsubmitplugin = CondorLocal
        schedplugin = Activated
        sched.activated.min_pilots_per_cycle = 0
        sched.activated.max_jobs_torun = 500
        sched.activated.max_pilots_per_cycle = 50
        sched.activated.max_pilots_pending = 50
        sched.activated.min_pilots_pending = 2
        sched.activated.testmode.allowed = True
        sched.activated.testmode.pilots = 1
        """))
    (spec,) = cfg.queues[0].sched
    assert spec.opts["max_jobs_torun"] == 500 and spec.opts["testmode.allowed"] is True


def check_config(conf, capsys):
    code = main(["check-config", "--conf", conf])
    return code, capsys.readouterr()


@pytest.mark.parametrize("lines,key,message", [
    ("schedplugin = Ready, Throttle\nsched.throttle.ratio = 50", "sched.throttle.ratio",
     "must be at most 1 (a share of pilots), got 50"),
    ("schedplugin = ,", "schedplugin", "names no step"),
    ("schedplugin = Ready, MaxPending\nsched.maxpending.maximum = -1", "sched.maxpending.maximum", "at least 0"),
    ("schedplugin = Ready, MaxPerCycle\nsched.maxpercycle.maximum = ten", "sched.maxpercycle.maximum", "integer"),
    ("schedplugin = Ready, Scale\nsched.scale.factor = inf", "sched.scale.factor", "expected a finite number"),
])
def test_bad_sched_values_are_one_line_errors(write_conf, capsys, lines, key, message):
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n" + lines + "\n")
    code, out = check_config(conf, capsys)
    err = out.err.strip().splitlines()
    assert code == 2 and len(err) == 1, out.err
    queues = os.path.join(os.path.dirname(conf), "queues.conf")
    assert err[0].startswith(f"error: {queues}: [Q] {key}: ") and message in err[0]


def test_chain_runs_in_the_written_order(write_conf, emulated):
    queues = "[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\nsched.maxpercycle.maximum = 5\n" \
             "batchsubmitplugin = CondorLocal\n" \
             "[CAPPED]\nwmsqueue = A\nschedplugin = Ready, MaxPerCycle\n" \
             "[OVERRIDDEN]\nwmsqueue = A\nschedplugin = MaxPerCycle, Ready\n"
    factory, pool, _, _ = emulated(write_conf(queues))
    pool.schedd().add_jobs(12, TargetQueue="A")
    d = {x.queue: x for x in factory.cycle(dry_run=True)}
    assert [s.step for s in d["OVERRIDDEN"].steps] == ["maxpercycle", "ready"]
    assert (d["CAPPED"].n, d["OVERRIDDEN"].n) == (5, 12)  # Ready ignores its input
