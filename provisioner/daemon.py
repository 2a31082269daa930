"""The long-running loop: cycles on the wall clock, SIGTERM and SIGHUP.

SIGTERM (or SIGINT) lets the current cycle finish, then exits 0. SIGHUP reloads
the configuration; a bad new one is logged and the old one kept.
"""
import logging
import os
import select
import signal

from provisioner import config as configmod, winddown
from provisioner.errors import ConfigError, ConfigErrors, ProvisionerError
from provisioner.factory import Factory
from provisioner.ledger import Ledger

log = logging.getLogger("provisioner")

# The longest single wait: select's timeout overflows near 292 years, and a factory with no
# enabled queue has nothing due at all (inf); it looks again after this and waits on.
_MAX_WAIT = 3600.0

# Read once at start by the ledger and the monitors; a reload does not reopen or restart them.
_AT_START = ("monitorurl", "factoryadminemail", "logserver.enabled", "logserver.address", "logserver.port",
             "baselogdir", "baselogdirurl", "statedir")


def ledger_path(cfg) -> str:
    return os.path.join(cfg.state_dir, "ledger.sqlite")


def _make_state_dir(cfg) -> None:
    """The ledger's directory, created and writable, or ConfigErrors naming the option that set it."""
    key = "statedir" if cfg.options["statedir"] else "baselogdir"
    try:
        os.makedirs(cfg.state_dir, exist_ok=True)
    except OSError as exc:
        raise ConfigErrors([ConfigError(cfg.path, "Factory", key, f"cannot create {cfg.state_dir}: "
                                                                  f"{exc.strerror}")]) from None
    if not os.access(cfg.state_dir, os.W_OK | os.X_OK):  # sqlite would say only "unable to open"
        raise ConfigErrors([ConfigError(cfg.path, "Factory", key, f"cannot write in {cfg.state_dir}")])


def monitors_for(cfg) -> list:
    out = []
    if cfg.monitor_url:
        from provisioner.monitor.apfmon import APFMon

        out.append(APFMon(cfg.monitor_url, cfg.factory_id, cfg.queues, cfg.options["factoryadminemail"],
                          cfg.log_url))
    if cfg.options["logserver.enabled"]:
        from provisioner.monitor.web import WebMonitor

        out.append(WebMonitor(cfg.factory_id, cfg.log_dir, cfg.options["logserver.address"],
                              cfg.options["logserver.port"], conf_path=cfg.path))
    return out


class Daemon:
    def __init__(self, conf_path, cfg, make_services, once=False, dry_run=False):
        self.conf_path, self.cfg = conf_path, cfg
        self.make_services = make_services
        self.once, self.dry_run = once, dry_run
        if not dry_run:
            _make_state_dir(cfg)
        self.services = make_services(cfg)
        # A dry run leaves no trace, not even an empty ledger.
        self.ledger = Ledger(None if dry_run else ledger_path(cfg), cfg.factory_id, exclusive=True)
        try:
            for row in self.ledger.interrupt_open_intents():
                log.warning("queue=%s %s of %d (launch %s) was interrupted by a stop; what it created is found"
                            " by its launch id", row["queue"], row["action"], row["count"], row["launch_id"])
            self.monitors = [] if dry_run else monitors_for(cfg)
            self.factory = Factory(cfg, self.services, self.ledger, self.monitors,
                                   winddown.removed(self.ledger, [], cfg))
        except BaseException:
            self.ledger.close()  # and its lock: a start refused here holds nothing
            raise
        # Signals wake the loop through a self-pipe that the interpreter itself writes
        # (signal.set_wakeup_fd), whichever thread the kernel delivers them to; a handler
        # setting a threading.Event could deadlock against the loop holding its lock.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.stopping = False
        self.reloading = False

    def _on_stop(self, signum, frame):
        self.stopping = True

    def _on_hup(self, signum, frame):
        self.reloading = True

    def _sleep(self, seconds: float) -> None:
        """Until the next cycle is due or a signal arrives, whichever comes first."""
        if seconds > 0:
            select.select([self._wake_r], [], [], min(seconds, _MAX_WAIT))
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def reload(self) -> None:
        self.reloading = False
        services = None
        try:
            cfg = configmod.load(self.conf_path)
            if cfg.factory_id != self.cfg.factory_id:
                raise ConfigErrors([ConfigError(cfg.path, "Factory", "factoryid", "changes only at a restart")])
            services = self.make_services(cfg)
            factory = Factory(cfg, services, self.ledger, self.monitors,
                              winddown.removed(self.ledger, self.factory.queues, cfg))
        except Exception as exc:
            if isinstance(exc, ProvisionerError):
                for line in str(exc).splitlines():
                    log.error("reload refused, keeping the running configuration: %s", line)
            else:  # a bug, here or in a plugin: the factory goes on as it was
                log.exception("reload refused, keeping the running configuration: %r", exc)
            if services is not None and services is not self.services:
                services.close()
            return
        changed = [k for k in _AT_START if cfg.options.get(k) != self.cfg.options.get(k)]
        if changed and not self.dry_run:
            log.warning("reload: %s changed: new pilots use the new values, but the ledger, the status page and"
                        " apfmon keep the old ones until the next start", ", ".join(changed))
        old, self.services = self.services, services
        self.cfg, self.factory = cfg, factory
        if old is not services:
            old.close()  # the old SSH sessions would otherwise stay open with their threads
        for monitor in self.monitors:
            try:
                monitor.reconfigure(cfg, winddown.names(factory.queues))
            except Exception:  # a monitor must never stop the factory
                log.exception("monitor %s failed", monitor.name)
        log.info("configuration reloaded: %d queues", len(factory.queues))

    def run(self) -> int:
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)  # full: a wake-up is pending anyway
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        log.info("factory %s started with %d queues (pid %d)", self.cfg.factory_id, len(self.factory.queues),
                 os.getpid())
        ignored = configmod.ignored_line(self.cfg)
        if ignored:  # an operator migrating from APF sees them without check-config
            log.info("%s", ignored)
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
            self._sleep(self.factory.next_wake() - self.services.clock.now())
            if self.stopping:
                break
        for monitor in self.monitors:
            monitor.stop()
        self.services.close()
        log.info("factory %s stopped after %d cycles", self.cfg.factory_id, cycles)
        self.ledger.close()
        signal.set_wakeup_fd(-1)
        os.close(self._wake_r)
        os.close(self._wake_w)
        return 0
