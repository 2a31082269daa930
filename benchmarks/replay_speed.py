"""How fast the simulator replays: one week of 10,000 jobs through the default policy.

    python3 benchmarks/replay_speed.py [--jobs 10000] [--days 7]

The trace is the diurnal generator of benchmarks/traces/generate.py scaled to the
job count, on the reference 8-core EC2 queue. Prints wall time, decisions and
events per second. Goal: well under a minute.
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
    args = ap.parse_args(argv)
    rows = generate.diurnal(random.Random(3), days=args.days, mean_per_hour=args.jobs / (args.days * 24))
    jobs = traces.normalise([traces.Job(i, s, r, c, m) for i, (s, r, c, m) in enumerate(rows)])
    started = time.perf_counter()
    result = replay(os.path.join(HERE, "traces", "cloud.conf"), jobs)
    wall = time.perf_counter() - started
    s = result.overall
    print(f"{len(jobs)} jobs over {args.days} days replayed in {wall:.1f} s wall "
          f"({len(result.sim.decisions)} decisions, {s.launches} VM launches, "
          f"{len(jobs) / wall:.0f} jobs/s); goal: well under 60 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
