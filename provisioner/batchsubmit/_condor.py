"""What the HTCondor targets share: rendering, one-transaction submit, retire idle."""
import datetime
import logging
import os
import shlex
import time

import classad2

from provisioner import render
from provisioner.batchsubmit.base import Target
from provisioner.condor import attributes
from provisioner.errors import ProvisionerError, TargetError, TemplateValueError
from provisioner.options import Option

log = logging.getLogger("provisioner")

# What sets a pilot's PeriodicRemove (the '+' form wins over the command whatever the order):
# a configured one would replace the removal of held pilots, which, counted as pending, would
# then stop the queue for good. Both are kept: either removes the pilot.
_PERIODIC_REMOVE = {"periodic_remove", "+periodicremove", "my.periodicremove"}
# What the status reads pilots back by: a configured one would hide them from their factory
# (a new batch every cycle) or hand them to another.
_IDENTITY = {p + a.lower() for p in ("+", "my.") for a in (attributes.FACTORY, attributes.QUEUE, attributes.LAUNCH)}


def _absolute(path):
    # In APF this named a proxy.conf profile; as a file name it would be sought in condor_submit's cwd.
    return None if os.path.isabs(path) else ("the x509 proxy file's absolute path is needed: APF's proxy.conf "
                                             "profiles are not read (give the profile's proxyfile)")


COMMON_OPTIONS = {
    "proxy": Option("str", None, help="x509 proxy file (absolute path)", check=_absolute),
    "condor_attributes": Option("list", [], help="extra submit commands, comma list of key=value"),
    "environ": Option("str", "", help="extra environment: NAME=value words, NAME='a b' for spaces"),
    "scheddhost": Option("str", None, help="schedd to submit to (default: batchstatus.condor's)"),
    "collectorhost": Option("str", None),
    "remove_held_after": Option("int", 3600, minimum=0, help="seconds a held pilot stays before the schedd "
                                                            "removes it (0: kept)"),
}


class ProxyError(TargetError):
    """The x509 proxy cannot carry pilots: ``pause`` holds the queue's submissions until its next cycle."""

    def __init__(self, message, pause):
        super().__init__(message)
        self.pause = pause


