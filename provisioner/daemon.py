"""The long-running loop: cycles on the wall clock, SIGTERM and SIGHUP.

SIGTERM (or SIGINT) lets the current cycle finish, then exits 0. SIGHUP reloads
the configuration; a bad new one is logged and the old one kept.
"""
import logging
import os
import signal
import threading

from provisioner import config as configmod
from provisioner.errors import ConfigErrors
from provisioner.factory import Factory
from provisioner.ledger import Ledger

log = logging.getLogger("provisioner")


def ledger_path(cfg) -> str:
    return os.path.join(cfg.state_dir, "ledger.sqlite")


def monitors_for(cfg) -> list:
    out = []
    if cfg.monitor_url:
        from provisioner.monitor.apfmon import APFMon

        out.append(APFMon(cfg.monitor_url, cfg.factory_id, cfg.queues, cfg.options["factoryadminemail"],
                          cfg.log_url))
    if cfg.options["logserver.enabled"]:
        from provisioner.monitor.web import WebMonitor

        out.append(WebMonitor(cfg.factory_id, cfg.log_dir, cfg.options["logserver.address"],
                              cfg.options["logserver.port"]))
    return out


class Daemon:
    def __init__(self, conf_path, cfg, make_services, once=False, dry_run=False):
        self.conf_path, self.cfg = conf_path, cfg
        self.make_services = make_services
        self.once, self.dry_run = once, dry_run
        self.services = make_services(cfg)
        # A dry run leaves no trace, not even an empty ledger.
        self.ledger = Ledger(None if dry_run else ledger_path(cfg), cfg.factory_id)
        for row in self.ledger.interrupt_open_intents():
            log.warning("queue=%s %s of %d (launch %s) was interrupted by a stop; what it created is found by"
                        " its launch id", row["queue"], row["action"], row["count"], row["launch_id"])
        self.monitors = [] if dry_run else monitors_for(cfg)
        self.factory = Factory(cfg, self.services, self.ledger, self.monitors)
        self.wake = threading.Event()
        self.stopping = False
        self.reloading = False

    def _on_stop(self, signum, frame):
        self.stopping = True
        self.wake.set()

    def _on_hup(self, signum, frame):
        self.reloading = True
        self.wake.set()

    def reload(self) -> None:
        self.reloading = False
        try:
            cfg = configmod.load(self.conf_path)
            factory = Factory(cfg, self.make_services(cfg), self.ledger, self.monitors)
        except ConfigErrors as exc:
            for line in str(exc).splitlines():
                log.error("reload refused, keeping the running configuration: %s", line)
            return
        self.cfg, self.factory = cfg, factory
        log.info("configuration reloaded: %d queues", len(factory.queues))

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        log.info("factory %s started with %d queues (pid %d)", self.cfg.factory_id, len(self.factory.queues),
                 os.getpid())
        for monitor in self.monitors:
            monitor.start()
        cycles = 0
        while True:
            if self.reloading:
                self.reload()
            if self.factory.cycle(self.dry_run):
                cycles += 1
            if self.once or self.stopping or (self.cfg.cycles and cycles >= self.cfg.cycles):
                break
            delay = self.factory.next_wake() - self.services.clock.now()
            if delay > 0:
                self.wake.wait(delay)
            self.wake.clear()
            if self.stopping:
                break
        for monitor in self.monitors:
            monitor.stop()
        log.info("factory %s stopped after %d cycles", self.cfg.factory_id, cycles)
        self.ledger.close()
        return 0
