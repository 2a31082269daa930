"""Payload supervision with real processes: signal forwarding, silence kill, exit codes."""
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from wrapperlib.errors import SILENT, WrapperError
from wrapperlib.log import Log
from wrapperlib.supervise import Interrupted, Supervisor

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


# Payload for the start-race test: when told on $TOLD, sends SIGTERM to its parent (the
# supervisor) and says so on $SENT; when told again (the supervisor watching it), writes
# how many TERMs it got and exits 3.
SIGNALS_ITS_PARENT = """
n=0
trap 'n=$((n+1))' TERM
read -r _ < "$TOLD"
kill -TERM $PPID
echo sent > "$SENT"
until read -r _ < "$TOLD"; do :; done  # a TERM interrupts read: read again
echo $n > "$COUNT"
exit 3
"""


class SignalAt:
    """Trace function holding Supervisor.run at its stop number `at` until the payload's
    SIGTERM has arrived there. The stops: each line run() reaches once Popen has returned,
    then the call of _watch, the last one, where the payload is also told to finish."""

    def __init__(self, at, told, sent):
        self.at, self.told, self.sent = at, told, sent
        self.stops = []  # line numbers, then "_watch"
        self.signalled = None  # the stop where the signal arrived
        self.pid = None

    def __call__(self, frame, event, arg):
        if frame.f_code is Supervisor.run.__code__:
            return self.line
        if frame.f_code is Supervisor._watch.__code__:
            self.stop("_watch")
            os.write(self.told, b"finish\n")
        return None

    def line(self, frame, event, arg):
        if event == "line" and "payload" in frame.f_locals and "_watch" not in self.stops:
            self.pid = frame.f_locals["payload"].pid
            self.stop(frame.f_lineno)
        return self.line

    def stop(self, where):
        if self.signalled is None and (len(self.stops) == self.at or where == "_watch"):
            self.signalled = where
            os.write(self.told, b"signal\n")
            sent = os.open(self.sent, os.O_RDONLY | os.O_NONBLOCK)
            try:  # the payload writes it after its kill
                assert select.select([sent], [], [], 10)[0], "the payload did not send SIGTERM"
            finally:
                os.close(sent)
        self.stops.append(where)


def test_a_signal_while_the_payload_starts_is_forwarded_once(tmp_path, capfd):
    """The payload's SIGTERM to the supervisor arrives at each point in turn from Popen's
    return to the watch loop: it reaches the payload once, raises nothing while the payload
    runs unwatched, and the supervisor still waits for the payload and returns its exit code.
    The tracer only holds run() at a point, so the race is met every time, not by luck."""
    at = 0
    while True:
        run_dir = tmp_path / str(at)
        run_dir.mkdir()
        told, sent, count = run_dir / "told", run_dir / "sent", run_dir / "count"
        os.mkfifo(told)
        os.mkfifo(sent)
        told_fd = os.open(told, os.O_RDWR)  # never blocks; what is written waits for the payload
        tracer = SignalAt(at, told_fd, sent)
        supervisor = Supervisor(Log())
        supervisor.install()
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            code = supervisor.run(["bash", "-c", SIGNALS_ITS_PARENT],
                                  env=dict(os.environ, TOLD=str(told), SENT=str(sent), COUNT=str(count)))
        except Interrupted:
            code = "Interrupted"
        finally:
            sys.settrace(previous)
            os.close(told_fd)
            if tracer.pid is not None and not dead(tracer.pid):  # on a failure only
                os.killpg(tracer.pid, signal.SIGKILL)
        where = "signal at %s, stops %s" % (tracer.signalled, tracer.stops)
        err = capfd.readouterr().err
        assert code == 3, where
        assert count.read_text() == "1\n", where
        assert "forwarded to the payload: SIGTERM\n" in err, where
        if tracer.signalled == "_watch":
            break
        at += 1
    assert at >= 5, "the tracer found no lines of run() after Popen: %s" % tracer.stops


# A child the payload leaves behind, printing for 20 s; the payload exits 3 at once.
CHATTY = "(%s for i in $(seq 200); do echo tick; sleep 0.1; done) & echo $! > {pids}; exit 3"
# One that let go of the output (a daemon redirecting it) is still in the payload's process group.
QUIET = "(%s exec sleep 30) >/dev/null 2>&1 & echo $! > {pids}"
STOPPED = "payload exited; stopping the processes it left behind"
KILLED = "left behind still running 1s after SIGTERM: killing them"


def survived(pid, check):
    """Whether pid outlived the wrapper by ``check`` (dead: at once; gone: within a bound);
    if so it is killed, so that a failing test leaves nothing running."""
    if check(pid):
        return False
    os.kill(pid, signal.SIGKILL)
    return True


@pytest.mark.parametrize("script, grace, expected, within, check, message", [
    (CHATTY % "", 5, 3, 5, gone, STOPPED),
    (CHATTY % "trap '' TERM;", 1, 3, 6, gone, KILLED),
    # the wrapper waits for the group, so it is dead once the wrapper returns
    (QUIET % "" + "; exit 3", 5, 3, 5, dead, STOPPED),
    (QUIET % "trap '' TERM;", 1, 0, 6, gone, KILLED),
])
def test_what_the_payload_leaves_behind_is_stopped(tmp_path, capfd, script, grace, expected, within, check, message):
    pids = tmp_path / "pids"
    code, took = run(["bash", "-c", script.format(pids=pids)], silence=60, grace=grace)
    assert not survived(int(pids.read_text()), check)
    assert code == expected and took < within
    assert message in capfd.readouterr().err


def test_a_silence_kill_reaches_a_leftover_ignoring_sigterm(tmp_path):
    """The payload dies on SIGTERM; what it started ignoring SIGTERM gets SIGKILL after the grace."""
    pids = tmp_path / "pids"
    code, took = run(["bash", "-c", "(trap '' TERM; exec sleep 30) >/dev/null 2>&1 & echo $! > %s; exec sleep 30"
                      % pids], silence=1, grace=1)
    assert not survived(int(pids.read_text()), gone)
    assert code == SILENT and took < 8


def test_the_payloads_group_is_recorded_for_stage_one_while_it_runs(tmp_path, capfd):
    """"PGID STARTTIME GRACE", the start time as /proc has it (the payload waits for the
    file, bounded, and prints what it expects below it); removed once the payload is done."""
    group = tmp_path / "group"
    script = ('for _ in $(seq 100); do [ ! -f "$G" ] || break; sleep 0.05; done; cat "$G"; '
              'read -ra f < /proc/$$/stat; echo "$$ ${f[21]} 7"')
    code = Supervisor(Log(), str(group)).run(["bash", "-c", script], env=dict(os.environ, G=str(group)), grace=7)
    recorded, expected = capfd.readouterr().out.splitlines()
    assert code == 0 and recorded == expected
    assert list(tmp_path.iterdir()) == []


def test_a_group_that_cannot_be_recorded_is_a_warning(tmp_path, capfd):
    code = Supervisor(Log(), str(tmp_path / "missing" / "group")).run(["bash", "-c", "exit 4"])
    assert code == 4
    assert "WARNING: cannot record the payload's process group for stage one" in capfd.readouterr().err
