"""The only place that talks to real HTCondor daemons, through htcondor2.

Everything else receives an object with ``schedd(name, pool)``,
``collector(pool)``, ``drain(machine, pool, reason)`` and
``max_jobs_per_submission()``; the emulator in ``emulator.py`` offers the same calls.
"""
import logging
import warnings

log = logging.getLogger("provisioner")


class HTCondor:
    def __init__(self):
        # The bindings warn through Python warnings (e.g. no condor_config): make it one log line.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import htcondor2
        for w in caught:
            log.warning("htcondor: %s", " ".join(str(w.message).split()))
        self._h = htcondor2

    def schedd(self, name=None, pool=None):
        """The local schedd, or a remote one located by name through the collector."""
        if name is None:
            return self._h.Schedd()
        ad = self._h.Collector(pool).locate(self._h.DaemonType.Schedd, name)
        return self._h.Schedd(ad)

    def collector(self, pool=None):
        return self._h.Collector(pool)

    def max_jobs_per_submission(self) -> int:
        """MAX_JOBS_PER_SUBMISSION as this host's configuration sets it (20,000 by default):
        a schedd refuses a whole transaction of more jobs."""
        return int(self._h.param.get("MAX_JOBS_PER_SUBMISSION", 20000))

    def drain(self, machine, pool=None, reason=None, check_expr=None):
        """Gracefully drain the startd of ``machine``: running jobs finish (within their
        MaxJobRetirementTime), no new ones start. With ``check_expr``, the startd refuses
        unless it holds for every slot."""
        ad = self._h.Collector(pool).locate(self._h.DaemonType.Startd, machine)
        return self._h.Startd(ad).drainJobs(self._h.DrainType.Graceful, check_expr=check_expr, reason=reason)
