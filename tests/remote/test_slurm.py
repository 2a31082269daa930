"""SSHSlurm target and status against a real sshd and a real one-node Slurm (2 CPUs)."""
import logging
import os
import pwd
import subprocess
import uuid
from types import SimpleNamespace

import pytest

from provisioner.errors import TargetError
from provisioner.remote import slurm as slurmcmd
from provisioner.remote import ssh
from tests.remote.conftest import SSHD, USER, wait_for


def queues(endpoint, workdir, sections, executable="/bin/sleep", arguments="300"):
    return f"""
[DEFAULT]
wmsstatus.condor.queueattribute = TargetQueue
batchsubmitplugin = SSHSlurm
batchstatusplugin = SSHSlurm
executable = {executable}
executable.arguments = {arguments}
batchsubmit.sshslurm.host = 127.0.0.1
batchsubmit.sshslurm.port = {endpoint.port}
batchsubmit.sshslurm.user = {USER}
batchsubmit.sshslurm.key = {endpoint.key}
batchsubmit.sshslurm.known_hosts = {endpoint.known_hosts}
batchsubmit.sshslurm.workdir = {workdir}
batchsubmit.sshslurm.timeout = 10
{sections}"""


def by_queue(decisions):
    return {d.queue: d for d in decisions}


def ctx(clock, pilots=None):
    return SimpleNamespace(now=clock.now(), pilots=pilots)


@pytest.fixture
def build(write_conf, emulated):
    """build(queues_text, factory_id=...) -> (factory, pool, clock); SSH connections closed after."""
    made = []

    def make(text, **kwargs):
        factory, pool, clock, _ = emulated(write_conf(text, **kwargs))
        made.append(factory)
        return factory, pool, clock

    yield make
    for factory in made:
        ssh.connections(factory.services).close()


def test_submit_is_one_sbatch_creating_tasks_that_carry_the_identity(build, endpoint, slurm, calls):
    factory, _, clock = build(queues(endpoint, slurm.workdir, "[SA]\n"))
    ids = factory.queues[0].target.submit(5, ctx(clock), "test-factory-7")
    assert [c[0] for c in calls] == ["sbatch"] and "--array=0-4" in calls[0]
    job = ids[0].split("_")[0]
    assert ids == [f"{job}_{i}" for i in range(5)]
    seen = slurm.tasks()
    assert set(seen) == set(ids)
    assert {k for _, k in seen.values()} == {"provisioner:test-factory:SA:test-factory-7"}


def test_an_array_over_the_clusters_max_array_size_is_cut_to_it(build, endpoint, slurm, calls, caplog):
    factory, _, clock = build(queues(endpoint, slurm.workdir, "[SA]\n"))
    target = factory.queues[0].target
    with caplog.at_level("WARNING", logger="provisioner"):
        ids = target.submit(9, ctx(clock), "big")  # the test cluster's MaxArraySize is 6
    assert [c[0] for c in calls] == ["sbatch", "scontrol", "sbatch"] and "--array=0-5" in calls[-1]
    assert len(ids) == 6 and set(ids) <= set(slurm.tasks())
    assert "queue=SA submits 6 of 9 pilots: the cluster's MaxArraySize is 6" in caplog.text
    del calls[:]
    assert len(target.submit(7, ctx(clock), "again")) == 6 and [c[0] for c in calls] == ["sbatch"]  # learnt once
    assert len(target.submit(2, ctx(clock), "small")) == 2


