"""Payload supervision with real processes: signal forwarding, silence kill, exit codes."""
import signal
import subprocess
import sys
import time

import pytest
from wrapperlib.errors import SILENT, WrapperError
from wrapperlib.log import Log
from wrapperlib.supervise import Supervisor

# Payload for the forwarding tests: reports each signal and exits 7 on it.
TRAPPING = """#!/bin/bash
for s in TERM INT HUP USR1 USR2; do trap "echo got $s; exit 7" $s; done
echo ready
sleep 30 &
wait $!
echo "no signal"
exit 1
"""


def start_stage_two(repo, base_args, *args):
    return subprocess.Popen([sys.executable, "-ES", str(repo / "wrapper" / "python" / "wrapper.py")] + base_args
                            + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
def test_signals_reach_the_payload_through_stage_two(repo, pilot, workdir, base_args, signum):
    url = pilot("trapping", TRAPPING)
    wrapper = start_stage_two(repo, base_args, "--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url)
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
    try:
        code = Supervisor(Log()).run(argv, **kwargs)
    except WrapperError as exc:  # a silence kill
        code = exc.code
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


def test_a_slow_heartbeat_holds_up_neither_output_nor_the_silence_check(capfd):
    ticks = []

    def slow_tick():
        ticks.append(1)
        time.sleep(2)  # a monitor taking its time to answer

    code, took = run(["bash", "-c", "for i in $(seq 12); do echo tick $i; sleep 0.25; done"],
                     silence=1, grace=1, tick=slow_tick, tick_every=0.1)
    assert code == 0
    assert capfd.readouterr().out.count("tick") == 12
    assert ticks and took < 8


def test_a_payload_that_exited_is_reaped_not_killed_for_silence(repo, pilot, workdir, base_args):
    """Stage two is stopped while the payload prints and exits 0; when it resumes,
    the silence timeout has passed but the payload is no longer running."""
    url = pilot("quick", '#!/bin/sh\necho "pid $$"\nsleep 0.3\n')
    wrapper = start_stage_two(repo, base_args, "--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url,
                              "--wrappersilencetimeout=1")
    try:
        line = wrapper.stdout.readline()
        wrapper.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        assert gone(int(line.split()[1]))  # a zombie: stage two cannot reap it while stopped
        time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))  # past the silence timeout
        wrapper.send_signal(signal.SIGCONT)
        _, err = wrapper.communicate(timeout=15)
    finally:
        wrapper.kill()
    assert wrapper.returncode == 0, err
    assert "silent" not in err
