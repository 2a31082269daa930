"""Base class of the stage-two plugins.

The runner calls validate, setup, download, execute, report and cleanup in
that order (report and cleanup also after a failure). The base class does the
common work: node profile, middleware check, monitor reports, payload
supervision. A plugin overrides only what differs, usually command().
"""
import os

from wrapperlib import middleware, nodeinfo
from wrapperlib.errors import MIDDLEWARE, WrapperError
from wrapperlib.fetch import fetch_tarball
from wrapperlib.monitor import Monitor
from wrapperlib.supervise import Supervisor


class Plugin:
    # Programs the plugin needs on PATH; a tuple entry means any one of them.
    required_programs = ()
    # Whether --wrappersilencetimeout applies to this plugin's payload.
    watch_silence = True

    @classmethod
    def add_arguments(cls, parser):
        """Adds the plugin's own options to an argparse parser."""

    def __init__(self, opts, args, pilottype, log, picker, supervisor=None):
        self.opts = opts
        self.args = args  # options neither stage knows: handed to the payload
        self.pilottype = pilottype
        self.log = log
        self.picker = picker
        self.supervisor = supervisor or Supervisor(log)
        self.workdir = os.getcwd()
        self.payload_cwd = self.workdir
        self.created = []
        self.node = {}
        self.monitor = Monitor(opts.monitorurl, opts.monitormethod, log, {
            "site": opts.site, "queue": opts.queue, "plugin": self.name,
            "pilottype": pilottype, "host": os.uname().nodename, "pid": os.getpid(),
        })

    @property
    def name(self):
        return type(self).__module__.rsplit(".", 1)[-1]

    def validate(self):
        """Checks the plugin's options; raises WrapperError(BAD_OPTION, ...)."""

    def setup(self):
        self.node = nodeinfo.profile(self.workdir)
        self.log.info("node: " + " ".join("%s=%s" % item for item in self.node.items()))
        self.check_middleware()
        self.monitor.send("running")

    def check_middleware(self):
        for name, value in middleware.grid_environment().items():
            self.log.info("grid environment: %s=%s" % (name, value))
        missing = middleware.missing_programs(self.required_programs)
        if missing:
            raise WrapperError(MIDDLEWARE, "missing required program(s): " + ", ".join(missing))

    def download(self):
        """Fetches what the payload needs; nothing by default."""

    def fetch(self, url, name, checksum=None):
        """Downloads and unpacks the tarball at url into workdir/name; returns that path."""
        path = os.path.join(self.workdir, name)
        self.created.append(path)
        fetch_tarball(url, path, checksum)
        return path

    def command(self):
        """The payload's argv."""
        raise NotImplementedError("plugin %s defines no command()" % self.name)

    def payload_env(self):
        env = dict(os.environ)
        for key in ("site", "queue", "grid", "vo", "serverurl"):
            value = getattr(self.opts, key)
            if value:
                env["WRAPPER_" + key.upper()] = value
        if self.pilottype:
            env["WRAPPER_PILOTTYPE"] = self.pilottype
        env["WRAPPER_WORKDIR"] = self.workdir
        return env

    def execute(self):
        """Runs command() under supervision; returns its exit code."""
        opts = self.opts
        return self.supervisor.run(
            self.command(), cwd=self.payload_cwd, env=self.payload_env(),
            silence=opts.silencetimeout if self.watch_silence else 0, grace=opts.killgrace,
            tick=self.heartbeat, tick_every=opts.heartbeat if opts.monitorurl else 0,
        )

    def heartbeat(self):
        self.monitor.send("running")

    def report(self, code):
        self.monitor.send("exiting", rc=code)

    def cleanup(self):
        """Removes what the plugin created in the work directory."""
        if self.created:
            import shutil  # only needed here, after the payload

            for path in reversed(self.created):
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.exists(path):
                    os.unlink(path)