def test_status_groups_per_queue_with_one_squeue_per_cycle(build, endpoint, slurm, calls):
    sections = ("schedplugin = Ready, MaxToRun\n[SA]\nwmsqueue = A\nsched.maxtorun.maximum = 3\n"
                "[SB]\nwmsqueue = B\nsched.maxtorun.maximum = 2\n")
    factory, pool, clock = build(queues(endpoint, slurm.workdir, sections))
    pool.schedd().add_jobs(3, TargetQueue="A")
    pool.schedd().add_jobs(2, TargetQueue="B")
    d = by_queue(factory.cycle())
    assert (d["SA"].action, d["SA"].count, d["SB"].action, d["SB"].count) == ("submit", 3, "submit", 2)
    assert [c[0] for c in calls] == ["squeue", "sbatch", "sbatch"]
    slurm.wait_tasks(lambda t: sum(s == "RUNNING" for s, _ in t.values()) == 2, "2 running tasks")
    calls.clear()
    clock.advance_to(clock.now() + 60)
    d = by_queue(factory.cycle())
    assert [c[0] for c in calls] == ["squeue"]
    assert d["SA"].pilots.pending + d["SA"].pilots.running == 3
    assert d["SB"].pilots.pending + d["SB"].pilots.running == 2
    assert d["SA"].pilots.running + d["SB"].pilots.running == 2  # 2 CPUs
    assert {t.launch for t in d["SA"].pilots.records} == {factory.ledger.actions("SA")[0]["launch_id"]}
    assert (d["SA"].action, d["SB"].action) == ("none", "none")


def test_maxperfactory_counts_the_tasks_of_a_disabled_queue(build, endpoint, slurm):
    sections = ("schedplugin = Ready, MaxPerFactory\n[SA]\nwmsqueue = A\n[SC]\nwmsqueue = C\nenabled = {}\n")
    factory, pool, clock = build(queues(endpoint, slurm.workdir, sections.format(True)),
                                 factory_extra="maxperfactory.maximum = 5\n")
    pool.schedd().add_jobs(3, TargetQueue="C")
    assert by_queue(factory.cycle())["SC"].count == 3
    factory, pool, clock = build(queues(endpoint, slurm.workdir, sections.format(False)),
                                 factory_extra="maxperfactory.maximum = 5\n")
    pool.schedd().add_jobs(4, TargetQueue="A")
    d = by_queue(factory.cycle())["SA"]
    assert d.count == 2 and "factory has 3 of 5" in d.reason


def test_retire_cancels_only_the_newest_pending_tasks(build, endpoint, slurm):
    sections = "[KEEP]\nschedplugin = KeepNRunning\nsched.keepnrunning.keep_running = 4\n"
    factory, _, clock = build(queues(endpoint, slurm.workdir, sections))
    target = factory.queues[0].target
    running = target.submit(2, ctx(clock), "first")
    slurm.wait_tasks(lambda t: [t.get(i, ("",))[0] for i in running] == ["RUNNING"] * 2, "2 running tasks")
    # one array: Slurm keeps its pending tasks in one record until a task is split out
    pending = target.submit(4, ctx(clock), "second")
    d = by_queue(factory.cycle())["KEEP"]
    assert (d.n, d.action, d.ids) == (-2, "retire", [pending[3], pending[2]])
    slurm.wait_tasks(lambda t: set(t) == {*running, *pending[:2]}, "the 2 cancelled tasks to leave")
    assert [slurm.tasks()[i][0] for i in [*running, *pending[:2]]] == ["RUNNING"] * 2 + ["PENDING"] * 2
    # A task that started after the status was read is spared by Slurm itself, not left
    # held, and not reported as cancelled.
    conn = ssh.connections(factory.services).get(factory.queues[0].batch.endpoint)
    assert slurmcmd.cancel_pending(conn, [running[0], pending[1]]) == [pending[1]]
    slurm.wait_tasks(lambda t: pending[1] not in t, "the cancelled task to leave")
    assert slurm.tasks()[running[0]][0] == "RUNNING"
    assert float(slurm.cmd("squeue", "-h", "-j", running[0], "-o", "%p")) > 0  # a held job has priority 0


