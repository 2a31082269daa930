"""Multi-queue cycles against the emulated pool: submit, cap, retire, one query per source."""
import pytest

from provisioner.condor.emulator import RUNNING, Schedd
from provisioner.factory import Factory

QUEUES = """
[DEFAULT]
wmsstatus.condor.queueattribute = TargetQueue
executable = /bin/wrapper.sh

[CE_A]
wmsqueue = A
batchsubmitplugin = CondorCE
batchsubmit.condorce.gridresource = ce-a.example.org
schedplugin = Ready, MaxPerCycle, MaxPending
sched.maxpercycle.maximum = 5
sched.maxpending.maximum = 8

[LOCAL_B]
wmsqueue = B
batchsubmitplugin = CondorLocal
schedplugin = Ready

[KEEP_C]
wmsqueue = C
batchsubmitplugin = CondorLocal
schedplugin = KeepNRunning
sched.keepnrunning.keep_running = 1
"""


def by_queue(decisions):
    return {d.queue: d for d in decisions}


def test_submit_cap_and_retire_across_cycles(write_conf, emulated):
    factory, pool, clock, ledger = emulated(write_conf(QUEUES))
    schedd = pool.schedd()
    schedd.add_jobs(12, TargetQueue="A")
    schedd.add_jobs(3, TargetQueue="B")
    d = by_queue(factory.cycle())
    assert (d["CE_A"].action, d["CE_A"].count) == ("submit", 5)  # MaxPerCycle caps 12
    assert (d["LOCAL_B"].action, d["LOCAL_B"].count) == ("submit", 3)
    assert (d["KEEP_C"].action, d["KEEP_C"].count) == ("submit", 1)
    pilots = schedd.query('ProvisionerQueue == "CE_A"', ["ProvisionerFactory", "ProvisionerLaunch", "JobUniverse"])
    assert len(pilots) == 5 and {p["ProvisionerFactory"] for p in pilots} == {"test-factory"}
    assert {p["JobUniverse"] for p in pilots} == {9}  # grid universe

    clock.advance_to(clock.now() + 60)
    d = by_queue(factory.cycle())
    # 12 ready - 5 pending = 7, capped at 5 per cycle, then 8 - 5 pending = 3.
    assert (d["CE_A"].action, d["CE_A"].count) == ("submit", 3)
    assert d["LOCAL_B"].action == "none"  # 3 ready, 3 pending
    assert d["KEEP_C"].action == "none"
    assert "maxpending=3 (pending=5 max=8)" in d["CE_A"].reason

    # Work for C appears only as more pilots than wanted: KeepNRunning retires the newest idle one.
    ids_c_first = [f"{a['ClusterId']}.{a['ProcId']}" for a in schedd.query('ProvisionerQueue == "KEEP_C"')]
    factory.queues[2].target.submit(2, _ctx(clock), "extra")
    clock.advance_to(clock.now() + 60)
    d = by_queue(factory.cycle())
    assert (d["KEEP_C"].action, d["KEEP_C"].count) == ("retire", 2)
    left = [f"{a['ClusterId']}.{a['ProcId']}" for a in schedd.query('ProvisionerQueue == "KEEP_C"')]
    assert left == ids_c_first  # the two newest went, the oldest stayed


def _ctx(clock):
    from types import SimpleNamespace

    return SimpleNamespace(now=clock.now())


