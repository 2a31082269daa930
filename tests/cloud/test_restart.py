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
