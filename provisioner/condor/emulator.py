"""An in-process HTCondor pool that honours the htcondor2 calls the factory makes.

EMULATED, not HTCondor: schedds keep job ads in memory; ``query`` evaluates the
constraint with the real ``classad2`` and projects; ``submit`` takes a real
``htcondor2.Submit`` and turns it into the real job ads with htcondor's v1
``Submit.jobs()`` (no schedd needed); ``act`` and ``edit`` change those ads.
Job state changes (start, finish, hold) are driven by the caller: a test, the
simulator or the demo. Machines (startd ads) live in the collector; ``drain``
marks a startd draining as ``HTCondor.drain`` does for a real one. A machine
advertised as a ``StartdAd`` is projected once per change, not at every query
(a replay queries the same machines every cycle).
"""
import itertools
import re
import warnings
from typing import Dict, Iterable, List, Optional, Set

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # no condor_config on a machine without HTCondor
    import classad2
    import htcondor2
    from htcondor2._schedd import job_spec_hack

IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5


def _v1():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import htcondor

    return htcondor


class SubmitResult:
    def __init__(self, cluster: int, procs: int):
        self._cluster, self._procs = cluster, procs

    def cluster(self) -> int:
        return self._cluster

    def num_procs(self) -> int:
        return self._procs

    def first_proc(self) -> int:
        return 0


class Schedd:
    """One emulated schedd: the htcondor2.Schedd calls plus counters for tests."""

    def __init__(self, pool: "Pool", name: str):
        self.pool, self.name = pool, name
        self.jobs: Dict[str, classad2.ClassAd] = {}
        self._done: Set[str] = set()  # completed jobs kept by their LeaveJobInQueue
        self._held: Set[str] = set()  # held jobs, checked against their PeriodicRemove
        self._clusters = itertools.count(1)
        self.down = False
        self.calls = {"query": 0, "submit": 0, "act": 0, "edit": 0}

    def _check(self, call):
        self.calls[call] += 1
        if self.down:
            raise htcondor2.HTCondorException(f"Failed to connect to schedd {self.name}")

    def query(self, constraint="True", projection=(), callback=None, limit=-1, opts=None) -> List:
        self._check("query")
        self.expire()
        expr = constraint if isinstance(constraint, classad2.ExprTree) else classad2.ExprTree(str(constraint))
        out = []
        for ad in self.jobs.values():
            if expr.eval(ad) is not True:
                continue
            if projection:
                ad = project(ad, projection)
            out.append(callback(ad) if callback else ad)
            if 0 <= limit <= len(out):
                break
        return out

    def submit(self, description, count=0, spool=False, itemdata=None, queue=None) -> SubmitResult:
        self._check("submit")
        if not isinstance(description, htcondor2.Submit):
            raise TypeError("description must be an htcondor2.Submit object")
        count = max(1, count)
        if count > self.pool.jobs_per_submission:  # as the schedd, which refuses the whole transaction
            raise htcondor2.HTCondorException(f"Failed to queue {count} jobs: over MAX_JOBS_PER_SUBMISSION "
                                              f"({self.pool.jobs_per_submission})")
        cluster = next(self._clusters)
        now = int(self.pool.clock.now())
        for ad in _v1().Submit(str(description)).jobs(count=count, clusterid=cluster):
            job = classad2.parseOne(str(ad))
            job["QDate"] = now
            job["EnteredCurrentStatus"] = now
            job["GlobalJobId"] = f"{self.name}#{cluster}.{job['ProcId']}#{now}"
            self.jobs[f"{cluster}.{job['ProcId']}"] = job
        return SubmitResult(cluster, count)

    def _select(self, job_spec) -> List[str]:
        # htcondor2's own reading of a job_spec (ids, cluster, constraint), with its TypeError/ValueError.
        return job_spec_hack(None, job_spec, self._by_ids, self._by_constraint, ())

    def _by_ids(self, _addr, ids: str) -> List[str]:
        return [j for j in ids.split(", ") if j in self.jobs]

    def _by_constraint(self, _addr, constraint: str) -> List[str]:
        expr = classad2.ExprTree(constraint)
        return [k for k, ad in self.jobs.items() if expr.eval(ad) is True]

    def act(self, action, job_spec, reason=None):
        self._check("act")
        ids = self._select(job_spec)
        for jid in ids:
            if action in (htcondor2.JobAction.Remove, htcondor2.JobAction.RemoveX):
                self.pool.on_remove(self, self.jobs.pop(jid))
            elif action == htcondor2.JobAction.Hold:
                self.set_status([jid], HELD)
            elif action == htcondor2.JobAction.Release:
                self.set_status([jid], IDLE)
        return classad2.ClassAd({"TotalSuccess": len(ids), "TotalJobAds": len(ids)})

    def edit(self, job_spec, attr, value, flags=None) -> int:
        self._check("edit")
        ids = self._select(job_spec)
        for jid in ids:
            self.jobs[jid][attr] = classad2.ExprTree(str(value)) if isinstance(value, str) else value
        return len(ids)

    # Drivers: what the real pool would do on its own.
    def add_jobs(self, count: int, **attrs) -> List[str]:
        """Queue user jobs (idle) with the given attributes; returns their ids."""
        cluster, now = next(self._clusters), int(self.pool.clock.now())
        ids = []
        for proc in range(count):
            ad = classad2.ClassAd({"ClusterId": cluster, "ProcId": proc, "JobStatus": IDLE, "QDate": now,
                                   "EnteredCurrentStatus": now, "RequestCpus": 1, "RequestMemory": 2048,
                                   "Owner": "user", "JobUniverse": 5})
            for k, v in attrs.items():
                ad[k] = v
            ids.append(f"{cluster}.{proc}")
            self.jobs[ids[-1]] = ad
        return ids

    def set_status(self, ids: Iterable[str], status: int) -> None:
        now = int(self.pool.clock.now())
        for jid in ids:
            ad = self.jobs[jid]
            if status == RUNNING:
                ad["JobCurrentStartDate"] = now
            ad["JobStatus"] = status
            ad["EnteredCurrentStatus"] = now
            if status == HELD:
                self._held.add(jid)

    def finish(self, ids: Iterable[str]) -> None:
        """Jobs complete; they leave the queue at once unless their LeaveJobInQueue holds."""
        now = int(self.pool.clock.now())
        for jid in list(ids):
            ad = self.jobs[jid]
            ad["JobStatus"], ad["EnteredCurrentStatus"], ad["CompletionDate"] = COMPLETED, now, now
            if "JobCurrentStartDate" in ad:
                ad["RemoteWallClockTime"] = now - ad["JobCurrentStartDate"]
            self._done.add(jid)
        self.expire()

    def expire(self) -> None:
        """Completed jobs whose LeaveJobInQueue no longer holds leave, and held jobs whose
        PeriodicRemove holds, as the schedd's periodic checks would take them (only held
        jobs are checked: the pilots' periodic_remove is about those); ``time()`` in them
        reads the emulator's clock, not the wall clock."""
        now = str(int(self.pool.clock.now()))

        def holds(ad, attr):
            expr = ad.lookup(attr) if attr in ad else None
            return expr is not None and classad2.ExprTree(str(expr).replace("time()", now)).eval(ad) is True

        for jid in list(self._done):
            ad = self.jobs.get(jid)
            if ad is None or not holds(ad, "LeaveJobInQueue"):
                self._done.discard(jid)
                if ad is not None:
                    self.pool.on_remove(self, self.jobs.pop(jid))
        for jid in list(self._held):
            ad = self.jobs.get(jid)
            if ad is None or ad.get("JobStatus") != HELD:
                self._held.discard(jid)
            elif holds(ad, "PeriodicRemove"):
                self._held.discard(jid)
                self.pool.on_remove(self, self.jobs.pop(jid))


