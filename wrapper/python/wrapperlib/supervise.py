"""Payload supervision: relay its output, forward signals to it, and kill it
when it has been silent too long."""
import os
import select
import signal
import subprocess
import sys
import threading
import time

from .errors import INTERNAL, SILENT, WrapperError
from .log import redacted

# Stage one forwards all of these to stage two.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
# Forwarded signals asking the payload to stop: SIGKILL follows after the grace time.
STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CHECK_EVERY = 1.0
# How often a payload's leftovers that hold no output are checked for (no event tells).
LEFTOVERS_POLL = 0.1


class Interrupted(Exception):
    """A signal arrived while no payload was running: the wrapper stops."""

    def __init__(self, signum):
        super().__init__("interrupted by signal %d" % signum)
        self.signum = signum


def exit_code(returncode):
    """Shell convention: 128+N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def group_alive(pgid):
    """Whether a process of the group is still running. Zombies do not count:
    they wait for init to reap them, which some containers' init is slow to do."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member that changed its user: still there
        pass
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc: take killpg's word
        return True
    for pid in pids:
        try:
            with open("/proc/%s/stat" % pid) as stat:
                state, _, group = stat.read().rsplit(")", 1)[1].split()[:3]
        except OSError:  # gone meanwhile
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False


def start_time(pid):
    """When pid started, in clock ticks since boot (/proc/PID/stat field 22): with the
    pid, it tells that process from a later one given the same pid."""
    with open("/proc/%d/stat" % pid) as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[19])


def signal_pgroup(pid, signum):
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


