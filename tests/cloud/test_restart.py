"""Crash between launch and ledger write (a real subprocess), restart: adoption, no duplicate."""
import os
import subprocess
import sys

from provisioner.ledger import Ledger

from .conftest import ec2_queue, instances


def run(conf, env, timeout=60):
    return subprocess.run([sys.executable, "-m", "provisioner", "run", "--emulate", "--once", "--conf", conf],
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_crash_after_launch_then_restart_adopts(write_conf, moto, ec2, tmp_path):
    # --emulate seeds the example jobs: 120 x 1 core, 7 x 8 cores, 15 x 1 core (bigmem) -> 1 CPU-bound pack
    conf = write_conf(ec2_queue(endpoint=moto, types="m5.8xlarge"), "statedir = state\n")
    env = {**os.environ, "PROVISIONER_CRASH_AFTER_LAUNCH": "1"}
    crashed = run(conf, env)
    assert crashed.returncode == 86, crashed.stderr
    launched = instances(ec2)
    assert launched, crashed.stderr
    env.pop("PROVISIONER_CRASH_AFTER_LAUNCH")
    again = run(conf, env)
    assert again.returncode == 0, again.stderr
    assert "vmdemand=0" in again.stderr and f"booting={len(launched)}" in again.stderr
    assert len(instances(ec2)) == len(launched)
    assert "was interrupted by a stop" in again.stderr
    ledger = Ledger(str(tmp_path / "state" / "ledger.sqlite"), "x")
    (crash,) = [a for a in ledger.actions() if a["action"] == "submit"]
    assert crash["state"] == "interrupted" and crash["count"] == len(launched) and ledger.open_intents() == []


def test_a_fresh_ledger_never_repeats_the_launch_ids_of_an_old_one(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    first = Ledger(path, "fac").intent(0.0, "Q", "ec2", "submit", 1)
    assert Ledger(path, "fac").intent(1.0, "Q", "ec2", "submit", 1).split("-")[1] == first.split("-")[1]
    os.remove(path)  # the ledger is lost; the VMs and their client tokens are not
    assert Ledger(path, "fac").intent(2.0, "Q", "ec2", "submit", 1) != first


def test_client_tokens_stay_distinct_and_within_64_characters():
    from provisioner.cloud.ec2api import client_token

    long_factory = "f" * 70
    tokens = {client_token(f"{long_factory}-ab12cd-{n}-0-0") for n in range(100)}
    assert len(tokens) == 100 and max(map(len, tokens)) == 64
    assert client_token("fac-ab12cd-7-0-0") == "fac-ab12cd-7-0-0"


def test_vms_retired_just_before_a_restart_are_not_early_deaths_that_trip_the_guard(write_conf, tmp_path, moto, ec2):
    from provisioner.cloud.emulator import negotiate

    from .conftest import CloudWorld, join_all

    extra = "batchsubmit.ec2.guard_failures = 2\nbatchsubmit.ec2.max_draining_percent = 100\n"
    w = CloudWorld(write_conf(ec2_queue(endpoint=moto, extra=extra)), tmp_path)
    jobs = w.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=2048)
    assert w.cycle(30)["CLOUD"].count == 2
    join_all(w.pool, ec2, now=w.clock.now())
    negotiate(w.pool)
    w.cycle(30)  # they joined
    w.pool.schedd().finish(jobs)  # short jobs: the VMs are retired a minute after joining
    negotiate(w.pool)
    assert w.cycle(5)["CLOUD"].action == "retire"
    w.cycle(5)
    assert instances(ec2) == []
    w = w.restart()
    w.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=2048)
    d = w.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 2, d.note
