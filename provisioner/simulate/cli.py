"""``provisioner simulate``: replay a job trace through the factory in virtual time."""
import os
import sys

from provisioner.errors import InputError
from provisioner.simulate import metrics, policies, report, traces
from provisioner.simulate.progress import Bar
from provisioner.simulate.run import replay

_SHOWN_PROBLEMS = 5


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="replay a job trace through the factory in virtual time",
                       description="Replay a job trace (SWF, condor_history -json, CSV) through the factory's real "
                                   "policy chains and targets against an emulated pool and cloud; report job waits, "
                                   "VM-hours used and wasted, launches, boot failures and cost.")
    p.add_argument("--conf", required=True, help="factory.conf (its [Simulate] section sets boot times etc.)")
    p.add_argument("--trace", required=True, help="job trace: .swf, .json/.jsonl (condor_history -json), .csv; .gz ok")
    p.add_argument("--format", choices=("swf", "condor", "csv"), help="trace format (default: by extension)")
    p.add_argument("--policy", action="append", metavar="NAME",
                   help=f"rewrite every queue to this policy; repeat to compare ({', '.join(policies.POLICIES)}); "
                        "default: the chains as configured")
    p.add_argument("--out", default="simulate-out", help="directory for the plot and report (default: %(default)s)")
    p.add_argument("--seed", type=int, help="override the [Simulate] seed")
    p.add_argument("--hours", type=float, help="stop after this many simulated hours")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args) -> int:
    if args.hours is not None and args.hours <= 0:
        raise InputError(f"--hours: must be more than 0, got {args.hours:g}")
    jobs, problems = traces.load(args.trace, args.format)
    try:
        os.makedirs(args.out, exist_ok=True)  # fail now, not after the replay
    except OSError as exc:
        raise InputError(f"--out: cannot create {args.out}: {exc.strerror or exc}") from None
    for line in problems[:_SHOWN_PROBLEMS]:
        print(f"warning: {line}", file=sys.stderr)
    if len(problems) > _SHOWN_PROBLEMS:
        print(f"warning: {len(problems) - _SHOWN_PROBLEMS} more lines skipped in {args.trace}", file=sys.stderr)
    for name in args.policy or ():
        if name not in policies.POLICIES:
            print(f"error: unknown policy {name!r} (known: {', '.join(policies.POLICIES)})", file=sys.stderr)
            return 2
    results = []
    for name in args.policy or [None]:
        bar = Bar(f"simulating {name or 'configured'}", enabled=False if args.quiet else None)
        results.append(replay(args.conf, jobs, name, seed=args.seed, on_progress=bar.update,
                              until=args.hours * 3600 if args.hours else None))
        bar.close()
    rows = [row for r in results for row in report.rows(r.summaries, r.label)]
    text = report.table(rows)
    print(text)
    span = max(j.submit for j in jobs) / 3600.0
    unfit = {q: n for r in results for q, n in metrics.unfit(r.sim).items()}
    for queue, n in sorted(unfit.items()):
        print(f"warning: {n} job(s) of queue {queue} fit no VM or pilot of the queue and never ran; "
              "they count in the waits as waiting to the end", file=sys.stderr)
    notes = [f"trace {os.path.basename(args.trace)}: {len(jobs)} jobs over {span:.1f} h"
             + (f", {len(problems)} trace line(s) skipped" if problems else "")
             + "".join(f", {n} too big for queue {q}" for q, n in sorted(unfit.items())),
             "prov = the part of the wait spent before the job's VM was launched and while it booted",
             "waste/bound = wasted VM-hours over the clairvoyant bound's (docs/simulate.md)"]
    paths = report.write(args.out, "simulate", f"provisioner simulate: {os.path.basename(args.trace)}", text,
                         [(r.label, r.sim.timeline) for r in results], notes)
    print("\n".join(["", *notes, "plot: " + paths[0], "report: " + paths[1]]))
    return 0
