"""1,000 queues and 100,000 queued jobs: how long a decision takes next to just reading the ads.

Runs on the embedded emulated pool (in-process; classad2 evaluates the constraints).
Prints: the time of one bare query of the ads, the time of a whole dry-run cycle
(both status queries, grouping, every queue's policy chain), and the query count.

    python benchmarks/factory_cycle.py [--queues 1000] [--jobs 100000]
"""
import argparse
import os
import statistics
import tempfile
import time

from provisioner import config as configmod
from provisioner.clock import VirtualClock
from provisioner.condor.emulator import Pool
from provisioner.factory import Factory
from provisioner.ledger import Ledger
from provisioner.services import Services
from provisioner.wmsstatus.condor import _BASE, _CONSTRAINT


def build(queues: int, jobs: int, tmp: str):
    with open(os.path.join(tmp, "queues.conf"), "w") as fh:
        fh.write("[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\nbatchsubmitplugin = CondorLocal\n"
                 "schedplugin = Ready, MaxPerCycle, MaxPending\nsched.maxpercycle.maximum = 50\n"
                 "sched.maxpending.maximum = 100\n")
        for i in range(queues):
            fh.write(f"[Q{i}]\nwmsqueue = W{i}\n")
    with open(os.path.join(tmp, "factory.conf"), "w") as fh:
        fh.write("[Factory]\nfactoryId = bench\nqueueConf = queues.conf\n")
    cfg = configmod.load(os.path.join(tmp, "factory.conf"))
    clock = VirtualClock(1_700_000_000)
    pool = Pool(clock)
    per = jobs // queues
    for i in range(queues):
        pool.schedd().add_jobs(per, TargetQueue=f"W{i}", RequestCpus=1 + i % 4)
    factory = Factory(cfg, Services(cfg.factory_id, clock, pool, log_dir=tmp), Ledger(None, cfg.factory_id))
    return factory, pool


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queues", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        factory, pool = build(args.queues, args.jobs, tmp)
        print(f"setup: {args.queues} queues, {args.jobs} idle jobs in {time.perf_counter() - t0:.1f} s")
        schedd = pool.schedd()
        reads, cycles = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ads = schedd.query(_CONSTRAINT, sorted(set(_BASE) | {"TargetQueue"}))
            reads.append(time.perf_counter() - t0)
            before = schedd.calls["query"]
            clock = factory.services.clock
            clock.advance_to(max(clock.now(), factory.next_wake()))
            t0 = time.perf_counter()
            decisions = factory.cycle(dry_run=True)
            cycles.append(time.perf_counter() - t0)
            queries = schedd.calls["query"] - before
        read, cycle = statistics.median(reads), statistics.median(cycles)
        print(f"read the ads only:        {read:6.2f} s  ({len(ads)} ads, median of {args.repeat})")
        print(f"whole decision cycle:     {cycle:6.2f} s  ({len(decisions)} queues decided)")
        print(f"cycle / read:             {cycle / read:6.2f}x")
        print(f"schedd queries per cycle: {queries} (one for jobs, one for pilots)")
        print(f"pilots the cycle would submit: {sum(d.count for d in decisions)}")


if __name__ == "__main__":
    main()