class CondorTarget(Target):
    template = ""
    can_retire = True
    option_prefixes = ("condor_attributes.",)
    # APF's arguments to condor_submit, which is not run: validate() refuses one that is set
    ignored_options = ("submitargs",)

    def submit_values(self) -> dict:
        """Values particular to one target's template."""
        return {}

    def _attributes(self):
        pairs = []
        for item in self.opts["condor_attributes"]:
            key, sep, value = item.partition("=")
            if not sep:
                raise TemplateValueError(f"condor_attributes item {item!r} is not key=value")
            pairs.append((key.strip(), value.strip()))
        pairs += [(k[len("condor_attributes."):], v) for k, v in self.opts.items()
                  if k.startswith("condor_attributes.")]
        for key, _ in pairs:
            if key.lower() in _IDENTITY:
                raise TemplateValueError(f"condor_attributes: {key} is set by the factory (it identifies its pilots)")
        return pairs

    def _schedd(self):
        name = self.opts["scheddhost"] or self.queue.option("batchstatus.condor.scheddhost")
        pool = self.opts["collectorhost"] or self.queue.option("batchstatus.condor.collectorhost")
        return self.services.condor.schedd(name, pool)

    def logdir(self, now: float) -> str:
        return os.path.join(self.services.log_dir, _day(now), self.queue.name)

    def description(self, now: float, launch_id: str) -> str:
        q = self.queue
        try:
            arguments = shlex.split(q.arguments) if q.arguments else []
        except ValueError as exc:
            raise ProvisionerError(f"executable.arguments: {exc}") from None
        logurl = None
        if self.services.log_url:
            logurl = f"{self.services.log_url.rstrip('/')}/{_day(now)}/{q.name}"  # the URL of logdir(now)
        # AutoPyFactory's names too: pilots (PanDA's among them) report GTAG as their log's URL
        # and PANDA_JSID as their scheduler id ("unknown" without it).
        env = {"PROVISIONER_FACTORY": self.services.factory_id, "PROVISIONER_QUEUE": q.name,
               "APFFID": self.services.factory_id, "PANDA_JSID": self.services.factory_id,
               "APFCID": render.PerPilot(""), "FACTORYQUEUE": q.name}
        if logurl:
            env["GTAG"] = render.PerPilot(f"{logurl}/", ".out")
        env.update(_environ(self.opts["environ"]))
        if self.services.monitor_url:
            env["APFMON"] = self.services.monitor_url
        attrs = self._attributes()
        removes = [v for k, v in attrs if k.lower() in _PERIODIC_REMOVE and v]
        if self.opts["remove_held_after"]:
            removes.append(f"JobStatus == 5 && (time() - EnteredCurrentStatus) > {self.opts['remove_held_after']}")
        periodic_remove = " || ".join(f"({e})" for e in removes) if len(removes) > 1 else "".join(removes)
        values = dict(executable=q.executable or "/bin/true", arguments=arguments, logdir=self.logdir(now),
                      factory_id=self.services.factory_id, queue=q.name,
                      launch_id=launch_id, logurl=logurl, environment=env, proxy=self.opts["proxy"],
                      factory_jobid=render.PerPilot(f"{self.services.factory_id}#"),
                      keep_done=max(600, 3 * q.interval), periodic_remove=periodic_remove,
                      outurl=logurl and render.PerPilot(f"{logurl}/", ".out"),
                      errurl=logurl and render.PerPilot(f"{logurl}/", ".err"),
                      attributes=[(k, v) for k, v in attrs if k.lower() not in _PERIODIC_REMOVE])
        values.update(self.submit_values())
        return render.render(self.template, **values)

    def validate(self):
        try:
            self.description(0.0, "validate")
        except TemplateValueError as exc:
            raise ProvisionerError(f"{self.namespace().rstrip('.')}: {exc}") from None
        for name in sorted({self.name, self.queue.batchsubmit.written}):
            key = f"{self.family}.{name}.submitargs"
            if self.queue.raw.get(key, "").strip() not in ("", "None", "none"):
                # dropped, a -name schedd would leave the pilots in the local one
                raise ProvisionerError(f"{key}: condor_submit is not run: its -name schedd is "
                                       f"batchstatus.condor.scheddhost, -pool batchstatus.condor.collectorhost, "
                                       f"-append's commands go in {self.family}.{name}.condor_attributes "
                                       f"(nothing is spooled, as -remote and -spool did)")
        if any(spec.family == "batchstatus" and spec.name == "condor" for spec in self.queue.plugins):
            for option in ("scheddhost", "collectorhost"):
                read = self.queue.option(f"batchstatus.condor.{option}")
                if self.opts[option] is not None and self.opts[option] != read:
                    # Pilots the status never reads would count as none: a new batch every cycle.
                    raise ProvisionerError(f"{self.namespace()}{option}: {self.opts[option]} is not where "
                                           f"batchstatus.condor.{option} reads the pilots ({read or 'local'}); "
                                           f"set batchstatus.condor.{option}, which the target follows")

    def prepare(self, now: float, launch_id: str) -> None:
        """Files the submit needs in place (the log directory)."""
        os.makedirs(self.logdir(now), exist_ok=True)

    def submit(self, n, ctx, launch_id):
        import htcondor2

        if self.opts["proxy"]:
            self._check_proxy(ctx.now)
        try:
            text = self.description(ctx.now, launch_id)
            self.prepare(ctx.now, launch_id)
        except (ProvisionerError, OSError) as exc:
            raise TargetError(f"submit not attempted: {_one_line(exc)}") from None
        limit = self.services.condor.max_jobs_per_submission()
        if n > limit:
            log.warning("queue=%s submits %d of %d pilots: MAX_JOBS_PER_SUBMISSION is %d", self.queue.name, limit,
                        n, limit)
            n = limit
        try:
            result = self._schedd().submit(htcondor2.Submit(text), count=n)
        except Exception as exc:  # HTCondorException, or a refused description
            raise TargetError(f"submit to schedd failed: {_one_line(exc)}") from None
        first = result.first_proc()
        return [f"{result.cluster()}.{first + i}" for i in range(result.num_procs())]

    def _check_proxy(self, now: float) -> None:
        """Refuse a proxy that is gone, or will be before the queue looks again: the CE holds the
        pilots it carries, each lost for ``remove_held_after``, until it is renewed."""
        from cryptography import x509

        path = self.opts["proxy"]
        try:
            with open(path, "rb") as fh:
                certs = x509.load_pem_x509_certificates(fh.read())
            end = min(c.not_valid_after_utc for c in certs).timestamp()  # the chain's, as HTCondor reads it
        except OSError as exc:
            why = f"cannot be read ({exc.strerror})"
        except ValueError:
            why = "holds no readable PEM certificate"
        else:
            if end > now + self.queue.interval:
                return
            when = datetime.datetime.fromtimestamp(end, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            why = f"expired at {when}" if end <= now else f"expires at {when}, before this queue's next cycle"
        raise ProxyError(f"x509 proxy {path} {why}: submissions held until it is renewed", self.queue.interval)

    def retire(self, n, ctx):
        """Remove the newest idle pilots first: they have done the least work and wait the longest."""
        idle = [ad for ad in ctx.pilots.records if ad.get("JobStatus") == 1]
        idle.sort(key=lambda ad: (ad.get("QDate") or 0, ad["ClusterId"], ad["ProcId"]), reverse=True)
        chosen = idle[:n]
        if not chosen:
            return []
        import htcondor2

        # By constraint, not by ids: a pilot that started since the status read must stay.
        which = " || ".join(f"(ClusterId == {ad['ClusterId']} && ProcId == {ad['ProcId']})" for ad in chosen)
        ids = [_job_id(ad) for ad in chosen]
        # The schedd tests every job: this queue's attribute first spares it the ids for the others.
        mine = (f"{attributes.QUEUE} =?= {classad2.quote(self.queue.name)} && "
                f"{attributes.created_by(self.services.factory_id)}")
        try:
            schedd = self._schedd()
            result = schedd.act(htcondor2.JobAction.Remove, f"{mine} && JobStatus == 1 && ({which})",
                                reason="retired by provisioner")
            if result.get("TotalSuccess", len(ids)) < len(ids):  # some were spared: say which (rare)
                spared = schedd.query(f"JobStatus != 1 && JobStatus != 3 && ({which})", ["ClusterId", "ProcId"])
                ids = [i for i in ids if i not in {_job_id(ad) for ad in spared}]
        except Exception as exc:
            raise TargetError(f"remove failed: {_one_line(exc)}") from None
        return ids


def _environ(text: str) -> dict:
    """APF's environ, which it spliced into the environment's new syntax: space-separated
    NAME=value words, where 'a value' may hold spaces and '' in it is a quote."""
    words, word, quoted, i = [], None, False, 0
    while i < len(text):
        c = text[i]
        if quoted and c == "'" and text[i + 1:i + 2] == "'":
            word += "'"
            i += 1
        elif c == "'":
            quoted, word = not quoted, word or ""
        elif c.isspace() and not quoted:
            if word is not None:
                words.append(word)
            word = None
        else:
            word = (word or "") + c
        i += 1
    if quoted:
        raise TemplateValueError("environ: a single quote is not closed")
    env = {}
    for word in words + ([word] if word is not None else []):
        key, sep, value = word.partition("=")
        if not sep:
            raise TemplateValueError(f"environ: {word!r} is not NAME=value")
        env[key] = value
    return env


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


def _job_id(ad) -> str:
    return f"{ad['ClusterId']}.{ad['ProcId']}"


def _one_line(exc) -> str:
    return " ".join(str(exc).split())
