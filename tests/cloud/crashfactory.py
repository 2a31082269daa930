"""`provisioner run` in a real process whose HTCondor pool outlives it, killed on cue.

    python crashfactory.py WORLD.json run --conf factory.conf --once

WORLD.json holds the pool as the VMs and users keep it while the factory is down:
{"jobs": [{"count": N, "attrs": {...}}], "machines": {instance_id: {"busy": bool,
"draining": bool, "tags": {...}}}}. A drain is written back at once, as a real startd
keeps it. ``PROVISIONER_CRASH_AT=point[@n]`` SIGKILLs the process at the n-th (default
first) passage through ``point``: launch.before, launch.after, intent.after,
complete.before, drain.after, tag.after, terminate.before, terminate.after, and
create_node.after (one OpenStack server made, of a launch of several).
``PROVISIONER_CLOCK_SHIFT=S`` runs the factory S seconds in the future (VMs look older).
"""
import json
import os
import signal
import sys
import time


def _crash_points():
    spec = os.environ.get("PROVISIONER_CRASH_AT", "")
    point, _, nth = spec.partition("@")
    seen = {"n": 0}

    def at(name):
        if name == point:
            seen["n"] += 1
            if seen["n"] == int(nth or 1):
                os.kill(os.getpid(), signal.SIGKILL)

    return at


def _wrap(cls, method, at, before=None, after=None):
    original = getattr(cls, method)

    def wrapped(self, *args, **kwargs):
        if before:
            at(before)
        out = original(self, *args, **kwargs)
        if after:
            at(after)
        return out

    setattr(cls, method, wrapped)


def load_world(path):
    with open(path) as fh:
        return json.load(fh)


def save_world(path, world):
    with open(path + ".tmp", "w") as fh:
        json.dump(world, fh)
    os.replace(path + ".tmp", path)


def main(argv):
    from libcloud.compute.drivers.openstack import OpenStack_2_NodeDriver

    from provisioner import cli
    from provisioner.clock import WallClock
    from provisioner.cloud import ec2api, emulator
    from provisioner.condor.emulator import Pool
    from provisioner.ledger import Ledger
    from provisioner.services import Services

    world_path, argv = argv[0], argv[1:]
    at = _crash_points()
    _wrap(ec2api.EC2Backend, "launch", at, "launch.before", "launch.after")
    _wrap(ec2api.EC2Backend, "terminate", at, "terminate.before", "terminate.after")
    _wrap(ec2api.EC2Backend, "tag", at, None, "tag.after")
    _wrap(Ledger, "intent", at, None, "intent.after")
    _wrap(Ledger, "complete", at, "complete.before", None)
    _wrap(OpenStack_2_NodeDriver, "create_node", at, None, "create_node.after")

    def services(cfg, emulate, _pool=None):  # cli._services, with the world as its pool
        clock = WallClock()
        shift = float(os.environ.get("PROVISIONER_CLOCK_SHIFT", 0))
        clock.now = lambda: time.time() + shift
        pool = Pool(clock)
        world = load_world(world_path)
        for group in world.get("jobs", []):
            pool.schedd().add_jobs(group["count"], **group["attrs"])
        names = {}
        for iid, m in world.get("machines", {}).items():
            name = emulator.add_machine(pool, iid, m.get("cpus", 8), 32768, 0, m["tags"], clock.now() - 3600)
            names[name] = iid
            ad = pool.machines[name]
            if m.get("busy"):
                ad["State"], ad["Activity"] = "Claimed", "Busy"
            if m.get("draining"):
                ad["Draining"] = True
                ad["State"], ad["Activity"] = ("Claimed", "Retiring") if m.get("busy") else ("Drained", "Idle")
        drain = pool.drain

        def persistent_drain(machine, *args, **kwargs):
            out = drain(machine, *args, **kwargs)
            now = load_world(world_path)
            for name, ad in pool.machines.items():
                if ad.get("Draining") and names.get(name) in now["machines"]:
                    now["machines"][names[name]]["draining"] = True
            save_world(world_path, now)
            at("drain.after")
            return out

        pool.drain = persistent_drain
        return Services(cfg.factory_id, clock, pool, log_dir=cfg.log_dir, log_url=cfg.log_url,
                        monitor_url=cfg.monitor_url)

    cli._services = services
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
