"""Soak: the real daemon (provisioner.daemon.Daemon) for thousands of cycles with SIGHUP reloads
that add and remove queues and change a target, in process; prints what it holds at the start
and the end: RSS, open fds and sockets, threads, boto3 clients, VMs remembered by the queues'
trackers, Prometheus series, log lines per cycle, ledger rows and bytes.

--cloud moto (default): EC2 queues against moto over real HTTP on loopback, on the wall clock,
every queue due each cycle (the cycles run back to back). --cloud emulated: the in-process EC2
in virtual time, one cycle a minute, so --cycles 100000 is some 70 days and shows the ledger
pruned after a month.
"""
import argparse
import gc
import logging
import os
import socket
import sqlite3
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FACTORY = """[Factory]
factoryId = soak
queueConf = queues.conf
baseLogDir = logs
statedir = state
logserver.enabled = True
logserver.port = 0
"""

QUEUES = """[DEFAULT]
apfqueue.sleep = 60
wmsstatus.condor.queueattribute = TargetQueue
executable = /bin/true

[LOCAL]
wmsqueue = LOCAL
batchsubmitplugin = CondorLocal
schedplugin = Ready, MaxPerCycle, MaxPending
sched.maxpercycle.maximum = {percycle}
sched.maxpending.maximum = 20
"""

EC2 = """
[{name}]
wmsqueue = CLOUD
batchstatusplugin = Cloud
schedplugin = Elastic, MaxPerCycle
sched.maxpercycle.maximum = {percycle}
batchsubmitplugin = EC2
batchsubmit.ec2.region = us-east-1
batchsubmit.ec2.endpoint_url = {endpoint}
batchsubmit.ec2.ami_id = ami-12c6146b
batchsubmit.ec2.instance_types = {types}
batchsubmit.ec2.collector = cm.example.org
batchsubmit.ec2.wrapper_url = https://example.org/wrapper.sh
batchsubmit.ec2.boot_timeout = 300
batchsubmit.ec2.guard_failures = 1000
executable.arguments = --wrappergrid=cloud
"""


def write_queues(path, k, endpoint, other_endpoint):
    """The k-th configuration: LOCAL and CLOUD always (their caps and types change), an EXTRA
    queue that comes and goes, and on another account a CLOUD2 that is removed every other time
    (it winds down)."""
    text = QUEUES.format(percycle=5 + k % 3)
    text += EC2.format(name="CLOUD", endpoint=endpoint, percycle=4 + k % 2,
                       types="m5.large" if k % 3 else "m5.large, c5.large")
    if k % 2 == 0:
        text += EC2.format(name="CLOUD2", endpoint=other_endpoint, percycle=2, types="m5.large")
    text += f"\n[EXTRA_{k % 4}]\nwmsqueue = LOCAL\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready, MaxPending\n" \
            f"sched.maxpending.maximum = 3\n"
    with open(path, "w") as fh:
        fh.write(text)


