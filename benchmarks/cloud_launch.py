"""Benchmark: one queue asks for 1,000 VMs against moto_server over real HTTP.

Prints the EC2 API calls the factory made (goal: <= 10 for the launch) and wall
times. Run: python benchmarks/cloud_launch.py [--vms 1000]
"""
import argparse
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUEUES = """[BURST]
wmsstatusplugin = Condor
batchstatusplugin = Cloud
schedplugin = VMDemand, MaxPerCycle
sched.maxpercycle.maximum = 100000
batchsubmitplugin = EC2
batchsubmit.ec2.endpoint_url = {url}
batchsubmit.ec2.ami_id = ami-12c6146b
batchsubmit.ec2.instance_types = m5.2xlarge
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", type=int, default=1000)
    args = ap.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    from provisioner import config as configmod
    from provisioner.clock import WallClock
    from provisioner.condor.emulator import Pool
    from provisioner.factory import Factory
    from provisioner.ledger import Ledger
    from provisioner.services import Services

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    calls = {}

    def count(event_name, **kwargs):
        op = event_name.rsplit(".", 1)[-1]
        calls[op] = calls.get(op, 0) + 1

    def client(**kwargs):
        c = boto3.client("ec2", **kwargs)
        c.meta.events.register("before-call.ec2.*", count)
        return c

    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "queues.conf"), "w") as fh:
        fh.write(QUEUES.format(url=url))
    with open(os.path.join(tmp, "factory.conf"), "w") as fh:
        fh.write("[Factory]\nfactoryId = bench\nqueueConf = queues.conf\nbaseLogDir = logs\n")
    cfg = configmod.load(os.path.join(tmp, "factory.conf"))
    clock = WallClock()
    pool = Pool(clock)
    pool.schedd().add_jobs(args.vms * 8, RequestCpus=1, RequestMemory=2048)
    factory = Factory(cfg, Services(cfg.factory_id, clock, pool, log_dir=tmp, extra={"ec2": client}),
                      Ledger(None, cfg.factory_id))
    t0 = time.perf_counter()
    d = factory.cycle()[0]
    t1 = time.perf_counter()
    launch_calls = dict(calls)
    for q in factory.queues:
        q.next_due = 0
    again = factory.cycle()[0]
    t2 = time.perf_counter()
    server.stop()
    print(f"idle jobs: {args.vms * 8} x 1 core -> VMs launched: {d.count} ({d.action})")
    print(f"launch cycle: {sum(launch_calls.values())} EC2 API calls {launch_calls}, {t1 - t0:.2f} s wall")
    rest = {k: calls[k] - launch_calls.get(k, 0) for k in calls if calls[k] - launch_calls.get(k, 0)}
    print(f"next cycle (adopts all {again.pilots.pending} booting, launches {again.count}): "
          f"{sum(rest.values())} EC2 API calls {rest}, {t2 - t1:.2f} s wall")


if __name__ == "__main__":
    main()
