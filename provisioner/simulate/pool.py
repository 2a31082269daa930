"""The emulated schedd, tuned for replaying traces: same calls and results, faster queries.

``query`` projects each ad into a new ClassAd (~50 us an ad); a simulation queries
the same unchanged ads every cycle, so projections, and whether a constraint without
function calls holds, are cached per job and dropped whenever the job changes
through any Schedd call. Callers must not change the ads
they receive (none of the factory's plugins does). Submit and remove are also
reported to listeners, so an emulated site learns of new pilots without scanning.
"""
from typing import Callable, List

from provisioner.condor import emulator


class FastSchedd(emulator.Schedd):
    def __init__(self, pool, name):
        super().__init__(pool, name)
        self._projected = {}  # job id -> {projection: ad}
        self.on_submit: List[Callable] = []
        self.on_remove: List[Callable] = []

    def query(self, constraint="True", projection=(), callback=None, limit=-1, opts=None):
        if not projection or callback is not None or limit >= 0:
            return super().query(constraint, projection, callback, limit, opts)
        self._check("query")
        self.expire()
        text = str(constraint)
        expr = constraint if isinstance(constraint, emulator.classad2.ExprTree) else emulator.classad2.ExprTree(text)
        pure = emulator.is_pure(text)
        key = (text if pure else None, tuple(projection))
        out = []
        for jid, ad in self.jobs.items():
            cached = self._projected.setdefault(jid, {})
            if pure:  # the constraint's result is kept too: None, it does not hold
                if key not in cached:
                    cached[key] = emulator.project(ad, projection, emulator.Projection) if expr.eval(ad) is True else None
            elif expr.eval(ad) is not True:
                continue
            elif key not in cached:
                cached[key] = emulator.project(ad, projection, emulator.Projection)
            if cached[key] is not None:
                out.append(cached[key])
        return out

    def _forget(self, ids):
        for jid in ids:
            self._projected.pop(jid, None)

    def submit(self, description, count=0, spool=False, itemdata=None, queue=None):
        result = super().submit(description, count, spool, itemdata, queue)
        ids = [f"{result.cluster()}.{i}" for i in range(result.num_procs())]
        for listener in self.on_submit:
            listener(ids)
        return result

    def act(self, action, job_spec, reason=None):
        ids = self._select(job_spec)
        self._forget(ids)
        result = super().act(action, ids, reason)
        gone = [j for j in ids if j not in self.jobs]
        if gone:
            for listener in self.on_remove:
                listener(gone)
        return result

    def edit(self, job_spec, attr, value, flags=None):
        self._forget(self._select(job_spec))
        return super().edit(job_spec, attr, value, flags)

    def set_status(self, ids, status):
        ids = list(ids)
        self._forget(ids)
        super().set_status(ids, status)

    def finish(self, ids):
        ids = list(ids)
        self._forget(ids)
        super().finish(ids)


def make_pool(clock) -> emulator.Pool:
    pool = emulator.Pool(clock, schedds=())
    pool.schedds[pool.LOCAL] = FastSchedd(pool, pool.LOCAL)
    return pool
