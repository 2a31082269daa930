"""Minimal logger: the logging module costs startup time on every pilot."""
import re
import sys
import time

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# Option names whose values are never logged (as SECRET_WORDS in wrapper.sh), any case.
SECRET_WORDS = ("token", "secret", "password", "passwd")
# Options holding a command line, whose words are redacted in turn.
COMMAND_OPTIONS = ("--wrapperspecialcmd", "--pandaspecialcmd")
# A URL's query string, up to the next `,`, `#` or space, and its user:password@
# (as _w_mask_urls in wrapper.sh).
QUERY_RE = re.compile(r"(://[^?#,\s]*)\?[^#,\s]*")
USERINFO_RE = re.compile(r"(://)[^/?#@,\s]*@")


def secret(name):
    name = name.lower()
    return any(word in name for word in SECRET_WORDS)


def masked(text):
    """text with the query string of each URL in it shown as `?<redacted>` and its
    user:password@ as `<redacted>@`: monitor and mirror URLs may carry tokens there."""
    if "://" not in text:
        return text
    return USERINFO_RE.sub(r"\1<redacted>@", QUERY_RE.sub(r"\1?<redacted>", text))


def redacted(args):
    """Command-line arguments with the values of secret-looking options hidden,
    in both forms: --name=VALUE and --name VALUE; in a special command too; and
    URLs' query strings masked."""
    out = []
    hide = command = False
    for arg in args:
        name, sep, value = arg.partition("=")
        if hide:
            arg, hide = "<redacted>", False
        elif command:
            arg, command = redacted_command(arg), False
        elif secret(name) and sep:
            arg = name + "=<redacted>"
        elif secret(name):
            hide = arg.startswith("-")
        elif name in COMMAND_OPTIONS and sep:
            arg = name + "=" + redacted_command(value)
        elif name in COMMAND_OPTIONS:
            command = True
        out.append(masked(arg))
    return out


def redacted_command(line):
    """A command line (split as stage one splits it) with its secret options' values hidden."""
    import shlex  # only for a special command

    try:
        return " ".join(redacted(shlex.split(line)))
    except ValueError:  # unbalanced quotes: stage one refuses it; show none of it
        return "<redacted>"


class Log:
    def __init__(self, level="info"):
        self.threshold = LEVELS[level]

    def set_level(self, level):
        self.threshold = LEVELS[level]

    def _emit(self, level, message):
        if LEVELS[level] >= self.threshold:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            sys.stderr.write("%s wrapper.py %s: %s\n" % (stamp, level.upper(), masked(message)))
            sys.stderr.flush()

    def debug(self, message):
        self._emit("debug", message)

    def info(self, message):
        self._emit("info", message)

    def warning(self, message):
        self._emit("warning", message)

    def error(self, message):
        self._emit("error", message)
