"""Slurm commands run over SSH: one sbatch per submission, one squeue per host per
cycle, one remote command (hold, scancel, release) per retirement.

Each pilot is a task of an array job whose ``--comment`` carries its identity,
``provisioner:<factory>:<queue>:<launch id>``; squeue reads that field back.
Queue names cannot hold ``:`` (see config), so the split below is exact.
"""
import re
import shlex
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from provisioner.errors import ProvisionerError

_TAG = "provisioner"
_SEP = "|"
# job, task, state, batch host, time used; the comment last, so that a separator inside it
# cannot shift the other fields. The batch host, not the start time, tells a task that ran:
# Slurm gives a task cancelled while pending a start time too, the time of the cancel.
_FORMAT = _SEP.join(["%F", "%K", "%T", "%B", "%M", "%k"])

PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
# Slurm lists ended jobs for MinJobAge (300 s by default) with ``--states=all``: so one squeue
# sees even a pilot that lived seconds between two reads, and how long it ran (Throttle).
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
         "BOOT_FAIL", "DEADLINE"}


class SlurmError(ProvisionerError):
    """A Slurm command failed; the message is its first line of error output."""


@dataclass(frozen=True)
class Task:
    job: int  # the array job id
    index: Optional[int]  # the array task id (None for a job that is not an array)
    state: str
    queue: str
    launch: str
    started: bool = False  # it has run (a task cancelled while pending has not)
    used: float = 0.0  # seconds it has run

    @property
    def id(self) -> str:
        return str(self.job) if self.index is None else f"{self.job}_{self.index}"


def identity(factory_id: str, queue: str, launch_id: str) -> str:
    return f"{_TAG}:{factory_id}:{queue}:{launch_id}"


def pilot_script(executable: str, arguments: Sequence[str], environment: Mapping[str, str]) -> str:
    """The batch script sent on sbatch's stdin: it sets the pilot's environment and runs
    the queue's executable (a path on the remote host) with its arguments, quoted."""
    lines = ["#!/bin/sh"]
    for key, value in environment.items():
        lines.append(f"{key}={shlex.quote(value)}; export {key}")
    # AutoPyFactory's pilot id: the task id, under which the factory registers it with apfmon
    lines.append('APFCID="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; export APFCID')
    lines.append("exec " + " ".join(shlex.quote(w) for w in [executable, *arguments]))
    return "\n".join(lines) + "\n"


def _first(err: str, default: str) -> str:
    return next((line.strip() for line in err.splitlines() if line.strip()), default)


def _check(conn, name: str, result) -> str:
    rc, out, err = result
    if rc != 0:
        raise SlurmError(f"{conn.endpoint}: {name} failed: {_first(err, f'exit status {rc}')}")
    return out


# sbatch accepts any --chdir: in a missing or read-only directory every pilot then fails at
# launch while the submission succeeds. sbatch runs in the directory instead (the job's default
# working directory), after the checks, in the same remote command.
IN_WORKDIR = ('cd -- "$1" 2>/dev/null || { echo "workdir $1: no such directory" >&2; exit 1; }; '
              'test -w . || { echo "workdir $1: not writable by $(id -un)" >&2; exit 1; }; shift; exec "$@"')


