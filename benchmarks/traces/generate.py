"""Regenerate the reference traces shipped beside this file (seeded, so the files never change).

    python3 benchmarks/traces/generate.py [NASA-iPSC-1993-3.1-cln.swf.gz]

burst.csv    two bursts of single-core jobs with a lull between them
diurnal.csv  three days of arrivals following a day/night cycle, a tenth of them 4-core
nasa-ipsc-2w.swf  the first 14 days of the NASA iPSC/860 trace (Parallel Workloads Archive),
             jobs of at most 32 processors, from ../../../shared/data or a path given
"""
import argparse
import gzip
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
NASA = os.path.join(HERE, "..", "..", "..", "shared", "data", "NASA-iPSC-1993-3.1-cln.swf.gz")


def burst(rng):
    rows = []
    for start, count, spread in ((0, 400, 600), (5 * 3600, 300, 900)):
        rows += [(start + rng.uniform(0, spread), rng.uniform(600, 3600), 1, 2000) for _ in range(count)]
    return rows


def diurnal(rng, days=3, mean_per_hour=40):
    rows, t, peak = [], 0.0, 2 * mean_per_hour / 3600
    while t < days * 86400:  # thinning: a Poisson process of rate mean * (1 + 0.9 sin)
        t += rng.expovariate(peak)
        if rng.random() < (1 + 0.9 * math.sin(2 * math.pi * t / 86400)) / 2:
            cpus = 4 if rng.random() < 0.1 else 1
            rows.append((t, min(rng.expovariate(1 / 2400), 6 * 3600), cpus, 2000 * cpus))
    return rows


def heavy(rng, days=7, jobs=10_000):
    """The heavy case of replay_speed.py: batches of 1-5 alike jobs on a day/night cycle, for two
    queues (CLOUD, HIMEM), of 1 to 8 cores and runs of minutes to hours; keeps about 30 VMs up."""
    rows, t, peak = [], 0.0, 2 * jobs / 3 / (days * 86400)
    while t < days * 86400:
        t += rng.expovariate(peak)
        if rng.random() < (1 + 0.9 * math.sin(2 * math.pi * t / 86400)) / 2:
            cpus = rng.choice((1, 1, 1, 2, 4, 8))
            queue = "HIMEM" if rng.random() < 0.3 else "CLOUD"
            mean = rng.choice((600, 1800, 11000))
            for _ in range(rng.randint(1, 5)):
                rows.append((t + rng.uniform(0, 60), min(rng.expovariate(1 / mean), 36000), cpus,
                             (6000 if queue == "HIMEM" else 1800) * cpus, queue))
    return rows


def write_csv(name, rows):
    """Rows of (submit, runtime, cpus, memory[, queue]) to ``name``, beside this file unless absolute."""
    queues = len(rows[0]) == 5
    with open(os.path.join(HERE, name), "w") as fh:
        fh.write("submit,runtime,cpus,memory" + (",queue\n" if queues else "\n"))
        for row in sorted(rows):
            fh.write(",".join([f"{row[0]:.0f}", f"{row[1]:.0f}", *map(str, row[2:])]) + "\n")


def nasa(path, days=14, max_procs=32):
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            fields = line.split()
            if line.startswith(";"):
                out.append(line)
            elif len(fields) == 18 and float(fields[1]) < days * 86400 and 0 < int(fields[4]) <= max_procs:
                out.append(line)
    with open(os.path.join(HERE, "nasa-ipsc-2w.swf"), "w") as fh:
        fh.write(f"; Cut by benchmarks/traces/generate.py: first {days} days, jobs of <= {max_procs} processors\n")
        fh.writelines(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nasa", nargs="?", default=NASA, help="the NASA iPSC/860 SWF trace (.swf.gz)")
    args = ap.parse_args()
    write_csv("burst.csv", burst(random.Random(1)))
    write_csv("diurnal.csv", diurnal(random.Random(2)))
    nasa(args.nasa)