# A call in a constraint (time(), random(), ...) may give another result on an unchanged ad.
_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*\(")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def is_pure(constraint: str) -> bool:
    """Whether the constraint's result depends on the ad alone."""
    return not _CALL.search(_STRING.sub('""', constraint))


def project(ad, projection, cls=classad2.ClassAd) -> classad2.ClassAd:
    attrs = {}
    for k in projection:
        try:  # one read of the ad, not a test then a read
            attrs[k] = ad.lookup(k)
        except KeyError:
            pass
    return cls(attrs)


_UNREAD, _ABSENT = object(), object()
_IMMUTABLE = (bool, int, float, str, classad2.Value)


class _ReadOnceAd(classad2.ClassAd):
    """A ClassAd that keeps the immutable values it read (a read through classad2 costs ~3 us,
    ~10 us for a missing attribute); a subclass that can change forgets them on every change."""

    def __init__(self, input=None):
        super().__init__(input)
        self._read = {}

    def _fetch(self, key):
        value = self._read.get(key, _UNREAD)
        if value is _UNREAD:
            try:
                value = super().__getitem__(key)
            except KeyError:
                value = _ABSENT
            if value is _ABSENT or type(value) in _IMMUTABLE:  # a list or an ad could be changed by the reader
                self._read[key] = value
        return value

    def __getitem__(self, key):
        value = self._fetch(key)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        value = self._fetch(key)
        return default if value is _ABSENT else value


class Projection(_ReadOnceAd):
    """A projected ad the emulator hands to every query until its source ad changes: read-only,
    so that a caller cannot change what the next query returns."""

    def __setitem__(self, key, value):
        raise TypeError("an emulator's query result is shared between queries: read-only")

    def __delitem__(self, key):
        raise TypeError("an emulator's query result is shared between queries: read-only")


class StartdAd(_ReadOnceAd):
    """A startd ad that remembers its projections for the collector; any change to it (set or
    delete an attribute) forgets them. A machine advertised as a plain ClassAd is projected
    anew at every query."""

    def __init__(self, input=None):
        super().__init__(input)
        self.projected = {}  # (constraint, projection) -> Projection, or None: no match

    def __setitem__(self, key, value):
        self.projected.clear()
        self._read.clear()
        return super().__setitem__(key, value)

    def __delitem__(self, key):
        self.projected.clear()
        self._read.clear()
        return super().__delitem__(key)


class Collector:
    def __init__(self, pool: "Pool"):
        self.pool = pool
        self.calls = 0

    def query(self, ad_type=None, constraint="True", projection=(), statistics=None) -> List:
        """Callers must not change the ads they receive: a StartdAd's projections are shared
        between queries until it changes."""
        self.calls += 1
        constraint = str(constraint)
        expr = classad2.ExprTree(constraint)
        key = (constraint, tuple(projection)) if projection and is_pure(constraint) else None
        out = []
        for ad in self.pool.machines.values():
            if key is not None and isinstance(ad, StartdAd):
                if key not in ad.projected:
                    ad.projected[key] = project(ad, projection, Projection) if expr.eval(ad) is True else None
                if ad.projected[key] is not None:
                    out.append(ad.projected[key])
            elif expr.eval(ad) is True:
                out.append(project(ad, projection) if projection else ad)
        return out

    def locate(self, daemon_type, name=None):
        schedd = self.pool.schedds.get(name)
        if schedd is None:
            raise htcondor2.HTCondorException(f"Unable to find schedd {name}")
        return classad2.ClassAd({"Name": name, "MyType": "Scheduler"})


class Pool:
    """The emulated pool: schedds by name, startd ads in the collector."""

    LOCAL = "local"

    def __init__(self, clock, schedds: Iterable[str] = (LOCAL,)):
        self.clock = clock
        self.schedds: Dict[str, Schedd] = {n: Schedd(self, n) for n in schedds}
        self.machines: Dict[str, classad2.ClassAd] = {}
        self._collector = Collector(self)
        self.removed: List[classad2.ClassAd] = []
        self.jobs_per_submission = 20000  # the schedds' MAX_JOBS_PER_SUBMISSION

    # The two calls of provisioner.condor.adapter.HTCondor.
    def schedd(self, name: Optional[str] = None, pool: Optional[str] = None) -> Schedd:
        if name is None:
            name = self.LOCAL
        if name not in self.schedds:
            raise htcondor2.HTCondorException(f"Unable to locate schedd {name!r} in pool {pool!r}")
        return self.schedds[name]

    def collector(self, pool: Optional[str] = None) -> Collector:
        return self._collector

    def max_jobs_per_submission(self) -> int:
        return self.jobs_per_submission

    def drain(self, machine: str, pool: Optional[str] = None, reason: Optional[str] = None,
              check_expr: Optional[str] = None) -> str:
        """A graceful drain of one startd (by ``Machine`` or ``Name``), as ``HTCondor.drain``;
        refused unless ``check_expr`` holds for every slot."""
        ads = [ad for ad in self.machines.values() if machine in (ad.get("Machine"), ad.get("Name"))]
        if not ads:
            raise htcondor2.HTCondorException(f"Unable to locate startd {machine!r}")
        check = classad2.ExprTree(check_expr) if check_expr else None
        if check is not None and not all(check.eval(classad2.ClassAd(dict(ad))) is True for ad in ads):
            raise htcondor2.HTCondorException(f"drain of {machine!r} refused: {check_expr} is not true")
        now = int(self.clock.now())
        for ad in ads:
            ad["Draining"], ad["DrainReason"] = True, reason or ""
            busy = ad.get("Activity") in ("Busy", "Retiring")
            ad["State"], ad["Activity"] = ("Claimed", "Retiring") if busy else ("Drained", "Idle")
            ad["EnteredCurrentState"] = now
        return f"drain-{machine}-{now}"

    def on_remove(self, schedd: Schedd, ad) -> None:
        self.removed.append(ad)

    def total_calls(self, call: str) -> int:
        return sum(s.calls[call] for s in self.schedds.values())