def submit(conn, n: int, script: str, comment: str, job_name: str, partition: Optional[str] = None,
           workdir: Optional[str] = None, extra: Sequence[str] = ()) -> List[str]:
    """Submit n pilots as ONE array job; returns the task ids (``<job>_<index>``)."""
    argv = ["sbatch", "--parsable", f"--array=0-{n - 1}", f"--job-name={job_name}", f"--comment={comment}",
            "--output=%x-%A_%a.out"]
    if partition:
        argv.append(f"--partition={partition}")
    argv += list(extra)
    # Bounded on the login node too: an sbatch the factory gave up on goes on when the SSH
    # session closes, and while the controller's queue is full it retries for two minutes,
    # queuing its pilots after the next cycle submitted again for the same work. A second
    # short of the factory's own wait, so that it hears why.
    bound = f"{max(conn.endpoint.timeout - 1, 1):g}"
    argv = ["timeout", "-k", "1", bound, *argv]
    if workdir:
        argv = ["sh", "-c", IN_WORKDIR, "sh", workdir, *argv]
    rc, out, err = conn.run(argv, stdin=script, name="sbatch")
    if rc in (124, 137):  # timeout's statuses: sbatch ended by the bound
        said = _first(err, "")  # "Slurm temporarily unable to accept job, sleeping and retrying"
        raise SlurmError(f"{conn.endpoint}: sbatch timed out after {bound}s" + (f" ({said})" if said else ""))
    out = _check(conn, "sbatch", (rc, out, err))
    # The last line: a login shell's rc file may print a greeting before it.
    job = (out.strip().splitlines() or [""])[-1].split(";")[0]
    if not job.isdigit():
        raise SlurmError(f"{conn.endpoint}: sbatch answered {out.strip()[:80]!r}, not a job id")
    return [f"{job}_{i}" for i in range(n)]


# sbatch's refusal of an array larger than the cluster's MaxArraySize (1001 unless set)
ARRAY_TOO_LARGE = "Invalid job array specification"


def max_array_size(conn) -> int:
    """The cluster's MaxArraySize: an array's task indices run below it."""
    out = _check(conn, "scontrol", conn.run(["scontrol", "show", "config"]))
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)\s*$", out, re.M)
    if found is None:
        raise SlurmError(f"{conn.endpoint}: scontrol show config names no MaxArraySize")
    return int(found.group(1))


def tasks(conn, user: str, factory_id: str) -> Dict[str, List[Task]]:
    """This factory's pilots on the host, per queue, from ONE squeue call."""
    argv = ["squeue", "--noheader", "--array", "--states=all", f"--user={user}", f"--format={_FORMAT}"]
    out = _check(conn, "squeue", conn.run(argv))
    mine = f"{_TAG}:{factory_id}:"
    by_queue = defaultdict(list)
    for line in out.splitlines():
        fields = line.split(_SEP, 5)
        if len(fields) != 6 or not fields[5].startswith(mine):
            continue
        job, index, state, host, used, comment = fields
        if not job.isdigit():
            raise SlurmError(f"{conn.endpoint}: squeue answered an unreadable line {line[:80]!r}")
        queue, _, launch = comment[len(mine):].partition(":")
        by_queue[queue].append(Task(int(job), int(index) if index.isdigit() else None, state, queue, launch,
                                    host not in ("n/a", "", "(null)") and state not in PENDING, _duration(used)))
    return dict(by_queue)


def _duration(text: str) -> float:
    """Seconds from squeue's time used, [[days-]hours:]minutes:seconds (0 if it says none)."""
    days, _, clock = text.strip().rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
        return float(sum(p * 60 ** i for i, p in enumerate(reversed(parts))) + int(days or 0) * 86400)
    except ValueError:
        return 0.0


# ``scancel --state=PENDING <job>_<task>`` cancels ALL pending tasks that Slurm still keeps
# in one record with that task. ``scontrol hold`` splits each named task out and keeps it
# from starting, so the tasks still pending after it are exactly those the cancel ends:
# squeue names them. The release, on any exit (the SSH channel closing too), undoes the
# hold on a task that had started already or was left pending.
_CANCEL_PENDING = ("trap 'scontrol release \"$@\" 2>/dev/null' EXIT; trap 'exit 129' HUP TERM; "
                   'scontrol hold "$@" && squeue -h --array --states=PENDING --format=%i --jobs="$(IFS=,; echo "$*")" '
                   '&& scancel --state=PENDING "$@"')


def cancel_pending(conn, ids: Sequence[str]) -> List[str]:
    """Cancel exactly these tasks if still pending, in ONE remote command, and return those
    it cancelled; Slurm itself spares any that started since the status was read."""
    out = _check(conn, "scancel", conn.run(["sh", "-c", _CANCEL_PENDING, "sh", *ids], name="scancel"))
    cancelled = set(out.split())
    return [i for i in ids if i in cancelled]