def test_a_retire_interrupted_after_its_hold_leaves_no_task_held(build, endpoint, slurm):
    factory, _, clock = build(queues(endpoint, slurm.workdir, "[SA]\n"))
    target = factory.queues[0].target
    running = target.submit(2, ctx(clock), "first")
    slurm.wait_tasks(lambda t: [t.get(i, ("",))[0] for i in running] == ["RUNNING"] * 2, "2 running tasks")
    pending = target.submit(3, ctx(clock), "second")
    # The session ends between the hold and the cancel: this scancel terminates the shell.
    shim = os.path.join(slurm.root, "interrupting-scancel")  # where the remote user can read
    os.makedirs(shim, mode=0o755, exist_ok=True)
    with open(os.path.join(shim, "scancel"), "w") as fh:
        fh.write("#!/bin/sh\nkill -TERM $PPID\n")
    os.chmod(os.path.join(shim, "scancel"), 0o755)
    conn = ssh.connections(factory.services).get(factory.queues[0].batch.endpoint)
    status, _, _ = conn.run(["env", f"PATH={shim}:/usr/bin:/bin", "sh", "-c", slurmcmd._CANCEL_PENDING, "sh",
                             *pending[1:]])
    assert status == 129  # interrupted, as the trap says
    assert [slurm.tasks()[i][0] for i in pending] == ["PENDING"] * 3
    priorities = [float(slurm.cmd("squeue", "-h", "-j", i, "-o", "%p")) for i in pending]
    assert all(p > 0 for p in priorities), priorities  # a held job has priority 0


def test_unreadable_squeue_output_skips_the_cycle_naming_queue_and_host(build, endpoint, slurm, caplog):
    # a factory id of its own: Slurm lists the forged job for MinJobAge after the test cancels it
    factory, pool, clock = build(queues(endpoint, slurm.workdir, "[SA]\nwmsqueue = A\n"), factory_id="forged")
    pool.schedd().add_jobs(1, TargetQueue="A")
    # Another job of the account whose comment spans lines: squeue prints a line that looks like ours.
    forged = "x\n9x|1|PENDING|N/A|0:00|provisioner:forged:SA:forged"
    conn = ssh.connections(factory.services).get(factory.queues[0].batch.endpoint)
    assert conn.run(["sbatch", "--hold", f"--comment={forged}"], stdin="#!/bin/sh\ntrue\n")[0] == 0
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d = by_queue(factory.cycle())["SA"]
    assert d.action == "skip" and f"ssh {USER}@127.0.0.1:{endpoint.port}: squeue answered an unreadable line" in d.note
    assert any(r.getMessage().startswith("queue=SA status unavailable") for r in caplog.records)


def test_hostile_values_never_execute_remotely(build, endpoint, slurm):
    pwn = f"/tmp/provisioner-pwn-{uuid.uuid4().hex}"
    arguments = f""""$(touch {pwn})" ';' "it's" 'a "b"' '`touch {pwn}`' '|' '&&' 'touch {pwn}'"""
    factory, _, clock = build(queues(endpoint, slurm.workdir, "[SA]\n", executable="/bin/echo",
                                     arguments=arguments))
    factory.services.factory_id = f"f;$(touch {pwn})"  # config refuses it; quoting must not depend on that
    target = factory.queues[0].target
    (task,) = target.submit(1, ctx(clock), f"l'$(touch {pwn})")
    out = os.path.join(slurm.workdir, f"SA-{task}.out")
    slurm.wait_tasks(lambda t: not t and os.path.exists(out), "the echo pilot to finish")
    with open(out) as fh:
        assert fh.read() == f"$(touch {pwn}) ; it's a \"b\" `touch {pwn}` | && touch {pwn}\n"
    target.opts["partition"] = f"x; touch {pwn}"
    with pytest.raises(TargetError, match=f"^ssh {USER}@127.0.0.1:{endpoint.port}: sbatch failed: .*invalid partition"):
        target.submit(1, ctx(clock), "l2")
    assert not os.path.exists(pwn)


def test_a_pilot_carries_autopyfactorys_environment_with_its_task_id(build, endpoint, slurm):
    # APF's names, as HTCondor pilots have them: a pilot reports to apfmon as $APFFID:$APFCID,
    # which must be the id the factory registered there, and PanDA's reads PANDA_JSID.
    factory, _, clock = build(queues(endpoint, slurm.workdir, "[SA]\n", executable="/usr/bin/env", arguments=""))
    (task,) = factory.queues[0].target.submit(1, ctx(clock), "env")
    out = os.path.join(slurm.workdir, f"SA-{task}.out")
    slurm.wait_tasks(lambda t: task not in t and os.path.exists(out), "the env pilot to finish")
    with open(out) as fh:
        env = dict(line.split("=", 1) for line in fh.read().splitlines() if "=" in line)
    assert {k: env.get(k) for k in ("APFFID", "PANDA_JSID", "APFCID", "FACTORYQUEUE", "PROVISIONER_LAUNCH")} == {
        "APFFID": "test-factory", "PANDA_JSID": "test-factory", "APFCID": task, "FACTORYQUEUE": "SA",
        "PROVISIONER_LAUNCH": "env"}


