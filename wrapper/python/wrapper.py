#!/usr/bin/env python3
"""Pilot wrapper, stage two: choose a plugin and pilot type from the lookup
table (or the options) and run the plugin's steps.

Standard library only (it runs on worker nodes), and lean imports because
every pilot pays for them. Options, lookup rules and exit codes: docs/wrapper.md.
"""
import os
import sys
import time

import plugins
from wrapperlib import lookup, options
from wrapperlib.errors import INTERNAL, LOOKUP, PYTHON_TOO_OLD, WrapperError, meaning
from wrapperlib.log import Log, redacted
from wrapperlib.supervise import Interrupted, Supervisor

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = ("validate", "setup", "download")


def choose(opts, picker, log):
    """(plugin name, pilot type or None, where they came from): the lookup
    table's best row, overridden by --wrapperplugin / --wrapperpilottype."""
    plugin, pilottypes, source = opts.plugin, None, "options"
    if opts.pilottype:
        pilottypes = lookup.parse_pilottypes(opts.pilottype)
    if plugin is None or pilottypes is None:
        path = opts.lookuptable or os.path.join(HERE, "lookuptable.conf")
        try:
            row = lookup.best_row(lookup.read_table(path), opts.site, opts.queue, opts.grid, opts.vo)
        except lookup.TableError as exc:
            raise WrapperError(LOOKUP, str(exc)) from None
        if row is None and plugin is None:
            raise WrapperError(LOOKUP, "no row of %s matches site=%s queue=%s grid=%s project=%s" % (
                path, opts.site, opts.queue, opts.grid, opts.vo))
        if row is not None:
            source = "%s line %d" % (path, row.lineno)
            if opts.plugin or opts.pilottype:
                source += ", overridden by options"
            plugin = plugin or row.plugin
            pilottypes = row.pilottypes if pilottypes is None else pilottypes
    pilottype = picker.pick(pilottypes) if pilottypes else None
    log.info("plugin %s, pilot type %s (from %s)" % (plugin, pilottype, source))
    return plugin, pilottype, source


def failed(exc, log):
    """The exit code of a wrapper error or a forwarded signal, logged."""
    if isinstance(exc, Interrupted):
        log.error(str(exc))
        return 128 + exc.signum
    log.error(exc.message)
    return exc.code


def internal_error(log):
    """INTERNAL, logging the exception being handled, then its traceback."""
    import traceback

    what = traceback.format_exception_only(*sys.exc_info()[:2])[-1].strip()
    log.error("internal error: %s\n%s" % (what, traceback.format_exc()))
    return INTERNAL


def run_plugin(plugin, log):
    """Calls the plugin's steps in order; report and cleanup run whatever happened.
    Returns the exit code and whether it is the payload's own."""
    payload = False
    try:
        for step in STEPS:
            getattr(plugin, step)()
        code = plugin.execute()
        if type(code) is not int or not 0 <= code <= 255:  # sys.exit() would mangle it
            raise WrapperError(INTERNAL, "plugin %s: execute() returned %r, not an exit code 0-255" % (
                plugin.name, code))
        payload = True
    except (WrapperError, Interrupted) as exc:
        code = failed(exc, log)
    except BaseException:  # a plugin bug, even sys.exit(), must still reach report and cleanup
        code = internal_error(log)
    try:
        plugin.report(code)
    finally:
        plugin.cleanup()
    return code, payload


def flush_stdout(log):
    """Flushes stdout now: if it is gone (full disk, closed pipe), Python's own flush at
    exit would fail and make the exit code 120 instead of the one reported."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        log.warning("standard output lost: %s" % exc)
        devnull = os.open(os.devnull, os.O_WRONLY)  # where the flush at exit now goes
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv=None):
    if sys.version_info < (3, 8):
        sys.stderr.write("wrapper.py: error: needs Python 3.8 or later\n")
        return PYTHON_TOO_OLD
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["-h"], ["--help"]):  # anywhere else, -h is the payload's
        sys.stdout.write(options.common_parser().format_help())
        return 0
    started = time.monotonic()
    log = Log()
    # Set by stage one, which stops the payload's group if this process is killed;
    # not the payload's business.
    supervisor = Supervisor(log, os.environ.pop("WRAPPER_PAYLOAD_GROUP_FILE", None))
    supervisor.install()
    facts = {"site": None, "queue": None, "plugin": None, "pilottype": None}
    payload = False
    try:
        opts, rest = options.parse(argv)
        log.set_level(opts.loglevel)
        log.debug("options: " + " ".join(redacted(argv)))
        facts.update(site=opts.site, queue=opts.queue)
        picker = lookup.Picker(opts.seed)
        name, pilottype, source = choose(opts, picker, log)
        facts.update(plugin=name, pilottype=pilottype)
        try:
            plugin_class = plugins.load(name)
        except WrapperError as exc:  # name the table line with the typo
            raise WrapperError(exc.code, "%s (chosen by %s)" % (exc.message, source)) from None
        args = options.parse_plugin(plugin_class, opts, rest)
        plugin = plugin_class(opts, args, pilottype, log, picker, supervisor)
        code, payload = run_plugin(plugin, log)
    except (WrapperError, Interrupted) as exc:
        code = failed(exc, log)
    except BaseException:  # a bug in a plugin's constructor, say, even sys.exit(): still an exit code and a summary
        code = internal_error(log)
    flush_stdout(log)
    log.info("summary: site=%s queue=%s plugin=%s pilottype=%s exit=%d (%s) duration=%.2fs" % (
        facts["site"], facts["queue"], facts["plugin"], facts["pilottype"], code, meaning(code, payload),
        time.monotonic() - started))
    return code


if __name__ == "__main__":
    sys.exit(main())
