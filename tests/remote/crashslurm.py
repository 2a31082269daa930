"""`provisioner run` with the SSHSlurm target in a real process, killed on cue.

    python crashslurm.py JOBS.json run --conf factory.conf --once

JOBS.json lists the idle HTCondor jobs of the emulated pool: [{"count": N, "attrs": {...}}].
``PROVISIONER_CRASH_AT=point[@n]`` SIGKILLs the process at the n-th (default first) passage
through ``point``: intent.after (before sbatch), sbatch.after (sbatch returned, the ledger not
yet told), scancel.before, scancel.sent (the retire's remote command started, not answered).
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "cloud"))
from crashfactory import _crash_points, _wrap  # noqa: E402  (the cloud harness's cues)


def main(argv):
    from provisioner import cli
    from provisioner.clock import WallClock
    from provisioner.condor.emulator import Pool
    from provisioner.ledger import Ledger
    from provisioner.remote import slurm
    from provisioner.services import Services

    jobs_path, argv = argv[0], argv[1:]
    at = _crash_points()
    _wrap(Ledger, "intent", at, after="intent.after")
    _wrap(slurm, "submit", at, after="sbatch.after")
    _wrap(slurm, "cancel_pending", at, before="scancel.before")
    import paramiko

    exec_command = paramiko.Channel.exec_command

    def exec_then_crash(chan, command):
        exec_command(chan, command)  # returns once the server has started the command
        if "scancel" in command:
            at("scancel.sent")

    paramiko.Channel.exec_command = exec_then_crash

    def services(cfg, emulate, _pool=None):
        pool = Pool(WallClock())
        with open(jobs_path) as fh:
            for group in json.load(fh):
                pool.schedd().add_jobs(group["count"], **group["attrs"])
        return Services(cfg.factory_id, WallClock(), pool, log_dir=cfg.log_dir, log_url=cfg.log_url)

    cli._services = services
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