@pytest.mark.parametrize("kind, reason", [("missing", "no such directory"),
                                          ("read-only", f"not writable by {USER}")])
def test_a_workdir_missing_or_not_writable_fails_the_submission_naming_it(build, endpoint, slurm, kind, reason):
    # sbatch takes any --chdir: every pilot would fail at launch while the factory logged "submit".
    workdir = os.path.join(slurm.root, f"workdir-{kind}")
    if kind == "read-only":
        os.makedirs(workdir, mode=0o755, exist_ok=True)  # root's
    factory, pool, _ = build(queues(endpoint, workdir, "[SA]\nwmsqueue = A\n"))
    pool.schedd().add_jobs(2, TargetQueue="A")
    d = by_queue(factory.cycle())["SA"]
    assert d.action == "failed" and d.note == (f"submit failed: ssh {USER}@127.0.0.1:{endpoint.port}: sbatch failed: "
                                               f"workdir {workdir}: {reason}")
    assert not slurm.tasks()


def test_sshd_down_skips_the_cycle_with_a_warning(build, new_sshd, endpoint, slurm, caplog):
    new_sshd.start()
    known = new_sshd.known_hosts(endpoint.known_hosts + f"-{new_sshd.port}")
    text = queues(endpoint, slurm.workdir, "[SA]\nwmsqueue = A\n").replace(
        f"port = {endpoint.port}", f"port = {new_sshd.port}").replace(endpoint.known_hosts, known)
    factory, pool, clock = build(text)
    pool.schedd().add_jobs(2, TargetQueue="A")
    assert by_queue(factory.cycle())["SA"].count == 2
    new_sshd.stop()
    ssh.connections(factory.services).close()  # as if the network dropped the kept connection
    clock.advance_to(clock.now() + 60)
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d = by_queue(factory.cycle())["SA"]
    assert d.action == "skip" and "unreachable" in d.note
    assert any("queue=SA status unavailable" in r.getMessage() for r in caplog.records)
    new_sshd.start()
    clock.advance_to(clock.now() + 60)
    d = by_queue(factory.cycle())["SA"]
    assert d.pilots.pending + d.pilots.running == 2 and d.action == "none"


def test_a_pilot_that_dies_between_two_reads_is_seen_with_how_long_it_ran(build, endpoint, slurm):
    # a queue of its own: Slurm still lists the ended pilots of earlier tests
    factory, _, clock = build(queues(endpoint, slurm.workdir, "[DIES]\n", executable="/bin/true", arguments=""))
    queue = factory.queues[0]
    ids = queue.target.submit(2, ctx(clock), "dies")
    slurm.wait_tasks(lambda t: not set(ids) & set(t), "both pilots to run and end")  # never read running
    for _ in range(2):  # counted once, though Slurm lists them for MinJobAge
        pilots = queue.batch.pilots(queue.batch.source.read(clock.now()))
        assert (pilots.pending, pilots.running, pilots.held) == (0, 0, 0)
        assert len(pilots.recent) == 2 and all(run < 30 for _, run in pilots.recent)


def test_pilots_cancelled_while_pending_are_not_counted_as_short_lived(build, endpoint, slurm):
    # Slurm gives a task cancelled while pending a start time (the time of the cancel):
    # read as a pilot that ran 0 s, every retire would look like a black hole to Throttle.
    text = queues(endpoint, slurm.workdir, "[RETIRED]\nbatchsubmit.sshslurm.sbatch_args = --hold\n")
    factory, _, clock = build(text)
    queue = factory.queues[0]
    ids = queue.target.submit(5, ctx(clock), "retired")
    pilots = queue.batch.pilots(queue.batch.source.read(clock.now()))
    assert sorted(queue.target.retire(5, ctx(clock, pilots))) == sorted(ids)
    slurm.wait_tasks(lambda t: not set(ids) & set(t), "the cancelled pilots to leave")
    clock.advance_to(clock.now() + 60)
    pilots = queue.batch.pilots(queue.batch.source.read(clock.now()))
    assert (pilots.pending, pilots.running, pilots.recent) == (0, 0, [])


