"""A real sshd on 127.0.0.1 and a real one-node Slurm, started once per session.

Install them with tests/remote/setup-services.sh. When they are missing the tests
skip, except under CI (the CI env var set), where a missing service is a failure.
The remote account is a local user, ``provtest``; Slurm's config reaches its
SSH sessions through sshd's ``SetEnv``, so nothing is written under /etc.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from provisioner.remote import ssh
from provisioner.remote.slurm import IN_WORKDIR

USER = "provtest"
LOCKED_PASSPHRASE = "correct horse 'battery' $staple"
SBIN = "/usr/sbin"


def require(missing, *programs):
    absent = [p for p in programs if not shutil.which(p, path=f"{SBIN}:/usr/bin:/bin")]
    if os.geteuid() != 0:
        absent.append("root (to add the test user and start the daemons)")
    if absent:
        missing(f"tests/remote needs {', '.join(absent)}: run tests/remote/setup-services.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what, deadline_s=30.0, log=None):
    """Poll a readiness check until it holds or the deadline passes."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    tail = open(log).read()[-2000:] if log and os.path.exists(log) else ""
    pytest.fail(f"{what} not ready after {deadline_s:g}s\n{tail}", pytrace=False)


def keygen(path, passphrase="", kind="ed25519"):
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", path], check=True)
    return path


class SSHD:
    """An sshd for USER with its own host key; start/stop by its process id."""

    def __init__(self, root, host_key, authorized_keys, slurm_conf):
        self.root, self.host_key = root, host_key
        self.port = free_port()
        self.conf = os.path.join(root, f"sshd-{self.port}.conf")
        self.log = os.path.join(root, f"sshd-{self.port}.log")
        with open(self.conf, "w") as fh:
            fh.write(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                     f"PidFile {root}/sshd-{self.port}.pid\nAuthorizedKeysFile {authorized_keys}\n"
                     "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                     f"StrictModes no\nAllowUsers {USER}\nSetEnv SLURM_CONF={slurm_conf}\n")
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
        subprocess.run([f"{SBIN}/sshd", "-t", "-f", self.conf], check=True)
        self.proc = None

    def known_hosts(self, path, key_pub=None):
        """A known_hosts file pinning this server to key_pub (default: its real key)."""
        with open(key_pub or self.host_key + ".pub") as fh:
            kind, blob = fh.read().split()[:2]
        with open(path, "w") as fh:
            fh.write(f"[127.0.0.1]:{self.port} {kind} {blob}\n")
        return path

    def _accepting(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def start(self):
        self.proc = subprocess.Popen([f"{SBIN}/sshd", "-D", "-f", self.conf, "-E", self.log])
        wait_for(self._accepting, f"sshd on port {self.port}", 10, self.log)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="session")
def remote_root(missing):
    """A world-readable scratch directory: the remote user must read the Slurm config."""
    require(missing, "sshd", "ssh-keygen")
    root = tempfile.mkdtemp(prefix="provisioner-remote-")
    os.chmod(root, 0o755)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True)
    subprocess.run(["usermod", "-p", "*", USER], check=True)  # unlocked, still no password login
    work = os.path.join(root, "work")
    os.mkdir(work)
    shutil.chown(work, USER, USER)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def keys(remote_root):
    client = keygen(os.path.join(remote_root, "client_key"))
    stranger = keygen(os.path.join(remote_root, "stranger_key"))
    # Passphrase-protected keys, both authorized; ssh-keygen encrypts them differently.
    locked = {kind: keygen(os.path.join(remote_root, f"locked_{kind}"), LOCKED_PASSPHRASE, kind)
              for kind in ("ed25519", "rsa")}
    auth = os.path.join(remote_root, "authorized_keys")
    with open(auth, "w") as out:
        for key in (client, *locked.values()):
            with open(key + ".pub") as pub:
                out.write(pub.read())
    os.chmod(client, 0o600)
    return {"client": client, "stranger": stranger, "authorized": auth, "locked": locked,
            "host": keygen(os.path.join(remote_root, "host_key")),
            "other_host": keygen(os.path.join(remote_root, "other_host_key"))}


@pytest.fixture(scope="session")
def sshd(remote_root, keys):
    server = SSHD(remote_root, keys["host"], keys["authorized"], os.path.join(remote_root, "slurm.conf")).start()
    server.known_hosts(os.path.join(remote_root, "known_hosts"))
    yield server
    server.stop()


@pytest.fixture
def new_sshd(remote_root, keys):
    """A private sshd a test may stop and restart."""
    server = SSHD(remote_root, keys["host"], keys["authorized"], os.path.join(remote_root, "slurm.conf"))
    server.known_hosts(os.path.join(remote_root, f"known_hosts-{server.port}"))
    yield server
    server.stop()


