"""Properties of the policy chain on generated statuses and chains, through the factory's own
entry points (a config file -> Queue.decide; an emulated cycle): APF's formulas from
reference/apf.md with the README's deliberate differences, caps that hold, limiters that never
turn a submit into a retire, one-line reasons, determinism, the factory total and retires."""
import os
import re
import tempfile
from fractions import Fraction

from hypothesis import HealthCheck, given, settings, strategies as st

from provisioner import config as configmod, plugins
from provisioner.clock import VirtualClock
from provisioner.condor.emulator import HELD, IDLE, RUNNING, Pool
from provisioner.factory import Factory
from provisioner.ledger import Ledger
from provisioner.queue import Queue
from provisioner.sched.base import Context
from provisioner.services import Services
from provisioner.status import Pilots, StepResult, Work

NOW = 1_700_000_000.0
# derandomized: CI sees the same examples every run
FAST = settings(max_examples=150, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# Steps that only lower n (README: a limiter; Throttle and StatusOffline are caps here too).
CAPS = ("maxpercycle", "maxpending", "maxtorun", "maxperfactory", "statusoffline", "throttle")
STEPS = CAPS + ("ready", "fixed", "scale", "minpercycle", "minpending", "keepnrunning", "statustest",
                "activated", "apfretire")

small = st.integers(0, 10) | st.integers(0, 60)  # small values meet the status's counts more often
maybe = st.none() | small
OPTIONS = {  # every option of every step, None: left out (the default)
    "ready": {"offset": st.none() | st.integers(0, 20)},
    "fixed": {"pilotspercycle": maybe},
    "scale": {"factor": st.none() | st.floats(0, 4, allow_nan=False) | st.sampled_from([0.14, 0.07, 0.1])},
    "maxpercycle": {"maximum": maybe},
    "minpercycle": {"minimum": maybe},
    "maxpending": {"maximum": maybe, "allow_negative": st.none() | st.booleans()},
    "minpending": {"minimum": maybe},
    "maxtorun": {"maximum": maybe, "allow_negative": st.none() | st.booleans()},
    "keepnrunning": {"keep_running": maybe},
    "maxperfactory": {"maximum": st.none() | st.integers(0, 300)},
    "statusoffline": {"pilots": st.none() | st.integers(0, 5)},
    "statustest": {"pilots": st.none() | st.integers(0, 5)},
    "throttle": {"interval": st.none() | st.integers(1, 7200), "maxtime": st.none() | st.integers(0, 600),
                 "ratio": st.none() | st.floats(0, 1), "submit": st.none() | st.integers(0, 5),
                 "minpilots": st.none() | st.integers(1, 8)},
    "activated": {"max_jobs_torun": maybe, "min_pilots_pending": maybe, "max_pilots_per_cycle": maybe,
                  "min_pilots_per_cycle": maybe, "max_pilots_pending": maybe,
                  "testmode.allowed": st.none() | st.booleans(), "testmode.pilots": maybe,
                  "testmode.max_pending": maybe},
    "apfretire": {"keep_running": maybe},
}


@st.composite
def chains(draw, steps=STEPS, max_size=6):
    """(names in order, {name: {option: text}}) as a queue file would say them."""
    names = draw(st.lists(st.sampled_from(steps), min_size=1, max_size=max_size))
    return names, {name: draw(options_of(name)) for name in set(names)}


def options_of(name):
    def written(values):
        return {k: repr(v) if isinstance(v, float) else str(v) for k, v in values.items() if v is not None}
    return st.fixed_dictionaries(OPTIONS[name]).map(written)


@st.composite
def contexts(draw):
    pending = draw(st.integers(0, 10) | st.integers(0, 80))
    running = draw(st.integers(0, 10) | st.integers(0, 120))
    recent = draw(st.lists(st.tuples(st.floats(NOW - 8000, NOW), st.floats(0, 1200)), max_size=15))
    mine = pending + running
    total = draw(st.none() | st.integers(mine, mine + 400))  # the factory's total holds this queue's
    # none idle: where APFRetire acts
    work = Work(idle=draw(st.just(0) | st.integers(0, 300)), running=draw(st.integers(0, 300)),
                site_status=draw(st.sampled_from(["online", "offline", "test"])))
    pilots = Pilots(pending=pending, running=running, held=draw(st.integers(0, pending)), recent=recent)
    return Context("Q", NOW, work, pilots, total)


def queue_text(names, opts, section="Q", extra=""):
    lines = [f"[{section}]", "batchsubmitplugin = CondorLocal", "wmsstatus.condor.queueattribute = TargetQueue",
             "schedplugin = " + ", ".join(names), extra]
    lines += [f"sched.{name}.{k} = {v}" for name, o in sorted(opts.items()) for k, v in sorted(o.items())]
    return "\n".join(lines) + "\n"


def load(queues, factory_extra, tmp):
    with open(os.path.join(tmp, "queues.conf"), "w") as f:
        f.write("[DEFAULT]\napfqueue.sleep = 60\n" + queues)
    with open(os.path.join(tmp, "factory.conf"), "w") as f:
        f.write("[Factory]\nfactoryId = props\nqueueConf = queues.conf\nbaseLogDir = logs\n" + factory_extra)
    return configmod.load(os.path.join(tmp, "factory.conf"))


def build(names, opts, factory_max=None):
    """The queue the factory would build from this chain."""
    extra = "" if factory_max is None else f"maxperfactory.maximum = {factory_max}\n"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load(queue_text(names, opts), extra, tmp)
        clock = VirtualClock(NOW)
        return Queue(cfg.queues[0], Services(cfg.factory_id, clock, Pool(clock), log_dir=tmp))


def expected(name, o, n, ctx):
    """What apf.md (or the README, where it differs on purpose) says step ``name`` returns for input n."""
    p, w = ctx.pilots, ctx.work
    have = p.pending + p.running
    if name == "ready":
        return max(0, w.idle - o["offset"] - p.pending)
    if name == "fixed":
        return o["pilotspercycle"]
    if name == "maxpercycle":
        return n if o["maximum"] is None else min(n, o["maximum"])
    if name == "minpercycle":
        return n if o["minimum"] is None or n < 0 else max(n, o["minimum"])
    if name in ("maxpending", "maxtorun"):
        count = p.pending if name == "maxpending" else have
        if o["maximum"] is None or (name == "maxpending" and p.pending == 0):
            return n
        if o["allow_negative"]:
            return min(n, o["maximum"] - count)
        return n if n < 0 else max(0, min(n, o["maximum"] - count))
    if name == "minpending":
        return n if o["minimum"] is None else max(n, o["minimum"] - p.pending)
    if name == "keepnrunning":
        return (n if o["keep_running"] is None else o["keep_running"]) - have
    if name == "maxperfactory":
        if o["maximum"] is None or n <= 0:
            return n
        return 0 if ctx.factory_pilots is None else min(n, max(0, o["maximum"] - ctx.factory_pilots))
    if name == "statusoffline":
        return min(n, o["pilots"]) if w.site_status == "offline" else n
    if name == "statustest":
        return o["pilots"] if w.site_status == "test" else n
    if name == "throttle":
        ended = [run for end, run in p.recent if end >= NOW - o["interval"]]
        if n <= 0 or len(ended) < o["minpilots"]:
            return n
        young = sum(run < o["maxtime"] for run in ended) / len(ended)
        return min(n, o["submit"]) if young > o["ratio"] else n
    if name == "activated":
        return activated(o, ctx)
    if name == "apfretire":
        return n if n or w.idle else min(0, o["keep_running"] - have)
    assert name == "scale"
    return None  # a bound, not a value: see check_scale


def activated(o, ctx):
    p, site = ctx.pilots, ctx.work.site_status
    if site == "offline":
        return 0
    if site == "test" and o["testmode.allowed"]:
        return 0 if p.pending > o["testmode.max_pending"] else o["testmode.pilots"]
    out = max(0, ctx.work.idle - p.pending)  # APF's order: each option caps or raises the last
    for key, f, base in (("max_jobs_torun", min, p.pending + p.running), ("min_pilots_pending", max, p.pending),
                         ("max_pilots_per_cycle", min, 0), ("min_pilots_per_cycle", max, 0),
                         ("max_pilots_pending", min, p.pending)):
        if o[key] is not None:
            out = f(out, o[key] - base)
    return max(0, out)


def walked(q, d):
    """Each step of the queue's chain in decision d: its name, the step, the n it was given, its result."""
    n = 0
    for (name, step), result in zip(q.steps, d.steps):
        yield name, step, n, result
        n = result.n


def check_scale(written, n, out):
    # ceil(|n| x factor as written), with a retire's sign
    exact = abs(n) * Fraction(written.get("factor", "1.0"))
    assert abs(out) - 1 < exact <= abs(out) and (out <= 0 if n < 0 else out >= 0)


@FAST
@given(chains(), contexts())
def test_every_step_of_every_chain_follows_its_documented_formula(chain, ctx):
    names, opts = chain
    q = build(names, opts)
    d = q.decide(ctx)
    assert [s.step for s in d.steps] == names and d.n == d.steps[-1].n
    for name, step, n, result in walked(q, d):
        if name == "scale":
            check_scale(opts[name], n, result.n)
        else:
            assert result.n == expected(name, step.opts, n, ctx), (name, n, result)


@FAST
@given(chains(), contexts())
def test_caps_never_raise_n_and_never_turn_a_submit_into_a_retire(chain, ctx):
    names, opts = chain
    q = build(names, opts)
    for name, step, n, result in walked(q, q.decide(ctx)):
        if name in CAPS:
            assert result.n <= n, (name, n, result)
            if n >= 0 and not step.opts.get("allow_negative"):
                assert result.n >= 0, (name, n, result)
            if n < 0 and name in ("maxpercycle", "minpercycle", "maxperfactory", "statusoffline", "throttle"):
                assert result.n == n, (name, n, result)  # README: a retire asked before passes


@FAST
@given(chains(), st.lists(st.sampled_from(CAPS), min_size=1, max_size=3), contexts(), st.data())
def test_caps_at_the_end_bound_the_submit(chain, tail, ctx, data):
    names, opts = chain
    for name in set(tail) - set(opts):
        opts[name] = data.draw(options_of(name))
    names = names + tail
    q = build(names, opts)
    final = q.decide(ctx).n
    p, o = ctx.pilots, {name: step.opts for name, step in q.steps}
    if final <= 0:
        return
    if "maxpercycle" in tail and o["maxpercycle"]["maximum"] is not None:
        assert final <= o["maxpercycle"]["maximum"]
    if "maxpending" in tail and o["maxpending"]["maximum"] is not None and p.pending:
        assert p.pending + final <= o["maxpending"]["maximum"]
    if "maxtorun" in tail and o["maxtorun"]["maximum"] is not None:
        assert p.pending + p.running + final <= o["maxtorun"]["maximum"]
    if "maxperfactory" in tail and o["maxperfactory"]["maximum"] is not None:
        assert ctx.factory_pilots is not None and ctx.factory_pilots + final <= o["maxperfactory"]["maximum"]
    if "statusoffline" in tail and ctx.work.site_status == "offline":
        assert final <= o["statusoffline"]["pilots"]


@FAST
@given(chains(), contexts())
def test_an_offline_site_gets_nothing_from_a_chain_ending_in_its_guard(chain, ctx):
    names, opts = chain
    opts.setdefault("statusoffline", {}).pop("pilots", None)  # the default: none to an offline site
    ctx.work.site_status = "offline"
    for tail in (["statusoffline"], ["activated"], ["statusoffline", "maxpercycle"]):
        for name in tail:
            opts.setdefault(name, {})
        d = build(names + tail, opts).decide(ctx)
        assert d.n <= 0 and d.action != "submit", (tail, d.steps)


@FAST
@given(chains(), contexts())
def test_reasons_are_one_line_and_the_decision_is_deterministic(chain, ctx):
    names, opts = chain
    q = build(names, opts)
    first = q.decide(ctx)
    for name, step, n, s in walked(q, first):
        assert isinstance(s.reason, str) and s.reason.strip() and "\n" not in s.reason and "\r" not in s.reason
        assert f"{s.step}={s.n} ({s.reason})" in first.steps_text
        assert_reason_true(name, step.opts, n, s)
    again, fresh = q.decide(ctx), build(names, opts).decide(ctx)
    for d in (again, fresh):
        assert [(s.step, s.n, s.reason) for s in d.steps] == [(s.step, s.n, s.reason) for s in first.steps]
        assert (d.n, d.action, d.count, d.note) == (first.n, first.action, first.count, first.note)
    # the action follows n: a submit of n, a retire of -n (CondorLocal retires), else nothing
    assert (first.action, first.count) == (("submit", first.n) if first.n > 0 else
                                           ("retire", -first.n) if first.n < 0 else ("none", 0))


CLAIM = re.compile(r"(?:pending|have)=(\d+) (under|over) (\d+)")


def assert_reason_true(name, o, n, s):
    """What a reason says of the step's bound and input holds: the log and apfmon show it."""
    bound = "maximum" if "maximum" in o else "minimum" if "minimum" in o else None
    if bound and name != "maxperfactory" and o[bound] is None:  # maxperfactory: "no factory maximum"
        assert s.reason == f"no {bound}", (name, s)
    claim = CLAIM.search(s.reason)
    if claim:
        assert (int(claim[1]) <= int(claim[3])) == (claim[2] == "under"), (name, n, s)
    if s.reason in ("submitting", "under cap"):
        assert n > 0 if s.reason == "submitting" else o["maximum"] is not None, (name, n, s)


@settings(max_examples=600, derandomize=True, deadline=None)
@given(st.sampled_from(STEPS).flatmap(lambda name: st.tuples(st.just(name), options_of(name))),
       st.integers(-100, 100), contexts())
def test_each_steps_reason_is_true_for_any_input(step_opts, n, ctx):
    # any n, a retire too, as an earlier step may hand it; the step alone is cheap, so many examples
    name, written = step_opts
    cls = plugins.load("sched", name)
    o = {k: spec.parse(written.get(k)) for k, spec in cls.options.items()}
    out, reason = cls(None, o, None)(n, ctx)
    assert reason.strip() and "\n" not in reason
    assert_reason_true(name, o, n, StepResult(name, out, reason))


# Through the emulated factory: several queues, each with its own pilots, one real cycle.

@st.composite
def factories(draw, tails):
    """Queues (2 to 4) with a chain that starts from a step that asks for pilots, idle jobs and
    pilots (idle, running, held) already out; and the factory's maximum."""
    queues = []
    for i in range(draw(st.integers(2, 4))):
        names, opts = draw(chains(max_size=3))
        names = [draw(st.sampled_from(["ready", "fixed", "keepnrunning", "activated"]))] + names + draw(tails)
        for name in set(names) - set(opts):
            opts[name] = draw(options_of(name))
        opts.get("maxperfactory", {}).pop("maximum", None)  # the factory's maximum
        queues.append((f"Q{i}", names, opts, draw(st.integers(0, 40)),
                       [draw(st.integers(0, 5)) for _ in (IDLE, RUNNING, HELD)]))
    return queues, draw(st.integers(0, 60))


def run_cycle(queues, factory_max):
    """One real cycle: (decisions, pilots by queue before, pilots by queue after)."""
    with tempfile.TemporaryDirectory() as tmp:
        text = "".join(queue_text(names, opts, section=name, extra=f"wmsqueue = {name}")
                       for name, names, opts, _, _ in queues)
        cfg = load(text, f"maxperfactory.maximum = {factory_max}\n", tmp)
        clock = VirtualClock(NOW)
        pool = Pool(clock)
        factory = Factory(cfg, Services(cfg.factory_id, clock, pool, log_dir=tmp), Ledger(None, cfg.factory_id))
        schedd = pool.schedd()
        for q, (name, _, _, idle, states) in zip(factory.queues, queues):
            schedd.add_jobs(idle, TargetQueue=name)
            for status, count in zip((IDLE, RUNNING, HELD), states):
                ids = q.target.submit(count, Context(name, NOW, Work(), Pilots()), "seed") if count else []
                schedd.set_status(ids, status)

        def pilots():
            return {name: {f"{a['ClusterId']}.{a['ProcId']}": a["JobStatus"]
                           for a in schedd.query(f'ProvisionerQueue == "{name}"')} for name, *_ in queues}

        before = pilots()
        decisions = factory.cycle()
        return decisions, before, pilots()


@SLOW
@given(factories(st.lists(st.sampled_from(CAPS), max_size=2).map(lambda caps: ["maxperfactory"] + caps)))
def test_maxperfactory_holds_the_factory_total_over_queues_acting_in_order(setup):
    queues, factory_max = setup
    decisions, before, after = run_cycle(queues, factory_max)
    total = sum(len(p) for p in before.values())  # idle, running and held: all count
    for d in decisions:
        submitted = d.count if d.action == "submit" else 0
        assert submitted == 0 or total + submitted <= factory_max, (d.queue, total, d.reason)
        total += submitted
    assert sum(len(p) for p in after.values()) <= max(factory_max, sum(len(p) for p in before.values()))


@SLOW
@given(factories(st.sampled_from([[], ["keepnrunning"], ["apfretire"], ["maxtorun"]])))
def test_a_retire_takes_only_idle_pilots_and_at_most_what_the_chain_asked(setup):
    queues, factory_max = setup
    decisions, before, after = run_cycle(queues, factory_max)
    for d in decisions:
        gone = set(before[d.queue]) - set(after[d.queue])
        assert all(before[d.queue][jid] == IDLE for jid in gone), d.reason
        asked = -d.n if d.n < 0 else 0
        assert len(gone) <= asked and len(gone) == (d.count if d.action == "retire" else 0), d.reason
        assert len(gone) == min(asked, sum(s == IDLE for s in before[d.queue].values())), d.reason


# Regressions found by the properties above (reason texts that said the opposite of the status).

def test_a_limiter_passing_a_retire_says_the_count_is_over_its_maximum():
    ctx = Context("Q", NOW, Work(), Pilots(pending=15, running=0))
    for allow in ("True", "False"):
        q = build(["keepnrunning", "maxpending"], {"keepnrunning": {"keep_running": "0"},
                                                   "maxpending": {"maximum": "10", "allow_negative": allow}})
        assert q.decide(ctx).steps_text == ("keepnrunning=-15 (keep=0 have=15); "
                                            "maxpending=-15 (pending=15 over 10)")  # was "under 10"


def test_apfretire_passing_a_retire_does_not_call_it_submitting():
    d = build(["keepnrunning", "apfretire"], {"keepnrunning": {"keep_running": "1"}, "apfretire": {}}).decide(
        Context("Q", NOW, Work(idle=0), Pilots(pending=3, running=0)))
    assert (d.n, d.steps[-1].reason) == (-2, "retire asked before")  # was "submitting"


def test_maxpercycle_without_a_maximum_says_so():
    d = build(["fixed", "maxpercycle"], {"fixed": {"pilotspercycle": "4"}, "maxpercycle": {}}).decide(
        Context("Q", NOW, Work(), Pilots()))
    assert d.steps_text == "fixed=4 (fixed); maxpercycle=4 (no maximum)"  # was "under cap": there is none
