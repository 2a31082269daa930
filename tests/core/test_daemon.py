"""The daemon as a real subprocess: SIGTERM finishes and exits 0, SIGHUP reloads or keeps."""
import logging
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from provisioner import cli
from provisioner import config as configmod
from provisioner import daemon as daemon_mod
from provisioner.clock import WallClock
from provisioner.condor.emulator import Pool
from provisioner.monitor.base import Monitor
from provisioner.services import Services

QUEUE = "[{name}]\nbatchsubmitplugin = CondorLocal\napfqueue.sleep = {sleep}\n"


# The daemon with a second thread that takes the signals: the main thread blocks them, as
# happens whenever the kernel picks another thread (the web monitor's, a library's).
OTHER_THREAD = """
import signal, sys, threading
from provisioner.cli import main
threading.Thread(target=threading.Event().wait, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})
sys.exit(main(sys.argv[1:]))
"""


class Daemon:
    def __init__(self, conf, other_thread=False):
        start = ["-c", OTHER_THREAD] if other_thread else ["-m", "provisioner"]
        self.proc = subprocess.Popen([sys.executable, *start, "run", "--conf", conf, "--emulate"],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if text in line:
                return line
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        pytest.fail(f"never saw {text!r} (daemon {state}); saw: {seen}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def daemon():
    started = []

    def start(conf, other_thread=False):
        started.append(Daemon(conf, other_thread))
        return started[-1]

    yield start
    for d in started:
        d.stop()


def test_sigterm_finishes_and_exits_zero(write_conf, daemon):
    d = daemon(write_conf(QUEUE.format(name="A", sleep=3600)))
    d.wait_for("queue=A ")
    d.proc.send_signal(signal.SIGTERM)
    d.wait_for("stopped after 1 cycles")
    assert d.proc.wait(10) == 0


def test_ignored_apf_options_are_logged_at_start(write_conf, daemon):
    d = daemon(write_conf(QUEUE.format(name="A", sleep=3600) + "monitorsection = apfmon\n",
                          factory_extra="factory.sleep = 30\n"))
    line = d.wait_for("ignored (APF helper keys")
    assert "monitorsection" in line and "[Factory] factory.sleep" in line


def test_signals_taken_by_another_thread_still_wake_the_loop(write_conf, daemon, tmp_path):
    d = daemon(write_conf(QUEUE.format(name="A", sleep=3600)), other_thread=True)
    d.wait_for("queue=A ")
    (tmp_path / "queues.conf").write_text(QUEUE.format(name="A", sleep=3600) + QUEUE.format(name="B", sleep=3600))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for("configuration reloaded: 2 queues")
    d.proc.send_signal(signal.SIGTERM)
    d.wait_for("stopped after")
    assert d.proc.wait(10) == 0


def test_sighup_reloads_and_a_bad_config_keeps_the_old(write_conf, daemon, tmp_path):
    conf = write_conf(QUEUE.format(name="A", sleep=3600))
    d = daemon(conf)
    d.wait_for("queue=A ")
    (tmp_path / "queues.conf").write_text(QUEUE.format(name="A", sleep=3600) + QUEUE.format(name="B", sleep=3600))
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for("configuration reloaded: 2 queues")
    d.wait_for("queue=B ")  # the new queue cycles at once
    (tmp_path / "queues.conf").write_text("[A]\nbatchsubmitplugin = NoSuchTarget\n")
    d.proc.send_signal(signal.SIGHUP)
    line = d.wait_for("reload refused")
    assert "[A] batchsubmitplugin: unknown batchsubmit plugin 'NoSuchTarget'" in line
    assert d.proc.poll() is None
    # loads, but its plugins refuse to be built together
    (tmp_path / "queues.conf").write_text("[A]\nbatchstatusplugin = Cloud\nbatchsubmitplugin = CondorLocal\n")
    d.proc.send_signal(signal.SIGHUP)
    line = d.wait_for("reload refused")
    assert "queues.conf: [A] batchstatus Cloud needs a VM target" in line
    assert d.proc.poll() is None
    (tmp_path / "queues.conf").write_bytes(QUEUE.format(name="A", sleep=3600).encode() + b"# caf\xe9\n")
    d.proc.send_signal(signal.SIGHUP)
    line = d.wait_for("reload refused")
    assert "queues.conf:4: not UTF-8 (byte 0xe9)" in line
    assert d.proc.poll() is None
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0


def test_a_factory_with_no_enabled_queue_idles_until_signalled(write_conf, daemon):
    d = daemon(write_conf(QUEUE.format(name="A", sleep=60), factory_extra="enablequeues = False\n"))
    d.wait_for("started with 0 queues")
    d.proc.send_signal(signal.SIGHUP)  # it waits for signals: nothing is ever due
    d.wait_for("configuration reloaded: 0 queues")
    d.proc.send_signal(signal.SIGTERM)
    d.wait_for("stopped after 0 cycles")
    assert d.proc.wait(10) == 0


def test_a_reload_disabling_every_queue_leaves_the_factory_idle(write_conf, daemon, tmp_path):
    d = daemon(write_conf(QUEUE.format(name="A", sleep=3600)))
    d.wait_for("queue=A ")
    (tmp_path / "queues.conf").write_text(QUEUE.format(name="A", sleep=3600) + "enabled = False\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for("configuration reloaded: 0 queues")
    d.proc.send_signal(signal.SIGHUP)  # still there, waiting
    d.wait_for("configuration reloaded: 0 queues")
    d.proc.send_signal(signal.SIGTERM)
    d.wait_for("stopped after 1 cycles")
    assert d.proc.wait(10) == 0


def test_an_interval_past_what_select_takes_still_waits(write_conf, daemon):
    d = daemon(write_conf(QUEUE.format(name="A", sleep=10_000_000_000)))
    d.wait_for("queue=A ")
    d.proc.send_signal(signal.SIGHUP)  # a reload comes only once the loop has waited
    d.wait_for("configuration reloaded: 1 queues")
    d.proc.send_signal(signal.SIGTERM)
    d.wait_for("stopped after 2 cycles")  # the reloaded queue cycles at once
    assert d.proc.wait(10) == 0


def test_a_storm_of_signals_never_wedges_the_loop(write_conf, daemon):
    """Signals land anywhere in the loop, including while it waits or clears its wake-up;
    a handler that takes a lock the loop holds would hang the daemon here."""
    d = daemon(write_conf(QUEUE.format(name="A", sleep=3600)))
    d.wait_for("queue=A ")
    for _ in range(300):
        d.proc.send_signal(signal.SIGHUP)
    d.proc.send_signal(signal.SIGTERM)
    d.wait_for("stopped after")
    assert d.proc.wait(10) == 0


class Backend:
    """A back end holding a connection, as the SSH connections do."""

    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


class Heard(Monitor):
    def __init__(self):
        self.configs = []

    def on_cycle(self, now, decisions):
        pass

    def reconfigure(self, cfg, keep=()):
        self.configs.append(cfg)


def test_reload_closes_what_it_replaces_and_keeps_the_factory_id(write_conf, tmp_path, caplog):
    made = []

    def make_services(cfg):
        made.append(Services(cfg.factory_id, WallClock(), Pool(WallClock()), log_dir=cfg.log_dir,
                             extra={"ssh": Backend()}))
        return made[-1]

    conf = write_conf(QUEUE.format(name="A", sleep=60))
    d = daemon_mod.Daemon(conf, configmod.load(conf), make_services)
    heard = Heard()
    d.monitors.append(heard)
    (tmp_path / "queues.conf").write_text(QUEUE.format(name="A", sleep=60) + QUEUE.format(name="B", sleep=60))
    d.reload()
    assert made[0].extra["ssh"].closed and not made[1].extra["ssh"].closed
    assert d.services is made[1] and [q.name for q in heard.configs[-1].queues] == ["A", "B"]
    # refused while its plugins are built: the services made for it are closed, the running ones kept
    (tmp_path / "queues.conf").write_text("[A]\nbatchstatusplugin = Cloud\nbatchsubmitplugin = CondorLocal\n")
    d.reload()
    assert made[2].extra["ssh"].closed and not made[1].extra["ssh"].closed and d.services is made[1]
    write_conf(QUEUE.format(name="A", sleep=60), factory_id="another-factory")
    with caplog.at_level(logging.ERROR, logger="provisioner"):
        d.reload()
    assert "[Factory] factoryid: changes only at a restart" in caplog.text
    assert d.cfg.factory_id == "test-factory" and len(heard.configs) == 1
    d.ledger.close()


def test_a_reload_failing_unexpectedly_is_refused_with_its_traceback(write_conf, tmp_path, caplog):
    made = []

    def make_services(cfg):
        if made:
            raise RuntimeError("a bug while building")
        made.append(Services(cfg.factory_id, WallClock(), Pool(WallClock()), log_dir=cfg.log_dir))
        return made[-1]

    conf = write_conf(QUEUE.format(name="A", sleep=60))
    d = daemon_mod.Daemon(conf, configmod.load(conf), make_services)
    (tmp_path / "queues.conf").write_text(QUEUE.format(name="A", sleep=60) + QUEUE.format(name="B", sleep=60))
    with caplog.at_level(logging.ERROR, logger="provisioner"):
        d.reload()
    (record,) = caplog.records
    assert record.getMessage().startswith("reload refused, keeping the running configuration: RuntimeError(")
    assert record.exc_info is not None
    assert d.services is made[0] and [q.name for q in d.factory.queues] == ["A"]
    d.ledger.close()


class Broken(Monitor):
    name = "broken"

    def on_cycle(self, now, decisions):
        pass

    def reconfigure(self, cfg, keep=()):
        raise RuntimeError("a bug in a monitor")


def test_a_monitor_failing_on_reload_never_stops_the_factory(write_conf, tmp_path, caplog):
    conf = write_conf(QUEUE.format(name="A", sleep=60))
    d = daemon_mod.Daemon(conf, configmod.load(conf), cli.service_maker(emulate=True))
    heard = Heard()
    d.monitors += [Broken(), heard]
    (tmp_path / "queues.conf").write_text(QUEUE.format(name="A", sleep=60) + QUEUE.format(name="B", sleep=60))
    with caplog.at_level(logging.ERROR, logger="provisioner"):
        d.reload()
    assert "monitor broken failed" in caplog.text
    assert [q.name for q in d.factory.queues] == ["A", "B"] and len(heard.configs) == 1
    d.ledger.close()


def test_emulated_reload_keeps_the_pool_and_a_refused_one_changes_nothing(write_conf, tmp_path):
    conf = write_conf(QUEUE.format(name="A", sleep=60))
    d = daemon_mod.Daemon(conf, configmod.load(conf), cli.service_maker(emulate=True))
    first = d.services
    (tmp_path / "factory.conf").write_text((tmp_path / "factory.conf").read_text().replace("= logs", "= elsewhere"))
    (tmp_path / "queues.conf").write_text("[A]\nbatchstatusplugin = Cloud\nbatchsubmitplugin = CondorLocal\n")
    d.reload()  # refused while building its plugins
    assert d.services is first and first.log_dir.endswith("logs") and first.queue_names == {"A"}
    (tmp_path / "queues.conf").write_text(QUEUE.format(name="A", sleep=60) + QUEUE.format(name="B", sleep=60))
    d.reload()
    assert d.services is not first and d.services.condor is first.condor  # the emulated jobs stay
    assert d.services.log_dir.endswith("elsewhere") and d.services.queue_names == {"A", "B"}
    d.ledger.close()


def test_a_second_factory_on_the_same_ledger_is_refused_until_the_first_stops(write_conf, daemon, tmp_path):
    conf = write_conf(QUEUE.format(name="A", sleep=3600))
    first = daemon(conf)
    first.wait_for("queue=A ")
    again = [sys.executable, "-m", "provisioner", "run", "--conf", conf, "--emulate", "--once"]
    r = subprocess.run(again, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"error: ledger {tmp_path}/logs/ledger.sqlite: in use by another running factory; stop it"
                        f" first, or give this one a statedir of its own\n")
    dry = subprocess.run(again + ["--dry-run"], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "would submit" in dry.stderr  # writes no ledger: not refused
    assert first.proc.poll() is None
    first.proc.kill()  # a crash: the kernel drops the lock, so the restart is not refused
    first.proc.wait(10)
    r = subprocess.run(again, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "queue=A " in r.stderr, r.stderr
