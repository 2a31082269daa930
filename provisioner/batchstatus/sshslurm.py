"""This factory's Slurm pilots per queue, from ONE squeue over SSH per remote account.

Connection options left unset here are taken from ``batchsubmit.sshslurm.*``, so a
queue names its cluster once.
"""
from collections import Counter, defaultdict, deque

from provisioner.batchstatus.base import BatchStatus
from provisioner.batchsubmit.sshslurm import ENDPOINT_OPTIONS, endpoint
from provisioner.errors import ProvisionerError, SourceError
from provisioner.options import Option
from provisioner.remote import slurm, ssh
from provisioner.source import Source
from provisioner.status import Pilots

_RECENT = 1000  # ended pilots remembered per queue, for Throttle


class SlurmTasks(Source):
    def __init__(self, key, conn, user, factory_id):
        super().__init__(key)
        self.conn, self.user, self.factory_id = conn, user, factory_id
        self.started = {}  # task id -> first time seen running
        self.counted = set()  # ended tasks already in ``ended``
        self.ended = defaultdict(lambda: deque(maxlen=_RECENT))

    def read(self, now):
        try:
            by_queue = slurm.tasks(self.conn, self.user, self.factory_id)
        except ProvisionerError as exc:
            raise SourceError(str(exc)) from None
        listed = {t.id: t for ts in by_queue.values() for t in ts}
        running = {tid: t for tid, t in listed.items() if t.state in slurm.RUNNING}
        # Slurm lists ended tasks a while, with the time they ran: each is recorded once.
        ended = {tid for tid, t in listed.items() if t.state in slurm.ENDED and t.started}
        for tid in ended - self.counted:
            self.ended[listed[tid].queue].append((now, listed[tid].used))
        self.counted = ended
        # One seen running and gone unlisted (after MinJobAge) ran until about now.
        for tid in list(self.started):
            if tid not in running:
                start, queue = self.started.pop(tid)
                if tid not in listed:
                    self.ended[queue].append((now, now - start))
        for tid, task in running.items():
            self.started.setdefault(tid, (now, task.queue))
        return by_queue


class SSHSlurmBatchStatus(BatchStatus):
    name = "sshslurm"
    options = {name: Option(o.type, None, minimum=o.minimum, check=o.check, help=o.help)
               for name, o in ENDPOINT_OPTIONS.items()}

    def __init__(self, queue, opts, services):
        super().__init__(queue, opts, services)
        resolved = {}
        for name, option in ENDPOINT_OPTIONS.items():
            value = opts[name]
            if value is None:
                value = queue.option(f"batchsubmit.sshslurm.{name}", option.default)
            if value is None and option.required:
                raise ProvisionerError(f"{self.namespace()}{name}: a value is "
                                       f"required (or set batchsubmit.sshslurm.{name})")
            resolved[name] = value
        self.endpoint = endpoint(resolved)
        # Files set here only: the target checks its own.
        if any(opts[name] is not None for name in ("key", "passphrase_file", "known_hosts")):
            ssh.check_files(self.endpoint, self.namespace())
        opts.update(resolved)  # check-config shows what applies, not None for what the target gives

    def source_key(self):
        return ("sshslurm", self.endpoint.host, self.endpoint.port, self.endpoint.user)

    def open_source(self):
        conn = ssh.connections(self.services).get(self.endpoint)
        return SlurmTasks(self.source_key(), conn, self.endpoint.user, self.services.factory_id)

    def pilots(self, snapshot):
        tasks = [t for t in snapshot.get(self.queue.name, []) if t.state not in slurm.ENDED]
        pending = sum(t.state in slurm.PENDING for t in tasks)
        running = sum(t.state in slurm.RUNNING for t in tasks)
        return Pilots(pending=pending, running=running, held=len(tasks) - pending - running, records=tasks,
                      recent=list(self.source.ended[self.queue.name]), states=dict(Counter(t.state for t in tasks)))

    def others(self, snapshot, names):
        return sum(t.state in slurm.PENDING or t.state in slurm.RUNNING
                   for queue, tasks in snapshot.items() if queue not in names for t in tasks)


PLUGIN = SSHSlurmBatchStatus