def test_retire_never_removes_running_pilots(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    schedd = pool.schedd()
    factory.cycle()  # KEEP_C submits 1
    keep = [f"{a['ClusterId']}.{a['ProcId']}" for a in schedd.query('ProvisionerQueue == "KEEP_C"')]
    extra = factory.queues[2].target.submit(3, _ctx(clock), "extra")
    schedd.set_status(keep + extra[:2], RUNNING)  # 3 running, 1 idle; keep 1 -> retire 3 wanted
    clock.advance_to(clock.now() + 60)
    d = by_queue(factory.cycle())
    assert d["KEEP_C"].n == -3 and d["KEEP_C"].ids == [extra[2]]
    assert len(schedd.query('ProvisionerQueue == "KEEP_C" && JobStatus == 2')) == 3


def test_one_query_per_source_per_cycle_for_many_queues(write_conf, emulated):
    sections = "".join(f"[Q{i}]\nwmsqueue = W{i}\nbatchsubmitplugin = CondorLocal\n" for i in range(200))
    factory, pool, clock, _ = emulated(write_conf("[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\n"
                                                  + sections))
    for i in range(0, 200, 7):
        pool.schedd().add_jobs(2, TargetQueue=f"W{i}")
    before = pool.schedd().calls["query"]
    decisions = factory.cycle()
    assert len(decisions) == 200
    assert pool.schedd().calls["query"] - before == 2  # one for jobs, one for pilots
    assert pool.schedd().calls["submit"] == len(range(0, 200, 7))  # one transaction per queue
    assert sum(d.count for d in decisions) == 2 * len(range(0, 200, 7))


def test_schedd_down_skips_without_deciding(write_conf, emulated):
    factory, pool, clock, ledger = emulated(write_conf(QUEUES))
    pool.schedd().add_jobs(4, TargetQueue="B")
    pool.schedd().down = True
    d = factory.cycle()
    assert {x.action for x in d} == {"skip"}
    assert "status unavailable" in d[0].note
    pool.schedd().down = False
    clock.advance_to(clock.now() + 60)
    assert by_queue(factory.cycle())["LOCAL_B"].count == 4
    assert ledger.last_decisions()["LOCAL_B"]["action"] == "submit"


def test_a_bug_in_one_queues_plugin_skips_that_queue_and_the_others_go_on(write_conf, emulated, caplog):
    factory, pool, clock, ledger = emulated(write_conf(QUEUES))
    pool.schedd().add_jobs(4, TargetQueue="A")
    pool.schedd().add_jobs(4, TargetQueue="B")
    a, b, c = factory.queues

    def bug(*args):
        raise KeyError("EnteredCurrentStatus")

    for broken in ("batch.pilots", "decide", "target.submit"):
        owner = a.batch if broken == "batch.pilots" else a.target if broken == "target.submit" else a
        original = getattr(owner, broken.split(".")[-1])
        setattr(owner, broken.split(".")[-1], bug)
        with caplog.at_level("ERROR", logger="provisioner"):
            d = by_queue(factory.cycle())
        setattr(owner, broken.split(".")[-1], original)
        assert d["CE_A"].action == "skip", broken
        assert d["CE_A"].note == "internal error, skipping cycle: KeyError('EnteredCurrentStatus')", broken
        assert "Traceback" in caplog.text and "KeyError: 'EnteredCurrentStatus'" in caplog.text
        assert d["KEEP_C"].action in ("submit", "none") and ledger.last_decisions()["CE_A"]["action"] == "skip"
        caplog.clear()
        clock.advance_to(clock.now() + 60)
    assert by_queue(factory.cycle())["CE_A"].action == "submit"
    assert pool.schedd().calls["submit"] >= 2  # B and C submitted while A was broken
    failed = [r for r in ledger.actions("CE_A") if r["state"] == "interrupted"]
    assert [r["note"] for r in failed] == ["internal error: KeyError('EnteredCurrentStatus')"]  # not left open


def test_a_bug_in_a_status_source_skips_the_queues_reading_it(write_conf, emulated, monkeypatch, caplog):
    factory, pool, clock, ledger = emulated(write_conf(QUEUES))
    pool.schedd().add_jobs(4, TargetQueue="B")
    source = factory.queues[0].wms.source
    monkeypatch.setattr(source, "read", lambda now: {}["JobStatus"])
    with caplog.at_level("ERROR", logger="provisioner"):
        d = factory.cycle()
    assert {x.action for x in d} == {"skip"} and "KeyError: 'JobStatus'" in caplog.text
    assert "status source of CE_A, LOCAL_B, KEEP_C failed" in caplog.text  # not its key: it may hold credentials
    assert d[0].note == "status unavailable, skipping cycle: internal error: KeyError('JobStatus')"
    monkeypatch.undo()
    clock.advance_to(clock.now() + 60)
    assert by_queue(factory.cycle())["LOCAL_B"].count == 4


def test_a_submission_is_cut_to_max_jobs_per_submission(write_conf, emulated, caplog):
    factory, pool, clock, ledger = emulated(write_conf(QUEUES))
    pool.jobs_per_submission = 2  # the schedd refuses a transaction of more jobs
    pool.schedd().add_jobs(3, TargetQueue="B")
    with caplog.at_level("WARNING", logger="provisioner"):
        d = by_queue(factory.cycle())
    assert (d["LOCAL_B"].action, d["LOCAL_B"].count) == ("submit", 2)
    assert "queue=LOCAL_B submits 2 of 3 pilots: MAX_JOBS_PER_SUBMISSION is 2" in caplog.text
    clock.advance_to(clock.now() + 60)
    assert by_queue(factory.cycle())["LOCAL_B"].count == 1  # the rest, next cycle


def test_queues_cycle_on_their_own_intervals(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(
        "[FAST]\nbatchsubmitplugin = CondorLocal\napfqueue.sleep = 30\n"
        "[SLOW]\nbatchsubmitplugin = CondorLocal\napfqueue.sleep = 90\n"))
    seen = []
    for _ in range(6):
        seen.append(sorted(d.queue for d in factory.cycle()))
        clock.advance_to(factory.next_wake())
    assert seen == [["FAST", "SLOW"], ["FAST"], ["FAST"], ["FAST", "SLOW"], ["FAST"], ["FAST"]]


def test_maxperfactory_counts_what_earlier_queues_submitted_this_cycle(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(
        "[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\nschedplugin = Ready, MaxPerFactory\n"
        "batchsubmitplugin = CondorLocal\n[A]\n[B]\n", factory_extra="maxperfactory.maximum = 10\n"))
    pool.schedd().add_jobs(7, TargetQueue="A")
    pool.schedd().add_jobs(7, TargetQueue="B")
    d = by_queue(factory.cycle())
    assert (d["A"].count, d["B"].count) == (7, 3)


def test_maxperfactory_counts_the_pilots_of_a_disabled_queue(write_conf, emulated):
    conf = ("[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\nschedplugin = Ready, MaxPerFactory\n"
            "batchsubmitplugin = CondorLocal\n[A]\n[C]\nenabled = {}\n")
    factory, pool, clock, _ = emulated(write_conf(conf.format(True), factory_extra="maxperfactory.maximum = 10\n"))
    pool.schedd().add_jobs(8, TargetQueue="C")
    assert by_queue(factory.cycle())["C"].count == 8
    # C disabled: its 8 pilots stay in the schedd and still count against the factory's 10.
    factory, _, clock, _ = emulated(write_conf(conf.format(False), factory_extra="maxperfactory.maximum = 10\n"),
                                    pool=pool)
    pool.schedd().add_jobs(8, TargetQueue="A")
    d = by_queue(factory.cycle())
    assert d["A"].count == 2 and "factory has 8 of 10" in d["A"].reason


def test_maxperfactory_holds_while_another_queues_pilots_cannot_be_read(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(
        "[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\nschedplugin = Ready, MaxPerFactory\n"
        "batchsubmitplugin = CondorLocal\n[A]\nbatchstatus.condor.scheddhost = remote\n[B]\n",
        factory_extra="maxperfactory.maximum = 10\n"))
    pool.schedds["remote"] = Schedd(pool, "remote")
    pool.schedds["remote"].down = True  # A's pilots, maybe many, cannot be counted
    pool.schedd().add_jobs(7, TargetQueue="B")
    d = by_queue(factory.cycle())
    assert d["A"].action == "skip" and (d["B"].n, d["B"].action) == (0, "none")
    assert "factory total unknown" in d["B"].reason
    pool.schedds["remote"].down = False
    clock.advance_to(clock.now() + 60)
    assert by_queue(factory.cycle())["B"].count == 7


def test_dry_run_changes_nothing(write_conf, emulated):
    factory, pool, clock, ledger = emulated(write_conf(QUEUES))
    pool.schedd().add_jobs(4, TargetQueue="B")
    d = by_queue(factory.cycle(dry_run=True))
    assert (d["LOCAL_B"].action, d["LOCAL_B"].count) == ("submit", 4)
    assert pool.schedd().calls["submit"] == 0 and ledger.actions() == [] and ledger.last_decisions() == {}


def test_restarted_factory_finds_its_own_pilots(write_conf, emulated):
    conf = write_conf(QUEUES)
    factory, pool, clock, ledger = emulated(conf)
    pool.schedd().add_jobs(3, TargetQueue="B")
    factory.cycle()
    restarted = Factory(factory.config, factory.services, ledger)
    clock.advance_to(clock.now() + 60)
    d = by_queue(restarted.cycle())
    assert d["LOCAL_B"].pilots.pending == 3 and d["LOCAL_B"].action == "none"


@pytest.mark.parametrize("other", ["someone-else", "TEST-factory"])  # '==' on strings ignores case
def test_other_factories_pilots_are_not_ours(write_conf, emulated, other):
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    pool.schedd().add_jobs(2, TargetQueue="B", ProvisionerFactory=other, ProvisionerQueue="LOCAL_B")
    pool.schedd().add_jobs(2, TargetQueue="B")
    d = by_queue(factory.cycle())
    # Another factory's pilots are neither our work nor our supply.
    assert d["LOCAL_B"].work.idle == 2 and d["LOCAL_B"].pilots.pending == 0


def test_ledger_records_intent_and_ids(write_conf, emulated):
    factory, pool, clock, ledger = emulated(write_conf(QUEUES))
    pool.schedd().add_jobs(2, TargetQueue="B")
    factory.cycle()
    (act,) = [a for a in ledger.actions() if a["queue"] == "LOCAL_B"]
    assert act["state"] == "done" and act["count"] == 2 and act["launch_id"].startswith("test-factory-")
    launch = pool.schedd().query('ProvisionerQueue == "LOCAL_B"', ["ProvisionerLaunch"])
    assert {a["ProvisionerLaunch"] for a in launch} == {act["launch_id"]}
    assert ledger.open_intents() == []


def test_a_step_can_ask_for_its_queue_to_be_decided_sooner(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(
        "[BURST]\nbatchsubmitplugin = CondorLocal\nschedplugin = Elastic\nsched.elastic.recheck = 15\n"
        "[STEADY]\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready\n"))
    schedd = pool.schedd()
    schedd.add_jobs(2)
    factory.cycle()
    start = clock.now()
    assert factory.next_wake() == start + 15  # new jobs wait: Elastic looks again after 15 s
    clock.advance_to(factory.next_wake())
    assert [d.queue for d in factory.cycle()] == ["BURST"]  # only the queue that asked
    assert factory.next_wake() == start + 60  # nothing new: STEADY's interval comes first
    clock.advance_to(start + 50)
    schedd.add_jobs(1)
    clock.advance_to(factory.next_wake())
    assert [d.queue for d in factory.cycle()] == ["STEADY"]
    assert factory.next_wake() == start + 75  # BURST's interval from its last decision
    clock.advance_to(factory.next_wake())
    assert [d.queue for d in factory.cycle()] == ["BURST"]
    assert factory.next_wake() == clock.now() + 15  # a job came since its last look, and waits


HELD_CE = """
[CE]
wmsqueue = A
wmsstatus.condor.queueattribute = TargetQueue
executable = /bin/wrapper.sh
batchsubmitplugin = CondorCE
batchsubmit.condorce.gridresource = ce.example.org
schedplugin = Ready, MaxPerCycle, MaxPending
sched.maxpercycle.maximum = 10
sched.maxpending.maximum = 10
"""


def test_held_pilots_count_as_pending_until_periodic_remove_takes_them(write_conf, emulated):
    factory, pool, clock, ledger = emulated(write_conf(HELD_CE))
    schedd = pool.schedd()
    schedd.add_jobs(100, TargetQueue="A")
    assert factory.cycle()[0].count == 10
    pilots = [f"{a['ClusterId']}.{a['ProcId']}" for a in schedd.query('ProvisionerQueue == "CE"')]
    schedd.set_status(pilots, 5)  # the CE holds every pilot
    clock.advance_to(clock.now() + 60)
    d = factory.cycle()[0]
    assert d.action == "none" and (d.pilots.pending, d.pilots.held) == (10, 10)  # no new batch to hold
    clock.advance_to(clock.now() + 3600)
    d = factory.cycle()[0]  # held for over an hour: the schedd removed them, the queue submits again
    assert d.action == "submit" and d.count == 10 and d.pilots.held == 0
    assert not schedd.query('ProvisionerQueue == "CE" && JobStatus == 5')


def test_a_constraint_on_htcondors_default_request_expressions_counts_the_jobs(write_conf, emulated):
    # Without request_memory, HTCondor writes RequestMemory = ifthenelse(MemoryUsage isnt undefined,
    # MemoryUsage, (ImageSize + 1023) / 1024) and RequestDisk = DiskUsage: the status query must
    # bring what they read, or the constraint sees undefined and no job waits.
    import htcondor2

    factory, pool, clock, _ = emulated(write_conf(
        "[SMALL]\nbatchsubmitplugin = CondorLocal\n"
        "wmsstatus.condor.constraint = RequestMemory <= 2048 && RequestDisk < 100000\n"))
    pool.schedd().submit(htcondor2.Submit({"executable": "/bin/true"}), count=3)
    (d,) = factory.cycle(dry_run=True)
    assert d.work.idle == 3 and (d.action, d.count) == ("submit", 3)


@pytest.mark.parametrize("attribute", ["periodic_remove", "+PeriodicRemove"])
def test_a_configured_periodic_remove_still_takes_held_pilots(write_conf, emulated, attribute):
    # APF files often set one for running pilots; it replaced ours, and pilots held at the CE
    # stayed, counted as pending: MaxPending stopped the queue for good.
    factory, pool, clock, _ = emulated(write_conf(
        HELD_CE + f"batchsubmit.condorce.condor_attributes = {attribute} = JobStatus == 2 && "
                  f"time() - EnteredCurrentStatus > 604800\n"))
    schedd = pool.schedd()
    schedd.add_jobs(100, TargetQueue="A")
    (d,) = factory.cycle()
    assert d.count == 10
    assert "604800" in str(schedd.jobs[d.ids[0]].lookup("PeriodicRemove"))  # the configured one stays
    schedd.set_status(d.ids, 5)
    clock.advance_to(clock.now() + 3660)
    (d,) = factory.cycle()
    assert d.pilots.held == 0 and (d.action, d.count) == ("submit", 10)


def test_queues_reading_the_same_jobs_are_warned_of(write_conf, emulated, caplog):
    import logging

    same = "[DEFAULT]\nbatchsubmitplugin = CondorLocal\n[A]\nwmsqueue = X\n[B]\nwmsqueue = Y\n[C]\nwmsqueue = Y\n"
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        emulated(write_conf(same))  # wmsqueue alone selects nothing: every idle job is each one's
    assert [r.getMessage() for r in caplog.records if "same jobs" in r.getMessage()] == [
        "queues A, B, C read the same jobs (their wmsstatus options do not tell them apart): each provisions "
        "for all of them"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        emulated(write_conf(same.replace("[A]", "wmsstatus.condor.queueattribute = TargetQueue\n[A]")))
    assert [r.getMessage().split(" read")[0] for r in caplog.records if "same jobs" in r.getMessage()] == [
        "queues B, C"]