class Supervisor:
    def __init__(self, log, group_file=None):
        self.log = log
        # Where stage one reads the running payload's process group from: if this
        # process is killed, stage one stops that group.
        self.group_file = group_file
        self.payload = None
        self.starting = False
        self.received = []
        self.ticking = None

    def install(self):
        for signum in FORWARDED:
            signal.signal(signum, self.on_signal)

    def on_signal(self, signum, frame):
        # No logging here: a handler writing to stderr can interrupt another write.
        self.received.append(signum)
        if self.payload is not None:
            signal_pgroup(self.payload.pid, signum)
        elif not self.starting:
            raise Interrupted(signum)

    def run(self, argv, cwd=None, env=None, silence=0, grace=30, tick=None, tick_every=0):
        """Runs argv to its end and returns its exit code; raises WrapperError(SILENT)
        after killing it for `silence` seconds without output (0: never). tick() is called
        every tick_every seconds while it runs, in a thread."""
        pending = len(self.received)
        self.starting = True  # a signal now is forwarded once the payload exists
        try:
            # Own session: a signal reaches the payload's whole process tree,
            # and only through us.
            payload = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )
            # Signals wait while the payload becomes known: each one is then forwarded once,
            # by the handler or below, and none raises while the payload runs unwatched.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            try:
                self.payload, early = payload, self.received[pending:]
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        finally:
            self.starting = False
        try:
            self._record_group(payload.pid, grace)
            self.log.info("payload started (pid %d): %s" % (payload.pid, " ".join(redacted(argv))))
            for signum in early:
                signal_pgroup(payload.pid, signum)
            return self._watch(payload, pending, silence, grace, tick, tick_every)
        except BaseException:  # our output gone, say: the payload (or what it left) must not outlive us
            self._kill(payload, grace)
            raise
        finally:
            self.payload = None
            if self.group_file:  # the group is gone or has had SIGKILL
                try:
                    os.unlink(self.group_file)
                except OSError:
                    pass
            payload.stdout.close()
            if self.ticking is not None:
                self.ticking.join()  # its report must not follow the caller's next one
            forwarded = self.received[pending:]
            if forwarded:
                names = ", ".join(signal.Signals(s).name for s in forwarded)
                self.log.info("forwarded to the payload: %s" % names)

    def _record_group(self, pgid, grace):
        """Writes "PGID STARTTIME GRACE" to group_file, atomically: stage one reads it
        when this process has been killed. The leader's start time keeps stage one from
        taking a later process given the same pid for it."""
        if not self.group_file:
            return
        partial = self.group_file + ".partial"
        try:
            with open(partial, "w") as out:
                out.write("%d %d %d\n" % (pgid, start_time(pgid), grace))
            os.replace(partial, self.group_file)
        except OSError as exc:  # no /proc, say: the payload runs, only unguarded against our death
            self.log.warning("cannot record the payload's process group for stage one: %s" % exc)

    def _watch(self, payload, pending, silence, grace, tick, tick_every):
        out = sys.stdout.buffer
        fd = payload.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        last_output = time.monotonic()
        next_tick = last_output + tick_every if tick and tick_every else None
        reading = True
        kill_at = None
        # Once the payload has exited, what it left (in its process group, or
        # holding its output) gets until leftovers_at to finish, then SIGTERM,
        # then SIGKILL after the grace time.
        leftovers_at = None
        leftovers_termed = False
        while True:
            now = time.monotonic()
            if kill_at is None and any(s in STOPPING for s in self.received[pending:]):
                kill_at = now + grace
            if kill_at is not None and now >= kill_at and payload.poll() is None:
                self.log.error("payload still running %ds after it was asked to stop: killing it" % grace)
                signal_pgroup(payload.pid, signal.SIGKILL)
                kill_at = float("inf")
            # Only a payload still running is killed for silence: one that has
            # exited (say, while this process was stopped) is reaped below.
            if silence and now - last_output >= silence and payload.poll() is None:
                self._kill(payload, grace)
                raise WrapperError(SILENT, "payload silent for %ds: killed it" % silence)
            if next_tick is not None and now >= next_tick:
                self._tick(tick)
                next_tick = now + tick_every
            # Checked whether or not there is output: a chatty leftover must not
            # keep the wrapper alive.
            if leftovers_at is None and payload.poll() is not None:
                leftovers_at = now + CHECK_EVERY
            if leftovers_at is not None and now >= leftovers_at:
                if leftovers_termed:
                    self.log.error("processes the payload left behind still running %ds after SIGTERM: "
                                   "killing them" % grace)
                    signal_pgroup(payload.pid, signal.SIGKILL)
                    return exit_code(payload.returncode)
                self.log.info("payload exited; stopping the processes it left behind")
                signal_pgroup(payload.pid, signal.SIGTERM)
                leftovers_at, leftovers_termed = now + grace, True
            # Wake at least every CHECK_EVERY s to notice the payload's exit.
            deadlines = [t - now for t in (silence and last_output + silence, next_tick, kill_at, leftovers_at) if t]
            timeout = max(0.0, min(deadlines + [CHECK_EVERY]))
            if not reading:
                try:
                    payload.wait(timeout)
                except subprocess.TimeoutExpired:
                    continue
                # Leftovers that let go of the output (a daemon redirecting it)
                # are still in the payload's process group: they must not outlive us.
                if not group_alive(payload.pid):
                    return exit_code(payload.returncode)
                time.sleep(min(timeout, LEFTOVERS_POLL))
                continue
            if poller.poll(timeout * 1000):
                data = os.read(fd, 65536)
                if data:
                    self._relay(out, data)
                    last_output = time.monotonic()
                else:
                    reading = False

    @staticmethod
    def _relay(out, data):
        try:
            out.write(data)
            out.flush()
        except OSError as exc:  # full disk, closed pipe: one error line, not a traceback
            raise WrapperError(INTERNAL, "cannot relay the payload's output: %s" % exc) from None

    def _tick(self, tick):
        """Starts tick() in a thread, unless the previous one still runs: a slow
        monitor must not hold up the payload's output or its silence check."""
        if self.ticking is None or not self.ticking.is_alive():
            self.ticking = threading.Thread(target=tick, daemon=True)
            self.ticking.start()

    def _kill(self, payload, grace):
        """SIGTERM to the payload's group, SIGKILL after the grace to whatever of it is
        left: the payload, or processes it started that outlive it ignoring SIGTERM."""
        signal_pgroup(payload.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        try:
            payload.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        while group_alive(payload.pid) and time.monotonic() < deadline:
            time.sleep(LEFTOVERS_POLL)
        signal_pgroup(payload.pid, signal.SIGKILL)
        payload.wait()
