"""condorstartd: joins an HTCondor pool as a startd.

Writes a configuration naming the collector (--wrappercollector HOST[:PORT]),
authenticating with an IDTOKEN (--wrappertoken or --wrappertokenfile, stored
0600 and never logged), shutting down after --wrapperidletimeout seconds
unclaimed (STARTD_NOCLAIM_SHUTDOWN) and at the end of --wrapperlifetime
seconds; then runs condor_master in the foreground.

On a cloud VM the user-data has already written the machine's configuration
(collector, token, the provisioner's identity attributes, idle shutdown): with
--wrappercondorconfig FILE the plugin runs condor_master on that file instead,
so the same wrapper starts the VM's one startd and reports when it ends.
"""
import os
import re
import time

from wrapperlib.errors import BAD_OPTION, WrapperError
from wrapperlib.options import job_path

from .base import Plugin

COLLECTOR_RE = re.compile(r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?\Z")
TOKEN_RE = re.compile(r"[\x21-\x7e]+\Z")  # one line of printable ASCII, as JWTs are


class CondorStartd(Plugin):
    required_programs = ("condor_master",)
    # condor_master logs to files, so its silence means nothing.
    watch_silence = False

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--wrappercollector", dest="collector", help="collector HOST[:PORT]")
        parser.add_argument("--wrappertoken", dest="token", help="IDTOKEN for the pool")
        parser.add_argument("--wrappertokenfile", dest="tokenfile", help="file holding the IDTOKEN")
        parser.add_argument("--wrapperidletimeout", dest="idletimeout", type=int, default=1200,
                            help="seconds unclaimed before the startd shuts down")
        parser.add_argument("--wrapperlifetime", dest="lifetime", type=int, default=86400,
                            help="seconds the startd lives at most; 0: no limit")
        parser.add_argument("--wrappercondorconfig", dest="condorconfig",
                            help="an HTCondor configuration already written (a cloud VM's): run on it")

    def validate(self):
        opts = self.opts
        for name in ("condorconfig", "tokenfile"):  # relative to the job directory, as given
            if getattr(opts, name):
                setattr(opts, name, job_path(getattr(opts, name)))
        if opts.condorconfig:
            if not os.access(opts.condorconfig, os.R_OK):
                raise WrapperError(BAD_OPTION, "--wrappercondorconfig: %s is not a readable file" % opts.condorconfig)
            return
        if not opts.collector or not COLLECTOR_RE.match(opts.collector):
            raise WrapperError(BAD_OPTION, "--wrappercollector: expects HOST[:PORT]")
        if bool(opts.token) == bool(opts.tokenfile):
            raise WrapperError(BAD_OPTION, "condorstartd needs one of --wrappertoken, --wrappertokenfile")
        if opts.tokenfile:
            try:
                with open(opts.tokenfile) as source:
                    opts.token = source.read().strip()
            except OSError as exc:
                raise WrapperError(BAD_OPTION, "--wrappertokenfile: cannot read %s: %s" % (
                    opts.tokenfile, exc.strerror)) from None
        if not TOKEN_RE.match(opts.token):  # the message must not quote the token
            raise WrapperError(BAD_OPTION, "token: not a single line of printable characters")
        for name in ("idletimeout", "lifetime"):
            if getattr(opts, name) < 0:
                raise WrapperError(BAD_OPTION, "--wrapper%s: must not be negative" % name)

    def setup(self):
        self.config = self.opts.condorconfig or self.write_config()
        super().setup()

    def write_config(self):
        """Writes the startd's configuration and token under workdir/condor; returns the config path."""
        opts = self.opts
        base = os.path.join(self.workdir, "condor")
        self.created.append(base)
        for sub in ("", "log", "execute", "spool", "lock", "run", "tokens.d"):
            os.makedirs(os.path.join(base, sub), mode=0o700, exist_ok=True)
        token_path = os.path.join(base, "tokens.d", "pool.token")
        descriptor = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # in case the file existed with wider permissions
        with os.fdopen(descriptor, "w") as token_file:
            token_file.write(opts.token + "\n")
        lines = [
            "# Written by the pilot wrapper's condorstartd plugin.",
            "CONDOR_HOST = " + opts.collector,
            "COLLECTOR_HOST = " + opts.collector,
            "DAEMON_LIST = MASTER, STARTD",
            "LOCAL_DIR = " + base,
            "LOG = $(LOCAL_DIR)/log",
            "EXECUTE = $(LOCAL_DIR)/execute",
            "SPOOL = $(LOCAL_DIR)/spool",
            "LOCK = $(LOCAL_DIR)/lock",
            "RUN = $(LOCAL_DIR)/run",
            "SEC_TOKEN_DIRECTORY = $(LOCAL_DIR)/tokens.d",
            "SEC_DEFAULT_AUTHENTICATION_METHODS = IDTOKENS",
            "SEC_DEFAULT_AUTHENTICATION = REQUIRED",
            "SEC_DEFAULT_ENCRYPTION = REQUIRED",
            "SEC_DEFAULT_INTEGRITY = REQUIRED",
            "use feature : PartitionableSlot",
            "STARTD_NOCLAIM_SHUTDOWN = %d" % opts.idletimeout,
            # The master leaves once its startd has shut down.
            "MASTER.DAEMON_SHUTDOWN = STARTD_StartTime =?= 0",
            'WrapperSite = "%s"' % opts.site,
            'WrapperQueue = "%s"' % opts.queue,
            "STARTD_ATTRS = $(STARTD_ATTRS) WrapperSite WrapperQueue",
        ]
        if opts.lifetime:
            lines += [
                "WRAPPER_END_TIME = %d" % (int(time.time()) + opts.lifetime),
                "START = time() < $(WRAPPER_END_TIME)",
                "STARTD.DAEMON_SHUTDOWN = time() > $(WRAPPER_END_TIME)",
            ]
        path = os.path.join(base, "condor_config")
        with open(path, "w") as config:
            config.write("\n".join(lines) + "\n")
        self.log.info("HTCondor configuration written to %s (collector %s)" % (path, opts.collector))
        return path

    def payload_env(self):
        env = super().payload_env()
        env["CONDOR_CONFIG"] = self.config
        return env

    def command(self):
        return ["condor_master", "-f"]
