"""Each APF policy step on hand-computed cases, and the faults of APF not copied."""
import pytest

from provisioner import plugins
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


@pytest.mark.parametrize("n,factor,expect", [(10, 0.25, 3), (7, 1.0, 7), (0, 3, 0), (-3, 0.5, -2)])
def test_scale_rounds_up(n, factor, expect):
    assert step("scale", factor=factor)(n, ctx())[0] == expect


def test_max_and_min_per_cycle():
    assert step("maxpercycle", maximum=5)(12, ctx())[0] == 5
    assert step("maxpercycle", maximum=5)(3, ctx())[0] == 3
    assert step("minpercycle", minimum=2)(0, ctx())[0] == 2
    assert step("minpercycle", minimum=2)(9, ctx())[0] == 9
    assert step("minpercycle", minimum=2)(-4, ctx())[0] == -4  # a retire is not turned into a submit


def test_maxpending_limits_but_never_retires_unless_asked():
    s = step("maxpending", maximum=10)
    assert s(8, ctx(pending=0))[0] == 8  # APF: no cap while nothing is pending
    assert s(8, ctx(pending=4))[0] == 6
    assert s(8, ctx(pending=15))[0] == 0  # APF returned -5 here and silently retired pilots
    assert step("maxpending", maximum=10, allow_negative=True)(8, ctx(pending=15))[0] == -5


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
    assert s(20, ctx(recent=old, now=now))[0] == 20


def test_activated_old_all_in_one():
    s = step("activated", max_pilots_per_cycle=10, max_pilots_pending=20, max_jobs_running=30)
    assert s(0, ctx(idle=100, pending=5, pilots_running=10))[0] == 10
    assert s(0, ctx(idle=100, pending=18, pilots_running=10))[0] == 2
    assert s(0, ctx(idle=100, pending=5, pilots_running=24))[0] == 1
    assert s(0, ctx(idle=3, pending=5))[0] == 0
