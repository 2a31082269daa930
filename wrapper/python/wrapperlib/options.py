"""Stage-two options: stage one's (with their older spellings) plus stage-two ones.

Options a plugin adds (Plugin.add_arguments) are parsed in a second pass;
whatever neither pass knows is handed to the payload.
"""
import argparse
import os
import re

from .errors import BAD_OPTION, PLUGIN, WrapperError
from .lookup import GRIDS, NAME_RE, parse_pilottypes

WORD_RE = re.compile(r"[A-Za-z0-9_.-]+\Z")
URL_RE = re.compile(r"https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(/[^\s\x00-\x1f\x7f]*)?\Z")
PLUGIN_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
SHA256_RE = re.compile(r"[0-9A-Fa-f]{64}\Z")
RATIO_RE = re.compile(r"[0-9]+(,[0-9]+)*\Z")

# dest, option names (canonical first), help: stage one's options, which it
# hands over once each (it refuses a repeated one) ...
STAGE_ONE_OPTIONS = (
    ("site", ("--wrappersite", "--pandasite"), "site name (default: the queue)"),
    ("queue", ("--wrapperqueue", "--pandaqueue", "--wrapperwmsqueue"), "queue (required)"),
    ("batchqueue", ("--wrapperbatchqueue",), "batch queue"),
    ("grid", ("--wrappergrid", "--pandagrid"), "OSG, EGEE, gLite, local or cloud (required)"),
    ("vo", ("--wrappervo", "--pandaproject"), "VO or project"),
    ("serverurl", ("--wrapperserverurl", "--pandaserverurl"), "server URL pilots are fetched from"),
    ("tarballurl", ("--wrappertarballurl", "--pandawrappertarballurl"), "stage-two mirrors (stage one)"),
    ("tarballchecksum", ("--wrappertarballchecksum",), "stage-two sha256 (stage one)"),
    ("specialcmd", ("--wrapperspecialcmd", "--pandaspecialcmd"), "special command (stage one)"),
    ("plugin", ("--wrapperplugin", "--pandaplugin"), "plugin, overriding the lookup table"),
    ("pilottype", ("--wrapperpilottype", "--pandapilottype"), "TYPE[:WEIGHT],..., overriding the lookup table"),
    ("loglevel", ("--wrapperloglevel", "--pandaloglevel"), "debug or info"),
    ("purpose", ("--wrapperpurpose",), "purpose label"),
    ("mode", ("--wrappermode",), "mode label"),
    ("pilotcodeurl", ("--wrapperpilotcodeurl",), "pilot tarball URL(s), comma list"),
    ("pilotcoderatio", ("--wrapperpilotcoderatio",), "weights for --wrapperpilotcodeurl"),
)
# ... and stage two's own, which stage one passes through untouched.
STAGE_TWO_OPTIONS = (
    ("pilotchecksum", ("--wrapperpilotchecksum",), "sha256 the pilot tarball must have"),
    ("lookuptable", ("--wrapperlookuptable",), "lookup table path (default: next to wrapper.py)"),
    ("monitorurl", ("--wrappermonitorurl",), "URL receiving JSON state reports"),
    ("monitormethod", ("--wrappermonitormethod",), "POST (default) or PUT"),
)
INT_OPTIONS = (
    ("seed", "--wrapperseed", None, "random seed for weighted choices (env WRAPPER_SEED)"),
    ("heartbeat", "--wrapperheartbeat", 300, "seconds between running reports"),
    ("silencetimeout", "--wrappersilencetimeout", 21600, "kill a payload silent this long; 0: never"),
    ("killgrace", "--wrapperkillgrace", 20, "seconds between SIGTERM and SIGKILL"),
)
# The wrapper's own option names and dests, each to its canonical name: a plugin's option
# with one of them would never be set, or would replace the wrapper's value.
OWN = {key: names[0] for dest, names, _ in STAGE_ONE_OPTIONS + STAGE_TWO_OPTIONS for key in names + (dest,)}
OWN.update({key: name for dest, name, _, _ in INT_OPTIONS for key in (name, dest)})


