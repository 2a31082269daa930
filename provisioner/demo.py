"""``provisioner demo``: the whole mission in seconds, with nothing to set up.

A compressed scenario (a burst of jobs, a lull, a second burst whose new
high-memory image never joins the pool) is replayed in virtual time through the
real factory: the policy chains of ``examples/demo/queues.conf``, the ec2 target
against the emulated EC2, its lifecycle upkeep and black-hole guard. No cloud
account, no HTCondor, no network, no sleeping.
"""
import os
import random
import sys
from collections import Counter, defaultdict

from provisioner.cloud import lifecycle
from provisioner.errors import InputError
from provisioner.simulate import report
from provisioner.simulate.run import replay
from provisioner.simulate.traces import Job, normalise

CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples", "demo", "factory.conf")
HOUR = 3600
END = 4 * HOUR
ARRIVAL = 60  # s over which a burst's jobs are submitted
SEED = 7

# (start, header, jobs as (count, queue, cpus, memory MB, shortest and longest run time in s))
PHASES = (
    (0, "burst: 160 one-core analysis jobs arrive", [(160, "ANALYSIS", 1, 2048, 1200, 3000)]),
    (1 * HOUR, "lull: no new work; VMs drain as they empty and are terminated", []),
    (2 * HOUR, "second burst: 80 analysis jobs, and 24 high-memory jobs whose new image "
               "(r5.2xlarge) never joins the pool", [(80, "ANALYSIS", 1, 2048, 900, 2400),
                                                     (24, "HIGHMEM", 1, 24576, 1800, 1800)]),
)
_WORDS = {"submit": "launch", "retire": "drain", "none": "hold"}
_PAUSED = "paused: "


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="watch the factory scale an emulated cloud pool (no account, no network)",
                       description="Replay four compressed hours (a burst of jobs, a lull, a second burst with a broken "
                                   "image) through the real factory on the embedded emulated pool and cloud, in "
                                   "virtual time: what each queue decides and why, then a summary and plots.")
    p.add_argument("--out", default="provisioner-demo", help="directory for the plot and report (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no live view, only the summary")
    p.set_defaults(func=cmd_demo)


def jobs():
    rng = random.Random(SEED)
    out = []
    for start, _, groups in PHASES:
        for count, queue, cpus, memory, shortest, longest in groups:
            out += [Job(0, start + rng.uniform(0, ARRIVAL), rng.uniform(shortest, longest), cpus, memory, queue)
                    for _ in range(count)]
    return normalise(out)


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


class LiveView:
    """Turns each cycle's decisions and upkeep into a few lines; tallies what the summary needs."""

    def __init__(self, out, quiet: bool):
        self.out, self.quiet = out, quiet
        self.phase = 0
        self.last_action = 0  # ledger row id already shown
        self.shown = defaultdict(lambda: ("none", False, (), False))  # queue -> its last line's shape
        self.trips = defaultdict(list)  # queue -> (time, reason) of each black-hole guard trip
        self.drained = Counter()  # queue -> VMs terminated once drained
        self.cancelled = Counter()  # queue -> VMs terminated while still booting
        self.states = {}  # queue -> its VMs by state at the last cycle

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, file=self.out)

    def on_cycle(self, sim, t, decisions) -> None:
        now = t - sim.scenario.start
        while self.phase < len(PHASES) and now >= PHASES[self.phase][0]:
            self.say(f"\n== {clock(PHASES[self.phase][0])} {PHASES[self.phase][1]} ==")
            self.phase += 1
        rows = [a for a in sim.ledger.actions(limit=100) if a["id"] > self.last_action]
        self.last_action = max([a["id"] for a in rows], default=self.last_action)
        for d in decisions:
            states = (d.pilots.states if d.pilots else None) or {}
            self.states[d.queue] = states
            paused = d.note.startswith(_PAUSED)
            reason = d.note[len(_PAUSED):] if paused else ""
            shape = (d.action, paused, tuple(sorted(states)), bool(d.work and d.work.idle))
            # upkeep (Queue.maintain) ran before the action: it terminated drained or never-joined VMs
            upkeep = [a for a in reversed(rows) if a["queue"] == d.queue and a["action"] not in ("submit", "retire")]
            cancelled = len(_cancelled(d))
            self.cancelled[d.queue] += cancelled
            if d.action != "none" or upkeep or shape != self.shown[d.queue]:
                self.shown[d.queue] = shape
                self.say(self.line(now, d, states, paused, cancelled))
            if paused and reason not in (r for _, r in self.trips[d.queue]):
                self.trips[d.queue].append((now, reason))
                self.say(f"{'':8}  {d.queue:<9} !! {reason}")
            for a in upkeep:
                self.drained[d.queue] += a["count"] if a["note"] == "drained" else 0
                what = f"{a['action']} {a['count']} VM{'s' * (a['count'] != 1)}: " if a["count"] else ""
                self.say(f"{'':8}  {d.queue:<9} {what}{a['note']}")

    @staticmethod
    def line(now, d, states, paused, cancelled) -> str:
        work = f"{d.work.idle} idle, {d.work.running} running" if d.work else "jobs unknown"
        vms = ", ".join(f"{states[s]} {s}" for s in lifecycle.STATES if s in states) or "none"
        if paused:
            act = f"paused, wants {d.n}"
        elif d.action == "retire" and cancelled:
            act = ", ".join([f"drain {d.count - cancelled}"] * (d.count > cancelled) + [f"cancel {cancelled}"])
        else:
            act = _WORDS.get(d.action, d.action) + (f" {d.count}" if d.action in ("submit", "retire") else "")
            act += f" ({d.note})" if d.note else ""
        # the first step and every step that changed the number: the decision's why
        why = "; ".join(f"{s.step}={s.n} ({s.reason})" for i, s in enumerate(d.steps)
                        if i == 0 or s.n != d.steps[i - 1].n)
        return f"{clock(now)}  {d.queue:<9} {work:<20} VMs: {vms:<27} {act:<16} <- {why}"