@pytest.fixture
def chatty_login(slurm):
    """The remote account's shell is bash, whose ~/.bashrc prints a greeting, as some sites' do."""
    bashrc = os.path.join(pwd.getpwnam(USER).pw_dir, ".bashrc")
    with open(bashrc) as fh:
        kept = fh.read()
    subprocess.run(["usermod", "-s", "/bin/bash", USER], check=True)
    try:
        with open(bashrc, "w") as fh:
            fh.write("echo 'Welcome to the cluster'\n" + kept)
        yield
    finally:
        with open(bashrc, "w") as fh:
            fh.write(kept)
        subprocess.run(["usermod", "-s", "/bin/sh", USER], check=True)


def test_a_login_shell_that_prints_a_greeting_does_not_fail_submissions(build, endpoint, slurm, chatty_login):
    factory, _, clock = build(queues(endpoint, slurm.workdir, "[SA]\nbatchsubmit.sshslurm.sbatch_args = --hold\n"))
    queue = factory.queues[0]
    ids = queue.target.submit(2, ctx(clock), "greeted")
    assert set(ids) == set(slurm.tasks())
    pilots = queue.batch.pilots(queue.batch.source.read(clock.now()))
    assert sorted(t.id for t in pilots.records) == sorted(ids)
    assert sorted(queue.target.retire(2, ctx(clock, pilots))) == sorted(ids)


@pytest.fixture
def slow_sbatch(remote_root, keys, slurm):
    """An sshd whose sessions find an sbatch that takes 4 s before submitting, as the real one
    does while it retries a controller whose queue is full (MaxJobCount): up to two minutes."""
    shim = os.path.join(remote_root, f"slow-sbatch-{uuid.uuid4().hex}")
    os.makedirs(shim, mode=0o755)
    with open(os.path.join(shim, "sbatch"), "w") as fh:
        fh.write("#!/bin/sh\nsleep 4\n/usr/bin/sbatch \"$@\"\n")
    os.chmod(os.path.join(shim, "sbatch"), 0o755)
    server = SSHD(remote_root, keys["host"], keys["authorized"], slurm.conf)
    with open(server.conf) as fh:
        text = fh.read()
    with open(server.conf, "w") as fh:
        fh.write(text.replace(f"SetEnv SLURM_CONF={slurm.conf}",
                              f"SetEnv SLURM_CONF={slurm.conf} PATH={shim}:/usr/bin:/bin"))
    server.known_hosts(os.path.join(remote_root, f"known_hosts-{server.port}"))
    server.start()
    yield server, shim
    server.stop()


def test_an_sbatch_the_factory_gave_up_on_queues_no_pilot_later(build, slow_sbatch, endpoint, slurm):
    # The SSH session closing does not end a remote command: left running, the sbatch would
    # queue its pilots after the next cycle had submitted again for the same work.
    server, shim = slow_sbatch
    known = os.path.join(os.path.dirname(endpoint.known_hosts), f"known_hosts-{server.port}")
    text = queues(endpoint, slurm.workdir, "[SA]\nwmsqueue = A\n").replace(
        f"port = {endpoint.port}", f"port = {server.port}").replace(endpoint.known_hosts, known).replace(
        "timeout = 10", "timeout = 3")
    factory, pool, _ = build(text)
    pool.schedd().add_jobs(2, TargetQueue="A")
    d = by_queue(factory.cycle())["SA"]
    assert d.action == "failed" and f"{server.port}: sbatch timed out after" in d.note
    wait_for(lambda: subprocess.run(["pgrep", "-f", shim], capture_output=True).returncode != 0,
             "the remote sbatch to end")
    assert not slurm.tasks()
    # the login node's own bound, a second short of the factory's wait
    assert d.note == f"submit failed: ssh {USER}@127.0.0.1:{server.port}: sbatch timed out after 2s"