class Parser(argparse.ArgumentParser):
    """Reports bad options as WrapperError instead of exiting with 2. Options
    added without an action (stage two's own, a plugin's) may be given once."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.register("action", None, StoreOnce)
        self.given = {}  # dest: the option string it was given as

    def add_argument(self, *args, **kwargs):
        convert = kwargs.get("type")
        if convert is not None:  # a blank value is not converted: it means the default
            def blank_or(value, convert=convert):
                return value if value == "" else convert(value)

            blank_or.__name__ = getattr(convert, "__name__", "value")  # for argparse's "invalid int value"
            kwargs["type"] = blank_or
        return super().add_argument(*args, **kwargs)

    def error(self, message):
        raise WrapperError(BAD_OPTION, message)

    def _check_value(self, action, value):
        if value != "":  # blank is not a choice: it stands for the default
            super()._check_value(action, value)


class StoreOnce(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        if self.dest in parser.given:
            parser.error("%s: given more than once (also as %s)" % (option_string, parser.given[self.dest]))
        parser.given[self.dest] = option_string
        setattr(namespace, self.dest, values)


def new_parser():
    # No -h/--help: options such as -hostname or -hv belong to the payload
    # (wrapper.py answers a lone -h or --help itself).
    return Parser(prog="wrapper.py", allow_abbrev=False, add_help=False)


def common_parser():
    parser = new_parser()
    for dest, names, text in STAGE_ONE_OPTIONS:
        parser.add_argument(*names, dest=dest, action="store", help=text)
    for dest, names, text in STAGE_TWO_OPTIONS:
        parser.add_argument(*names, dest=dest, help=text)
    for dest, name, default, text in INT_OPTIONS:
        parser.add_argument(name, dest=dest, type=int, default=default, help=text)
    return parser


def parse(argv):
    """Common options as a namespace, and the arguments left for the plugin."""
    parser = common_parser()
    opts, rest = parser.parse_known_args(argv)
    blanks_to_defaults(parser, opts, opts)
    if opts.seed is None and os.environ.get("WRAPPER_SEED"):
        try:
            opts.seed = int(os.environ["WRAPPER_SEED"])
        except ValueError:
            raise WrapperError(BAD_OPTION, "WRAPPER_SEED: expects an integer") from None
    validate(opts)
    return opts, rest


def parse_plugin(plugin_class, opts, rest):
    """Adds the plugin's own options to opts; returns the arguments left for the payload."""
    parser = new_parser()
    name = plugin_class.__module__.rsplit(".", 1)[-1]
    try:
        plugin_class.add_arguments(parser)
    except Exception as exc:  # a plugin bug: the plugin cannot be used, said in one line
        raise WrapperError(PLUGIN, "plugin %s cannot be loaded: add_arguments failed: %s: %s" % (
            name, type(exc).__name__, exc)) from None
    for action in parser._actions:
        taken = [OWN[key] for key in action.option_strings + [action.dest] if key in OWN]
        if taken:
            option = (action.option_strings or [action.dest])[0]
            raise WrapperError(PLUGIN, "plugin %s cannot be loaded: add_arguments: %s (dest %r) clashes with the "
                                       "wrapper's own %s" % (name, option, action.dest, taken[0]))
    plugin_opts, rest = parser.parse_known_args(rest)
    blanks_to_defaults(parser, plugin_opts, opts)
    return rest


def blanks_to_defaults(parser, parsed, opts):
    """Copies parsed to opts, blank values (left so by submit templates) counting as not given."""
    types = {action.dest: action.type for action in parser._actions}
    for key, value in vars(parsed).items():
        if value == "":
            value = parser.get_default(key)
            if isinstance(value, str) and types.get(key):  # as argparse converts a string default
                value = types[key](value)
        setattr(opts, key, value)


def job_path(path):
    """A path given in an option, relative to the directory stage one was started in
    (HTCondor's job directory, which it hands over as WRAPPER_JOBDIR) rather than to the
    private work directory; to the current directory when stage two runs alone."""
    return os.path.join(os.environ.get("WRAPPER_JOBDIR") or os.getcwd(), path)


def fail(option, message):
    raise WrapperError(BAD_OPTION, "%s: %s" % (option, message))


def check(opts, dest, option, regex, message, split=False):
    value = getattr(opts, dest)
    if value is not None:
        for item in value.split(",") if split else [value]:
            if not regex.match(item):
                fail(option, "%s: %r" % (message, item))


def validate(opts):
    for dest, option in (("queue", "--wrapperqueue"), ("grid", "--wrappergrid")):
        if getattr(opts, dest) is None:
            fail(option, "required option missing")
    if opts.site is None:
        opts.site = opts.queue
    if opts.grid.lower() not in GRIDS:
        fail("--wrappergrid", "unknown grid flavour %r (expected OSG, EGEE, gLite, local or cloud)" % opts.grid)
    opts.loglevel = opts.loglevel or "info"
    if opts.loglevel not in ("debug", "info"):
        fail("--wrapperloglevel", "unknown log level %r (expected debug or info)" % opts.loglevel)
    if opts.lookuptable:
        opts.lookuptable = job_path(opts.lookuptable)
    opts.monitormethod = (opts.monitormethod or "POST").upper()
    if opts.monitormethod not in ("POST", "PUT"):
        fail("--wrappermonitormethod", "expected POST or PUT")
    for dest in ("site", "queue", "batchqueue", "vo"):
        check(opts, dest, "--wrapper" + dest, NAME_RE, "invalid name")
    for dest in ("purpose", "mode"):
        check(opts, dest, "--wrapper" + dest, WORD_RE, "invalid value")
    for dest in ("tarballurl", "pilotcodeurl"):
        check(opts, dest, "--wrapper" + dest, URL_RE, "not an http(s) URL", split=True)
    for dest in ("serverurl", "monitorurl"):
        check(opts, dest, "--wrapper" + dest, URL_RE, "not an http(s) URL")
    if opts.serverurl and "," in opts.serverurl:  # as stage one: one URL, never a list
        fail("--wrapperserverurl", "expects one URL, not a comma list")
    for dest in ("tarballchecksum", "pilotchecksum"):
        check(opts, dest, "--wrapper" + dest, SHA256_RE, "expects a sha256 as 64 hex digits")
    check(opts, "plugin", "--wrapperplugin", PLUGIN_RE, "invalid plugin name")
    check(opts, "pilotcoderatio", "--wrapperpilotcoderatio", RATIO_RE, "expects WEIGHT[,WEIGHT...]")
    if opts.pilottype is not None:
        try:
            parse_pilottypes(opts.pilottype)
        except ValueError as exc:
            fail("--wrapperpilottype", str(exc))
    for dest, name, _, _ in INT_OPTIONS[1:]:
        if getattr(opts, dest) < 0:
            fail(name, "must not be negative")
