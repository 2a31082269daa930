"""Pilots as Slurm array tasks on a remote cluster reached by SSH (BOSCO's use case)."""
import logging
import re
import shlex

from provisioner.batchsubmit.base import Target
from provisioner.errors import ProvisionerError, TargetError
from provisioner.options import Option, check_port
from provisioner.remote import slurm, ssh

log = logging.getLogger("provisioner")

# Options the factory sets itself: overriding them would lose the pilots' identity.
_RESERVED = {"--array", "--comment", "--job-name", "--output", "--parsable", "--chdir", "-a", "-J", "-o", "-D"}

ENDPOINT_OPTIONS = {
    "host": Option("str", required=True, help="the cluster's login host"),
    "port": Option("int", 22, check=check_port),
    "user": Option("str", required=True, help="the remote account that owns the pilots"),
    "key": Option("secret", required=True, help="private key file for that account"),
    "passphrase_file": Option("secret", None, help="file whose first line is the key's passphrase"),
    "known_hosts": Option("str", required=True, help="known_hosts file pinning the host key"),
    "timeout": Option("int", 30, minimum=1, help="connect and per-command timeout (s)"),
    "keepalive": Option("int", 60, minimum=0, help="seconds between keepalives on the kept connection (0: none)"),
}


def endpoint(opts) -> ssh.Endpoint:
    passphrase_file = opts["passphrase_file"].strip() if opts["passphrase_file"] else None
    return ssh.Endpoint(opts["host"], opts["port"], opts["user"], opts["key"].strip(), opts["known_hosts"],
                        opts["timeout"], passphrase_file, opts["keepalive"])


class SSHSlurm(Target):
    name = "sshslurm"
    can_retire = True
    batchstatus = "SSHSlurm"
    options = {
        **ENDPOINT_OPTIONS,
        "partition": Option("str", None),
        "sbatch_args": Option("list", [], help="extra sbatch options, comma list, one option per item"),
        "workdir": Option("str", None, help="remote directory for pilot output (default: the home)"),
    }

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        self._array_limit = None  # the cluster's MaxArraySize, once an array has reached it

    def _where(self, option: str) -> str:
        return f"{self.namespace()}{option}"

    def arguments(self) -> list:
        try:
            return shlex.split(self.queue.arguments) if self.queue.arguments else []
        except ValueError as exc:
            raise ProvisionerError(f"executable.arguments: {exc}") from None

    def validate(self):
        self.arguments()
        ssh.check_files(endpoint(self.opts), self.namespace())
        if not self.queue.executable:
            raise ProvisionerError("executable: required by batchsubmitplugin SSHSlurm (a path on the remote host)")
        for item in self.opts["sbatch_args"]:
            # A word not starting with '-' would be taken by sbatch as the script to run.
            if not item.startswith("-"):
                raise ProvisionerError(f"{self._where('sbatch_args')}: {item!r} is not an option")
            flag = item.split("=", 1)[0]
            # Each item reaches sbatch as one word: '--time 10' is an unknown option named
            # 'time 10', '-p x' the partition ' x'; every submission would fail.
            if re.search(r"\s", flag if flag.startswith("--") else item[:3]):
                raise ProvisionerError(f"{self._where('sbatch_args')}: {item!r} is one word to sbatch: write "
                                       f"--name=value or -xVALUE")
            # sbatch takes any unambiguous prefix of a long option (--comm is --comment).
            abbreviated = len(flag) > 2 and flag.startswith("--") and any(r.startswith(flag) for r in _RESERVED)
            if abbreviated or (not flag.startswith("--") and flag[:2] in _RESERVED):
                raise ProvisionerError(f"{self._where('sbatch_args')}: {item!r} is set by the factory")

    def submit(self, n, ctx, launch_id):
        q = self.queue
        # AutoPyFactory's names too, as HTCondor pilots carry them (APFCID: the pilot script)
        env = {"PROVISIONER_FACTORY": self.services.factory_id, "PROVISIONER_QUEUE": q.name,
               "PROVISIONER_LAUNCH": launch_id, "APFFID": self.services.factory_id,
               "PANDA_JSID": self.services.factory_id, "FACTORYQUEUE": q.name}
        if self.services.monitor_url:
            env["APFMON"] = self.services.monitor_url
        script = slurm.pilot_script(q.executable, self.arguments(), env)
        conn = ssh.connections(self.services).get(endpoint(self.opts))

        def send(count):
            return slurm.submit(conn, count, script, slurm.identity(self.services.factory_id, q.name, launch_id),
                                job_name=q.name, partition=self.opts["partition"], workdir=self.opts["workdir"],
                                extra=self.opts["sbatch_args"])

        try:
            if self._array_limit is None:
                try:
                    return send(n)
                except slurm.SlurmError as exc:
                    if slurm.ARRAY_TOO_LARGE not in str(exc):
                        raise
                    self._array_limit = slurm.max_array_size(conn)  # asked once, when first reached
                    if n <= self._array_limit:
                        raise
            if n > self._array_limit:
                log.warning("queue=%s submits %d of %d pilots: the cluster's MaxArraySize is %d", q.name,
                            self._array_limit, n, self._array_limit)
            return send(min(n, self._array_limit))
        except ProvisionerError as exc:
            raise TargetError(str(exc)) from None

    def retire(self, n, ctx):
        """Cancel the newest pending tasks: they have waited least; running ones are never touched."""
        pending = [t for t in ctx.pilots.records if t.state in slurm.PENDING]
        pending.sort(key=lambda t: (t.job, t.index or 0), reverse=True)
        ids = [t.id for t in pending[:n]]
        if not ids:
            return []
        conn = ssh.connections(self.services).get(endpoint(self.opts))
        try:
            return slurm.cancel_pending(conn, ids)
        except ProvisionerError as exc:
            raise TargetError(str(exc)) from None


PLUGIN = SSHSlurm
