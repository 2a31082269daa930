"""Idle and running jobs per queue from ONE schedd query shared by all queues."""
import classad2

from provisioner.condor import attributes
from provisioner.errors import SourceError
from provisioner.options import Option
from provisioner.source import Source
from provisioner.status import Work
from provisioner.wmsstatus.base import WMSStatus

# MemoryUsage, ImageSize and DiskUsage: what HTCondor's default RequestMemory and RequestDisk
# expressions read (no request_memory/request_disk given); without them those are undefined.
_BASE = ["ClusterId", "ProcId", "JobStatus", "QDate", "RequestCpus", "RequestMemory", "RequestGpus",
         "RequestDisk", "Requirements", "MemoryUsage", "ImageSize", "DiskUsage"]
# The factory's own pilots are jobs too; counting them as work would feed back.
_CONSTRAINT = f"(JobStatus == 1 || JobStatus == 2) && {attributes.FACTORY} =?= undefined"


class Snapshot:
    """The ads of one query, with per-attribute groupings and per-constraint results
    computed once and shared, so 1,000 queues cost about one pass over the ads."""

    def __init__(self, ads):
        self.ads = ads
        self._groups = {}
        self._matches = {}

    def group(self, attr):
        if attr not in self._groups:
            groups = {}
            for ad in self.ads:
                groups.setdefault(ad.get(attr), []).append(ad)
            self._groups[attr] = groups
        return self._groups[attr]

    def select(self, attr, value, constraint):
        key = (attr, value, constraint)
        if key not in self._matches:
            ads = self.group(attr).get(value, []) if attr else self.ads
            if constraint.strip().lower() != "true":
                expr = classad2.ExprTree(constraint)
                ads = [ad for ad in ads if expr.eval(ad) is True]
            idle = [ad for ad in ads if ad.get("JobStatus") == 1]
            self._matches[key] = Work(idle=len(idle), running=len(ads) - len(idle), jobs=idle, ads=ads)
        return self._matches[key]


class CondorJobs(Source):
    def __init__(self, key, condor):
        super().__init__(key)
        self.condor = condor

    def read(self, now):
        attrs = set(_BASE)
        for plugin in self.consumers:
            attrs |= attributes.referenced(plugin.opts["constraint"])
            if plugin.opts["queueattribute"]:
                attrs.add(plugin.opts["queueattribute"])
        _, schedd, pool = self.key
        try:
            ads = self.condor.schedd(schedd, pool).query(_CONSTRAINT, sorted(attrs))
        except Exception as exc:  # htcondor2 raises HTCondorException and OSError subclasses
            raise SourceError(f"schedd {schedd or 'local'}: {exc}") from None
        return Snapshot(ads)


class CondorWMSStatus(WMSStatus):
    """Jobs waiting in an HTCondor schedd. A queue's jobs are those whose
    ``queueattribute`` equals its ``wmsqueue`` (when set) and that match ``constraint``."""
    name = "condor"
    options = {
        "scheddhost": Option("str", None, help="schedd name (default: the local schedd)"),
        "collectorhost": Option("str", None, help="collector used to locate scheddhost"),
        "constraint": Option("expr", "true", help="ClassAd constraint selecting this queue's jobs"),
        "queueattribute": Option("str", None, help="job attribute naming the WMS queue"),
    }

    def source_key(self):
        return ("condor", self.opts["scheddhost"], self.opts["collectorhost"])

    def open_source(self):
        return CondorJobs(self.source_key(), self.services.condor)

    def work(self, snapshot):
        attr = self.opts["queueattribute"]
        return snapshot.select(attr, self.queue.wmsqueue if attr else None, self.opts["constraint"])

    def selects(self):
        attr, constraint = self.opts["queueattribute"], " ".join(self.opts["constraint"].split())
        return attr, self.queue.wmsqueue if attr else None, "true" if constraint.lower() == "true" else constraint


PLUGIN = CondorWMSStatus