def cmd_demo(args) -> int:
    try:
        os.makedirs(args.out, exist_ok=True)  # fail now, not after the replay
    except OSError as exc:  # a user's choice, as in simulate: exit 2 naming the option
        raise InputError(f"--out: cannot create {args.out}: {exc.strerror or exc}") from None
    view = LiveView(sys.stdout, args.quiet)
    print(f"provisioner demo: {END // HOUR} hours of an elastic HTCondor pool on EC2, replayed in virtual time "
          "through the real factory\nagainst the embedded emulated pool and cloud (no cloud account, no HTCondor, "
          f"no network).\nconfig: {CONF}\nANALYSIS launches c5.2xlarge VMs from a working image; HIGHMEM launches "
          "r5.2xlarge VMs from a new image that never joins the pool.")
    view.say("each line: virtual time, queue, its idle and running jobs, its VMs by state, the decision <- why "
             "(its policy steps: Elastic, MaxPerCycle)\n"
             "launch N = start N VMs; drain N = drain N idle VMs, terminated once drained; "
             "cancel N = terminate N VMs still booting that no job waits for; hold = nothing to do\n"
             "elastic's coming = jobs it expects, from the submission rate, before a VM launched now could join "
             "(scaled by its lead); ahead = the VMs it launches for them")
    result = replay(CONF, jobs(), on_cycle=view.on_cycle, until=END)
    view.say(f"\n== {clock(END)} end of the demo ==")
    print("\nwhat happened:")
    for s in result.summaries[:-1]:
        print("  " + mission(s, view))
    text = report.table(report.rows(result.summaries, "elastic"))
    print("\n" + text)
    notes = ["wait = time a job spent idle; prov = the part spent before its VM was launched and while it booted",
             "waste/bound = wasted VM-hours over the clairvoyant bound's; 'jobs 0/24' = never ran"]
    try:
        paths = report.write(args.out, "demo", "provisioner demo", text, [("elastic", result.sim.timeline)], notes)
    except OSError as exc:
        raise InputError(f"--out: cannot write to {args.out}: {exc.strerror or exc}") from None
    print("\n".join(["", *notes, "plot: " + paths[0], "report: " + paths[1]]))
    return 0


def _cancelled(d) -> list:
    """The VMs a retire terminated while they were still booting."""
    if d.action != "retire" or not d.pilots:
        return []
    ids = set(d.ids)
    return [vm for vm in d.pilots.records if vm.id in ids and getattr(vm, "state", None) == lifecycle.BOOTING]


def mission(s, view: LiveView) -> str:
    """One queue's story in a line, from its summary and what the live view saw."""
    drained = view.drained[s.name]
    left = sum(view.states.get(s.name, {}).values())
    parts = [f"{s.finished}/{s.jobs} jobs ran", f"{s.launches} VMs launched"]
    if drained:
        parts.append(f"{drained} drained and terminated")
    if view.cancelled[s.name]:
        parts.append(f"{view.cancelled[s.name]} terminated while still booting, once no job waited for them")
    if s.boot_failures:
        parts.append(f"{s.boot_failures} never joined the pool and were terminated at the boot timeout")
    trips = view.trips[s.name]
    if trips:
        parts.append(f"the black-hole guard tripped {len(trips)} time{'s' * (len(trips) != 1)} "
                     f"(at {', '.join(clock(t) for t, _ in trips)}) and paused its launches each time")
    parts.append(f"{left} VMs left at the end" if left else "no VM left at the end")
    return f"{s.name}: " + "; ".join(parts)
