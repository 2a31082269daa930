"""``provisioner simulate``: replay a job trace through the factory in virtual time."""
import math
import os
import sys

from provisioner.errors import InputError
from provisioner.simulate import metrics, policies, report, run, traces
from provisioner.simulate.progress import Bar

_SHOWN_PROBLEMS = 5
_NAME = "simulate"  # the report's file names: simulate.png, .html, .txt


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
    # under a second, the stop rounds onto the start in the epoch's float seconds
    if args.hours is not None and not (math.isfinite(args.hours) and args.hours * 3600 >= 1):
        raise InputError(f"--hours: must be a number of at least 1/3600 (one second), got {args.hours:g}")
    jobs, problems = traces.load(args.trace, args.format)
    try:
        report.check_writable(args.out, _NAME)  # fail now, not after the replay
    except OSError as exc:
        raise InputError(_out_error(args.out, exc)) from None
    for line in problems[:_SHOWN_PROBLEMS]:
        print(f"warning: {line}", file=sys.stderr)
    if len(problems) > _SHOWN_PROBLEMS:
        print(f"warning: {len(problems) - _SHOWN_PROBLEMS} more lines skipped in {args.trace}", file=sys.stderr)
    for name in args.policy or ():
        if name not in policies.POLICIES:
            print(f"error: unknown policy {name!r} (known: {', '.join(policies.POLICIES)})", file=sys.stderr)
            return 2
    # every replay is set up before the first runs: an error in the last is not found an hour later
    prepared = []
    for name in args.policy or [None]:
        bar = Bar(f"simulating {name or 'configured'}", enabled=False if args.quiet else None)
        prepared.append((name, bar, run.prepare(args.conf, jobs, name, seed=args.seed, on_progress=bar.update,
                                                until=args.hours * 3600 if args.hours else None)))
    results = []
    for name, bar, sim in prepared:
        with bar:
            results.append(run.result(sim.run(), name))
    rows = [row for r in results for row in report.rows(r.summaries, r.label)]
    text = report.table(rows)
    print(text)
    span = max(j.submit for j in jobs) / 3600.0
    unfit = {q: n for r in results for q, n in metrics.unfit(r.sim).items()}
    for queue, n in sorted(unfit.items()):
        print(f"warning: {n} job(s) of queue {queue} fit no VM or pilot of the queue and never ran; "
              "they count in the waits as waiting to the end", file=sys.stderr)
    unselected = {q: n for r in results for q, n in metrics.unselected(r.sim).items()}
    for queue, n in sorted(unselected.items()):
        print(f"warning: {n} job(s) of queue {queue} are not selected by its wmsstatus.condor.constraint: no VM "
              "or pilot was launched for them and they never ran; they count in the waits as waiting to the end",
              file=sys.stderr)
    notes = [f"trace {os.path.basename(args.trace)}: {len(jobs)} jobs over {span:.1f} h"
             + (f", the first {args.hours:g} h replayed" if args.hours else "")
             + (f", {len(problems)} trace line(s) skipped" if problems else "")
             + "".join(f", {n} too big for queue {q}" for q, n in sorted(unfit.items()))
             + "".join(f", {n} not selected by queue {q}" for q, n in sorted(unselected.items())),
             "prov = the part of the wait spent before the job's VM was launched and while it booted",
             "waste/bound = wasted VM-hours over the clairvoyant bound's (docs/simulate.md)"]
    try:
        paths = report.write(args.out, _NAME, f"provisioner simulate: {os.path.basename(args.trace)}", text,
                             [(r.label, r.sim.timeline) for r in results], notes)
    except OSError as exc:  # checked before the replay, but the disk may have filled or changed since
        raise InputError(_out_error(args.out, exc)) from None
    print("\n".join(["", *notes, "plot: " + paths[0], "report: " + paths[1]]))
    return 0


def _out_error(out: str, exc: OSError) -> str:
    return f"--out: cannot write to {exc.filename or out}: {exc.strerror or exc}"
