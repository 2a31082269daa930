"""Every named policy on the reference traces, against the clairvoyant bound.

    python3 benchmarks/policy.py [--markdown] [--jobs N] [--policy NAME ...] [--trace NAME ...] [--seeds K]

Replays benchmarks/traces/{burst,diurnal}.csv (8-core VMs) and the NASA iPSC/860
cut (32-core VMs) through the real factory on the emulated pool and cloud, once
per policy of provisioner/simulate/policies.py, and prints one table: waits (all
and the part provisioning added), VM-hours used and wasted (billed with no job
on the VM), launches, and wasted over the clairvoyant bound's. A last column
says whether the default policy Pareto-dominates each peer on (wasted VM-hours,
p95 provisioning wait). With --seeds K every replay is repeated with seeds 1..K
(boot times, boot failures): the table is seed 1's, and a second table gives
the default's waste/bound range and in how many seeds it dominates each peer.
docs/benchmarks.md holds the tables as last measured.
"""
import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
TRACES = {  # name -> (config, trace)
    "burst": ("cloud.conf", "burst.csv"),
    "diurnal": ("cloud.conf", "diurnal.csv"),
    "nasa-ipsc": ("nasa.conf", "nasa-ipsc-2w.swf"),
}
COLUMNS = ("trace", "policy", "wait p50", "wait p95", "prov p95", "VM-h used", "VM-h wasted", "launches",
           "waste/bound", "default dominates")


def run(trace: str, policy: str, seed: int):
    from provisioner.simulate import traces
    from provisioner.simulate.run import replay

    conf, path = (os.path.join(HERE, "traces", f) for f in TRACES[trace])
    jobs, _ = traces.load(path)
    started = time.perf_counter()
    overall = replay(conf, jobs, policy, seed=seed).overall
    return trace, policy, seed, overall, time.perf_counter() - started


def dominates(a, b) -> bool:
    """a is no worse than b on waste and p95 provisioning wait, and better on one."""
    eps = 1e-6
    no_worse = a.wasted <= b.wasted + eps and a.prov_p95 <= b.prov_p95 + eps
    return no_worse and (a.wasted < b.wasted - eps or a.prov_p95 < b.prov_p95 - eps)


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(HERE))
    from provisioner.simulate import policies, report

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="replays in parallel")
    ap.add_argument("--policy", action="append", choices=sorted(policies.POLICIES))
    ap.add_argument("--trace", action="append", choices=sorted(TRACES))
    ap.add_argument("--seeds", type=int, default=1, help="repeat every replay with seeds 1..K")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds: at least 1")
    names = args.policy or [policies.DEFAULT, *policies.PEERS]
    if policies.DEFAULT not in names:
        names.insert(0, policies.DEFAULT)
    started = time.perf_counter()
    trace_names = args.trace or list(TRACES)
    seeds = range(1, args.seeds + 1)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run, *zip(*[(t, p, k) for t in trace_names for p in names for k in seeds])))
    every = {(t, p, k): s for t, p, k, s, _ in results}
    by = {(t, p): s for (t, p, k), s in every.items() if k == 1}
    rows, failures = [], []
    for (t, p), s in by.items():
        if p not in policies.PEERS:
            verdict = ""
        else:
            verdict = "yes" if dominates(by[(t, policies.DEFAULT)], s) else "no"
            if verdict == "no":
                failures.append(f"{t}/{p}")
        rows.append((t, p, report.duration(s.wait_p50), report.duration(s.wait_p95), report.duration(s.prov_p95),
                     f"{s.vm_hours:.1f}", f"{s.wasted:.1f}", str(s.launches), f"{s.ratio:.2f}", verdict))
    print(report.table(rows, COLUMNS, markdown=args.markdown))
    if args.seeds > 1:
        print()
        print(report.table(_robustness(every, trace_names, [p for p in names if p in policies.PEERS], seeds,
                                       policies.DEFAULT),
                           ("trace", f"{policies.DEFAULT} waste/bound", f"{policies.DEFAULT} prov p95",
                            "dominated in seeds"), markdown=args.markdown))
    print(f"\n{len(results)} replays in {time.perf_counter() - started:.1f} s wall "
          f"(slowest {max(r[4] for r in results):.1f} s)")
    worst = max(by[(t, policies.DEFAULT)].ratio for t in trace_names)
    print(f"default policy {policies.DEFAULT!r}: worst waste/bound {worst:.2f} (goal <= 1.3); "
          + (f"not dominating: {', '.join(failures)}" if failures else "dominates every peer on every trace"))
    return 0


def _robustness(every, trace_names, peers, seeds, default):
    """Per trace: the default's waste/bound and prov p95 ranges over the seeds, and per peer
    how many seeds the default dominates it in."""
    from provisioner.simulate import report

    rows = []
    for t in trace_names:
        mine = [every[(t, default, k)] for k in seeds]
        won = ", ".join(f"{p} {sum(dominates(every[(t, default, k)], every[(t, p, k)]) for k in seeds)}/{len(seeds)}"
                        for p in peers)
        rows.append((t, f"{min(s.ratio for s in mine):.2f}-{max(s.ratio for s in mine):.2f}",
                     f"{report.duration(min(s.prov_p95 for s in mine))}-"
                     f"{report.duration(max(s.prov_p95 for s in mine))}", won))
    return rows


if __name__ == "__main__":
    sys.exit(main())