@pytest.fixture
def endpoint(sshd, keys, remote_root):
    return ssh.Endpoint("127.0.0.1", sshd.port, USER, keys["client"], os.path.join(remote_root, "known_hosts"), 10)


class Slurm:
    def __init__(self, root):
        self.root, self.conf = root, os.path.join(root, "slurm.conf")
        self.env = {**os.environ, "SLURM_CONF": self.conf}
        self.workdir = os.path.join(root, "work")
        self.procs = []

    def cmd(self, *argv) -> str:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30).stdout

    def tasks(self):
        """{task id: (state, comment)} of every job of the test user, seen locally."""
        out = self.cmd("squeue", "-h", "--array", f"--user={USER}", "--format=%i|%T|%k")
        return {i: (s, k) for i, s, k in (line.split("|", 2) for line in out.splitlines())}

    def wait_tasks(self, check, what, deadline_s=20.0):
        wait_for(lambda: check(self.tasks()), what, deadline_s)

    def clear(self):
        self.cmd("scancel", f"--user={USER}")
        self.wait_tasks(lambda t: not t, "cancelled jobs to leave the queue")


def _munge_works():
    encode = subprocess.run(["munge", "-n"], capture_output=True)
    return encode.returncode == 0 and subprocess.run(["unmunge"], input=encode.stdout,
                                                     capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster(remote_root, missing):
    require(missing, "slurmctld", "slurmd", "sbatch", "munged", "munge")
    cluster = Slurm(remote_root)
    munged = None
    if not _munge_works():
        subprocess.run(["install", "-d", "-o", "munge", "-g", "munge", "-m755", "/run/munge"], check=True)
        subprocess.run(["runuser", "-u", "munge", "--", f"{SBIN}/munged"], check=True)
        wait_for(_munge_works, "munged", 10)
        with open("/run/munge/munged.pid") as fh:
            munged = int(fh.read())
    node = socket.gethostname().split(".")[0]  # Slurm requires NodeName == `hostname -s`
    state = os.path.join(remote_root, "state")
    os.mkdir(state)
    with open(cluster.conf, "w") as fh:
        fh.write(f"ClusterName=provtest\nSlurmctldHost={node}(127.0.0.1)\nSlurmUser=root\n"
                 f"SlurmctldPort={free_port()}\nSlurmdPort={free_port()}\n"
                 "AuthType=auth/munge\nCredType=cred/munge\nProctrackType=proctrack/linuxproc\n"
                 "TaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n"
                 "AccountingStorageType=accounting_storage/none\nSelectType=select/cons_tres\n"
                 "SelectTypeParameters=CR_Core\nMpiDefault=none\nReturnToService=2\n"
                 "MaxArraySize=6\n"  # small, so that a test reaches it
                 f"StateSaveLocation={state}\nSlurmdSpoolDir={state}/slurmd\n"
                 f"SlurmctldPidFile={state}/slurmctld.pid\nSlurmdPidFile={state}/slurmd.pid\n"
                 f"SlurmctldLogFile={state}/slurmctld.log\nSlurmdLogFile={state}/slurmd.log\n"
                 f"NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN\n"
                 f"PartitionName=pilots Nodes={node} Default=YES MaxTime=INFINITE State=UP\n")
    os.chmod(cluster.conf, 0o644)
    for daemon in ("slurmctld", "slurmd"):
        cluster.procs.append(subprocess.Popen([f"{SBIN}/{daemon}", "-D", "-f", cluster.conf], env=cluster.env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        wait_for(lambda: cluster.cmd("sinfo", "-h", "-o", "%t").strip() == "idle", "slurm node", 60,
                 os.path.join(state, "slurmctld.log"))
        yield cluster
        cluster.clear()
    finally:
        for proc in reversed(cluster.procs):
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        if munged is not None:
            os.kill(munged, signal.SIGTERM)


@pytest.fixture
def slurm(slurm_cluster, sshd):
    """The cluster, emptied of the test user's jobs after each test."""
    yield slurm_cluster
    slurm_cluster.clear()


@pytest.fixture
def calls(monkeypatch):
    """Every remote command run over SSH, as argv lists, in order; sbatch without the
    shell that runs it in the workdir and the ``timeout`` that bounds it."""
    seen = []
    run = ssh.Connection.run

    def spy(self, argv, *args, **kwargs):
        words = list(argv[5:] if list(argv[:3]) == ["sh", "-c", IN_WORKDIR] else argv)
        seen.append(words[4:] if words[:3] == ["timeout", "-k", "1"] else words)
        return run(self, argv, *args, **kwargs)

    monkeypatch.setattr(ssh.Connection, "run", spy)
    return seen
