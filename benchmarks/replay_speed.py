"""How fast the simulator replays: one week of 10,000 jobs through the default policy.

    python3 benchmarks/replay_speed.py [--jobs 10000] [--days 7] [--heavy [--csv PATH]]

The trace is the diurnal generator of benchmarks/traces/generate.py scaled to the
job count, on the reference 8-core EC2 queue. ``--heavy`` replays instead the
heavy generator (batches of 1- to 8-core jobs running minutes to hours) on the two
queues of traces/heavy.conf, which keeps about 30 VMs up; ``--csv`` also writes
that trace, for ``provisioner simulate --conf benchmarks/traces/heavy.conf --trace PATH``.
Prints wall time, decisions and launches. Goal: well under a minute.
"""
import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(HERE))
    sys.path.insert(0, os.path.join(HERE, "traces"))
    import generate
    from provisioner.simulate import traces
    from provisioner.simulate.run import replay

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--heavy", action="store_true", help="two queues, about 30 VMs up")
    ap.add_argument("--csv", help="with --heavy: write the trace to this CSV file")
    args = ap.parse_args(argv)
    if args.csv and not args.heavy:
        ap.error("--csv needs --heavy")
    if args.heavy:
        conf, rows = "heavy.conf", generate.heavy(random.Random(4), days=args.days, jobs=args.jobs)
        if args.csv:
            generate.write_csv(os.path.abspath(args.csv), rows)
    else:
        conf = "cloud.conf"
        rows = [(*r, None) for r in generate.diurnal(random.Random(3), days=args.days,
                                                      mean_per_hour=args.jobs / (args.days * 24))]
    jobs = traces.normalise([traces.Job(i, s, r, c, m, q) for i, (s, r, c, m, q) in enumerate(rows)])
    started = time.perf_counter()
    result = replay(os.path.join(HERE, "traces", conf), jobs)
    wall = time.perf_counter() - started
    s = result.overall
    print(f"{len(jobs)} jobs over {args.days} days replayed in {wall:.1f} s wall "
          f"({len(result.sim.decisions)} decisions, {s.launches} VM launches, "
          f"{len(jobs) / wall:.0f} jobs/s); goal: well under 60 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