class Counter(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = 0

    def emit(self, record):
        self.lines += 1


def figures(d, path, log, metrics_url, live):
    import botocore.client

    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    fds = os.listdir("/proc/self/fd")
    links = []
    for f in fds:
        try:
            links.append(os.readlink(f"/proc/self/fd/{f}"))
        except OSError:
            pass
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("decisions", "actions", "state")}
    db.close()
    trackers = d.services.extra.get("cloud.trackers", {}).values()
    metrics = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    return {
        "RSS MB": int(status["VmRSS"].split()[0]) / 1024,
        "open fds": len(fds),
        "sockets": sum(link.startswith("socket:") for link in links),
        "threads": int(status["Threads"]),
        "boto3 clients": sum(isinstance(o, botocore.client.BaseClient) for o in gc.get_objects()),
        "VMs up": live,
        "VMs remembered": sum(len(t.failed) + len(t.terminated_by_us) + len(t.joined) + len(t.lost_since)
                              for t in trackers),
        "metric series": sum(1 for line in metrics.splitlines() if line and not line.startswith("#")),
        "log lines": log.lines,
        "ledger decisions": rows["decisions"],
        "ledger actions": rows["actions"],
        "ledger state keys": rows["state"],
        "ledger KB": sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s)) / 1024,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--reload-every", type=int, default=10, help="cycles between reloads")
    ap.add_argument("--cloud", choices=("moto", "emulated"), default="moto")
    args = ap.parse_args()

    from provisioner import config as configmod
    from provisioner.clock import VirtualClock, WallClock
    from provisioner.cloud import emulator
    from provisioner.condor.emulator import Pool
    from provisioner.daemon import Daemon, ledger_path
    from provisioner.services import Services

    os.environ.update(AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak")
    tmp = tempfile.mkdtemp(prefix="soak-")
    server, extra = None, {}
    if args.cloud == "moto":
        import boto3
        from moto.server import ThreadedMotoServer

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        # two accounts, as the factory keys them: CLOUD2 winds down when removed
        endpoint, other = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
        clock = WallClock()
        cloud = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
    else:
        endpoint, other = "http://127.0.0.1:1", "http://127.0.0.1:2"
        clock = VirtualClock(time.time())
    pool = Pool(clock)
    if args.cloud == "emulated":
        ec2 = emulator.EmulatedEC2(clock, pool, boot_time=120, boot_failure_rate=0.2, seed=1)
        extra = {"ec2": ec2.client, "sleep": lambda s: clock.advance_to(clock.now() + s)}
    conf = os.path.join(tmp, "factory.conf")
    with open(conf, "w") as fh:
        fh.write(FACTORY)
    write_queues(os.path.join(tmp, "queues.conf"), 0, endpoint, other)
    log = Counter()
    logging.getLogger("provisioner").addHandler(log)
    logging.getLogger("provisioner").setLevel(logging.INFO)
    logging.getLogger("provisioner").propagate = False

    def make_services(cfg):
        return Services(cfg.factory_id, clock, pool, log_dir=cfg.log_dir, extra=dict(extra))

    d = Daemon(conf, configmod.load(conf), make_services)
    for m in d.monitors:
        m.start()
    metrics_url = d.monitors[0].url + "/metrics"
    path = ledger_path(d.cfg)
    schedd, joined, started, reloads = pool.schedd(), set(), {}, 0
    t0, start = time.monotonic(), None
    for cycle in range(args.cycles):
        if cycle and cycle % args.reload_every == 0:
            reloads += 1
            write_queues(os.path.join(tmp, "queues.conf"), reloads, endpoint, other)
            d.reload()
        if cycle % 30 == 0:  # a burst of work every half hour of cycles, then a lull
            schedd.add_jobs(12, TargetQueue="LOCAL")
            schedd.add_jobs(16, TargetQueue="CLOUD", RequestCpus=1, RequestMemory=1024)
        # the pool's own life: pilots start, and they and the jobs on the VMs end three cycles later
        for jid, ad in list(schedd.jobs.items()):
            if ad.get("ProvisionerFactory") and ad.get("JobStatus") == 1:
                schedd.set_status([jid], 2)
            if ad.get("JobStatus") == 2 and cycle - started.setdefault(jid, cycle) >= 3:
                schedd.finish([jid])
                del started[jid]
        if args.cloud == "moto":  # three VMs in four boot and join; the others never do
            live = 0
            for r in cloud.describe_instances()["Reservations"]:
                for i in r["Instances"]:
                    live += i["State"]["Name"] not in ("shutting-down", "terminated")
                    iid = i["InstanceId"]
                    if iid not in joined and i["State"]["Name"] == "running" and hash(iid) % 4:
                        tagset = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                        emulator.add_machine(pool, iid, 2, 8192, 0, tagset, clock.now())
                        joined.add(iid)
                    elif i["State"]["Name"] in ("shutting-down", "terminated"):
                        for name in [n for n, ad in pool.machines.items() if ad.get("EC2InstanceId") == iid]:
                            del pool.machines[name]
        else:
            live = sum(i.state not in ("shutting-down", "terminated") for i in ec2.instances.values())
        emulator.negotiate(pool)
        if args.cloud == "moto":
            for q in d.factory.queues:
                q.next_due = 0
        else:
            clock.advance_to(max(clock.now() + 1, d.factory.next_wake()))
        d.factory.cycle()
        if cycle == min(100, args.cycles // 10):  # past the warm-up: imports, first VMs, pages
            gc.collect()
            start = figures(d, path, log, metrics_url, live), cycle
    gc.collect()
    end = figures(d, path, log, metrics_url, live)
    wall = time.monotonic() - t0
    for m in d.monitors:
        m.stop()
    d.services.close()
    d.ledger.close()
    if server:
        server.stop()
    first, at = start
    span = args.cycles - 1 - at
    print(f"{args.cycles} cycles ({args.cloud}), {reloads} reloads, {wall:.0f} s wall; cycle {at} -> {args.cycles - 1}:")
    for key in end:
        print(f"  {key:<18} {first[key]:>10.1f} -> {end[key]:>10.1f}" if isinstance(end[key], float)
              else f"  {key:<18} {first[key]:>10} -> {end[key]:>10}")
    print(f"  log lines per cycle: {(end['log lines'] - first['log lines']) / span:.2f}")


if __name__ == "__main__":
    main()
