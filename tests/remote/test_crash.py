"""Real `provisioner run` processes with the SSHSlurm target, SIGKILLed at chosen points of a
cycle (tests/remote/crashslurm.py) and restarted against the same Slurm cluster."""
import json
import os
import subprocess
import sys

import pytest

from tests.remote.test_slurm import queues

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crashslurm.py")


@pytest.fixture
def factory(write_conf, endpoint, slurm, tmp_path):
    """run(crash=None, jobs=N, sched=...) runs one cycle of a real factory process."""
    def run(jobs, sched="Ready, MaxPending\nsched.maxpending.maximum = 8", crash=None):
        conf = write_conf(queues(endpoint, slurm.workdir, f"schedplugin = {sched}\n[SA]\nwmsqueue = A\n"),
                          "statedir = state\n")
        jobs_path = tmp_path / "jobs.json"
        jobs_path.write_text(json.dumps([{"count": jobs, "attrs": {"TargetQueue": "A"}}] if jobs else []))
        env = {k: v for k, v in os.environ.items() if k != "PROVISIONER_CRASH_AT"}
        if crash:
            env["PROVISIONER_CRASH_AT"] = crash
        p = subprocess.run([sys.executable, HARNESS, str(jobs_path), "run", "--once", "--conf", conf], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == (-9 if crash else 0), p.stderr
        return p.stderr

    return run


@pytest.mark.parametrize("crash", ["intent.after", "sbatch.after"])
def test_a_factory_killed_in_a_submission_submits_each_pilot_once_after_a_restart(factory, slurm, crash):
    # MaxToRun, not MaxPending: pilots that start before the restart (2 CPUs) would leave
    # Ready's idle-less-pending asking for more, crash or not
    sched = "Ready, MaxToRun\nsched.maxtorun.maximum = 4"
    factory(4, sched, crash=crash)
    log = factory(4, sched)
    assert "was interrupted by a stop" in log
    seen = slurm.tasks()
    assert len(seen) == 4 and len({comment for _, comment in seen.values()}) == 1, seen


def test_a_factory_killed_in_a_retire_cancels_no_running_pilot_and_leaves_none_held(factory, slurm):
    factory(5)
    slurm.wait_tasks(lambda t: sorted(s for s, _ in t.values()) == ["PENDING"] * 3 + ["RUNNING"] * 2,
                     "2 running and 3 pending pilots")  # 2 CPUs
    running = {i for i, (s, _) in slurm.tasks().items() if s == "RUNNING"}
    keep = "KeepNRunning\nsched.keepnrunning.keep_running = 3"
    factory(0, keep, crash="scancel.sent")  # the remote hold-and-cancel has started
    held = slurm.cmd("squeue", "-h", "--array", "--states=PENDING", "-o", "%i %r")
    slurm.wait_tasks(lambda t: "JobHeld" not in slurm.cmd("squeue", "-h", "--array", "-o", "%r"),
                     f"no task left held: {held}")
    factory(0, keep)
    slurm.wait_tasks(lambda t: len(t) == 3, "the retired pilots to leave")
    assert running <= set(slurm.tasks())
