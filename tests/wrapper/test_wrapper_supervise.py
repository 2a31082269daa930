"""Payload supervision with real processes: signal forwarding, silence kill, exit codes."""
import signal
import subprocess
import sys
import time

import pytest
from wrapperlib.errors import SILENT
from wrapperlib.log import Log
from wrapperlib.supervise import Supervisor

# Payload for the forwarding tests: reports each signal and exits 7 on it.
TRAPPING = """#!/bin/bash
for s in TERM INT HUP; do trap "echo got $s; exit 7" $s; done
echo ready
sleep 30 &
wait $!
echo "no signal"
exit 1
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signals_reach_the_payload_through_stage_two(repo, pilot, workdir, base_args, signum):
    url = pilot("trapping", TRAPPING)
    wrapper = subprocess.Popen(
        [sys.executable, "-ES", str(repo / "wrapper" / "python" / "wrapper.py")] + base_args
        + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wrapper.stdout.readline() == "ready\n"  # the payload's trap is set
        wrapper.send_signal(signum)
        out, err = wrapper.communicate(timeout=15)
    finally:
        wrapper.kill()
    assert wrapper.returncode == 7, err
    assert out == "got %s\n" % signal.Signals(signum).name[3:]
    assert "forwarded to the payload: %s" % signal.Signals(signum).name in err


def dead(pid):
    """No such process, or a zombie nobody has reaped yet."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def gone(pid, timeout=5.0):
    """Waits (bounded) for pid to die: a signal is delivered asynchronously."""
    deadline = time.monotonic() + timeout
    while not dead(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def run(argv, **kwargs):
    started = time.monotonic()
    code = Supervisor(Log()).run(argv, **kwargs)
    return code, time.monotonic() - started


def test_a_silent_payload_is_killed_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    code, took = run(["bash", "-c", 'sleep 30 & echo "$$ $!" > %s; echo started; wait' % pids],
                     silence=1, grace=5)
    assert code == SILENT and took < 10
    for pid in map(int, pids.read_text().split()):
        assert gone(pid)


def test_a_payload_ignoring_sigterm_gets_sigkill(tmp_path):
    ready = tmp_path / "ready"
    code, took = run(["bash", "-c", "trap '' TERM; touch %s; sleep 30 & wait" % ready], silence=1, grace=1)
    assert code == SILENT and took < 10 and ready.exists()


def test_output_keeps_a_payload_alive(capfd):
    code, _ = run(["bash", "-c", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.25; done"], silence=1, grace=1)
    assert code == 0
    assert capfd.readouterr().out.count("tick") == 6


def test_children_left_behind_are_stopped(tmp_path):
    pids = tmp_path / "pids"
    code, took = run(["bash", "-c", "sleep 30 & echo $! > %s; exit 3" % pids])
    assert code == 3 and took < 5
    assert gone(int(pids.read_text()))


def test_exit_codes():
    assert run(["bash", "-c", "exit 5"])[0] == 5
    assert run(["bash", "-c", "kill -KILL $$"])[0] == 128 + signal.SIGKILL


def test_ticks_while_running():
    ticks = []
    code, _ = run(["bash", "-c", "sleep 1"], tick=lambda: ticks.append(1), tick_every=0.3)
    assert code == 0 and len(ticks) >= 2
