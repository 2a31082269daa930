"""What the HTCondor targets share: rendering, one-transaction submit, retire idle."""
import os
import shlex
import time

from provisioner import render
from provisioner.batchsubmit.base import Target
from provisioner.errors import ProvisionerError, TargetError, TemplateValueError
from provisioner.options import Option

COMMON_OPTIONS = {
    "proxy": Option("str", None, help="x509 proxy file"),
    "condor_attributes": Option("list", [], help="extra submit commands, comma list of key=value"),
    "environ": Option("str", "", help="extra environment, space separated K=V"),
    "scheddhost": Option("str", None, help="schedd to submit to (default: batchstatus.condor's)"),
    "collectorhost": Option("str", None),
}


class CondorTarget(Target):
    template = ""
    can_retire = True
    option_prefixes = ("condor_attributes.",)

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
        return pairs

    def _schedd(self):
        name = self.opts["scheddhost"] or self.queue.option("batchstatus.condor.scheddhost")
        pool = self.opts["collectorhost"] or self.queue.option("batchstatus.condor.collectorhost")
        return self.services.condor.schedd(name, pool)

    def logdir(self, now: float) -> str:
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        return os.path.join(self.services.log_dir, day, self.queue.name)

    def description(self, now: float, launch_id: str) -> str:
        q = self.queue
        try:
            arguments = shlex.split(q.arguments) if q.arguments else []
        except ValueError as exc:
            raise ProvisionerError(f"executable.arguments: {exc}") from None
        env = {"PROVISIONER_FACTORY": self.services.factory_id, "PROVISIONER_QUEUE": q.name}
        for pair in self.opts["environ"].split():
            key, _, value = pair.partition("=")
            env[key] = value
        if self.services.monitor_url:
            env["APFMON"] = self.services.monitor_url
        logurl = None
        if self.services.log_url:
            logurl = f"{self.services.log_url.rstrip('/')}/{time.strftime('%Y-%m-%d', time.gmtime(now))}/{q.name}"
        values = dict(executable=q.executable or "/bin/true", arguments=arguments, logdir=self.logdir(now),
                      factory_id=self.services.factory_id, queue=q.name, batchqueue=q.batchqueue,
                      launch_id=launch_id, logurl=logurl, environment=env, proxy=self.opts["proxy"],
                      attributes=self._attributes())
        values.update(self.submit_values())
        return render.render(self.template, **values)

    def validate(self):
        try:
            self.description(0.0, "validate")
        except TemplateValueError as exc:
            raise ProvisionerError(f"{self.namespace().rstrip('.')}: {exc}") from None

    def submit(self, n, ctx, launch_id):
        import htcondor2

        text = self.description(ctx.now, launch_id)
        os.makedirs(self.logdir(ctx.now), exist_ok=True)
        try:
            result = self._schedd().submit(htcondor2.Submit(text), count=n)
        except Exception as exc:  # HTCondorException, or a refused description
            raise TargetError(f"submit to schedd failed: {exc}") from None
        first = result.first_proc()
        return [f"{result.cluster()}.{first + i}" for i in range(result.num_procs())]

    def retire(self, n, ctx):
        """Remove the newest idle pilots first: they have done the least work and wait the longest."""
        idle = [ad for ad in ctx.pilots.records if ad.get("JobStatus") == 1]
        idle.sort(key=lambda ad: (ad.get("QDate") or 0, ad["ClusterId"], ad["ProcId"]), reverse=True)
        ids = [f"{ad['ClusterId']}.{ad['ProcId']}" for ad in idle[:n]]
        if not ids:
            return []
        import htcondor2

        try:
            self._schedd().act(htcondor2.JobAction.Remove, ids, reason="retired by provisioner")
        except Exception as exc:
            raise TargetError(f"remove failed: {exc}") from None
        return ids
