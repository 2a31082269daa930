"""Command line: run, check-config, status (and the subcommands of later families)."""
import argparse
import json
import logging
import os
import sys
import time

from provisioner import __version__
from provisioner import config as configmod
from provisioner.errors import InputError, ProvisionerError

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")
DEFAULT_CONF = os.path.join(EXAMPLES, "factory.conf")


def _services(cfg, emulate: bool, pool=None):
    """The services of one configuration; ``pool``: the emulated pool to go on with."""
    from provisioner.clock import WallClock
    from provisioner.services import Services

    if pool is not None:
        condor = pool
    elif emulate:
        from provisioner.condor.emulator import Pool

        condor = Pool(WallClock())
        with open(os.path.join(EXAMPLES, "jobs.json")) as fh:
            for group in json.load(fh):
                condor.schedd().add_jobs(group["count"], **group["attrs"])
    else:
        from provisioner.condor.adapter import HTCondor

        condor = HTCondor()
    return Services(cfg.factory_id, WallClock(), condor, log_dir=cfg.log_dir, log_url=cfg.log_url,
                    monitor_url=cfg.monitor_url)


def service_maker(emulate: bool):
    """make_services(cfg) for the daemon: new services for every configuration it loads,
    so a refused reload leaves the running ones as they were, but one emulated pool for
    the whole run, so a SIGHUP reload keeps its jobs."""
    kept = {}

    def make_services(cfg):
        services = _services(cfg, emulate, kept.get("pool"))
        if emulate:
            kept["pool"] = services.condor
        return services

    return make_services


def cmd_run(args) -> int:
    from provisioner.daemon import Daemon

    cfg = configmod.load(args.conf)
    return Daemon(args.conf, cfg, service_maker(args.emulate), once=args.once, dry_run=args.dry_run).run()


def cmd_check_config(args) -> int:
    from provisioner.clock import WallClock
    from provisioner.condor.emulator import Pool
    from provisioner.factory import build_queues
    from provisioner.services import Services

    cfg = configmod.load(args.conf)
    # The targets' own checks too, as `run` makes them, with services that reach nothing.
    clock = WallClock()
    build_queues(cfg, Services(cfg.factory_id, clock, Pool(clock), log_dir=cfg.log_dir))
    print(configmod.describe(cfg))
    return 0


def cmd_status(args) -> int:
    from provisioner import winddown
    from provisioner.daemon import ledger_path
    from provisioner.ledger import Ledger

    cfg = configmod.load(args.conf)
    path = ledger_path(cfg)
    try:
        os.stat(path)
    except FileNotFoundError:
        print(f"no ledger yet at {path}: the factory has not run a cycle")
        return 0
    except OSError as exc:  # a ledger that may be there but cannot be reached is no "not run yet"
        raise ProvisionerError(f"ledger {path}: cannot read it: {exc.strerror}") from None
    ledger = Ledger(path, cfg.factory_id, readonly=True)
    last = ledger.last_decisions()
    rows = [("QUEUE", "WAITING", "PENDING", "RUNNING", "WHEN", "DECISION", "REASON")]
    names = [q.name for q in cfg.queues]
    removed = [n for n in winddown.remembered(ledger) if n not in names and n in last]
    for name in names + removed:
        d = last.get(name)
        if d is None:
            rows.append((name, "-", "-", "-", "-", "never decided", ""))
            continue
        when = time.strftime("%H:%M:%S", time.localtime(d["time"]))
        act = f"{d['action']} {d['count']}" if d["action"] in ("submit", "retire") else d["action"]
        rows.append((name, _n(d["idle"]), _n(d["pending"]), _n(d["pilots_running"]), when, act,
                     d["reason"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(6)]
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + str(r[6]))
    ledger.close()
    return 0


def _n(v):
    return "-" if v is None else v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="provisioner", description="Elastic HTCondor provisioner")
    p.add_argument("--version", action="version", version=f"provisioner {__version__}")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the factory")
    run.add_argument("--conf", default=DEFAULT_CONF, help="factory.conf (default: the shipped example)")
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    run.add_argument("--dry-run", action="store_true", help="decide and print, change nothing")
    run.add_argument("--emulate", action="store_true",
                     help="use the embedded emulated pool, seeded with the example's idle jobs")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate and print the resolved queues")
    check.add_argument("--conf", default=DEFAULT_CONF)
    check.set_defaults(func=cmd_check_config)

    status = sub.add_parser("status", help="per queue: waiting, pending, running, last decision")
    status.add_argument("--conf", default=DEFAULT_CONF)
    status.set_defaults(func=cmd_status)

    for module in _subcommand_modules():
        module.add_parser(sub)
    return p


def _subcommand_modules():
    import importlib

    out = []
    for name in ("provisioner.wrapperpack", "provisioner.simulate.cli", "provisioner.demo"):
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
    return out


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    # Libraries' debug lines hold whole requests: botocore's RunInstances carries the user-data and its pool token.
    handler.addFilter(lambda record: record.levelno > logging.DEBUG or record.name.split(".")[0] == "provisioner")
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler],
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args) or 0
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except ProvisionerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `provisioner simulate ... | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor fail flushing at exit
        return 141
