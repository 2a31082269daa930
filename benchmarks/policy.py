"""Every named policy on the reference traces, against the clairvoyant bound.

    python3 benchmarks/policy.py [--markdown] [--jobs N] [--policy NAME ...] [--trace NAME ...]

Replays benchmarks/traces/{burst,diurnal}.csv (8-core VMs) and the NASA iPSC/860
cut (32-core VMs) through the real factory on the emulated pool and cloud, once
per policy of provisioner/simulate/policies.py, and prints one table: waits (all
and the part provisioning added), VM-hours used and wasted (billed with no job
on the VM), launches, and wasted over the clairvoyant bound's. A last column
says whether the default policy Pareto-dominates each peer on (wasted VM-hours,
p95 provisioning wait). docs/benchmarks.md holds the table as last measured.
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


def run(trace: str, policy: str):
    from provisioner.simulate import traces
    from provisioner.simulate.run import replay

    conf, path = (os.path.join(HERE, "traces", f) for f in TRACES[trace])
    jobs, _ = traces.load(path)
    started = time.perf_counter()
    overall = replay(conf, jobs, policy).overall
    return trace, policy, overall, time.perf_counter() - started


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
    args = ap.parse_args(argv)
    names = args.policy or [policies.DEFAULT, *policies.PEERS]
    if policies.DEFAULT not in names:
        names.insert(0, policies.DEFAULT)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run, *zip(*[(t, p) for t in args.trace or TRACES for p in names])))
    by = {(t, p): s for t, p, s, _ in results}
    rows, failures = [], []
    for t, p, s, _ in results:
        if p not in policies.PEERS:
            verdict = ""
        else:
            verdict = "yes" if dominates(by[(t, policies.DEFAULT)], s) else "no"
            if verdict == "no":
                failures.append(f"{t}/{p}")
        rows.append((t, p, report.duration(s.wait_p50), report.duration(s.wait_p95), report.duration(s.prov_p95),
                     f"{s.vm_hours:.1f}", f"{s.wasted:.1f}", str(s.launches), f"{s.ratio:.2f}", verdict))
    print(report.table(rows, COLUMNS, markdown=args.markdown))
    print(f"\n{len(results)} replays in {time.perf_counter() - started:.1f} s wall "
          f"(slowest {max(r[3] for r in results):.1f} s)")
    worst = max(by[(t, policies.DEFAULT)].ratio for t in args.trace or TRACES)
    print(f"default policy {policies.DEFAULT!r}: worst waste/bound {worst:.2f} (goal <= 1.3); "
          + (f"not dominating: {', '.join(failures)}" if failures else "dominates every peer on every trace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
