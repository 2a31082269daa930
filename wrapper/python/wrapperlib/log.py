"""Minimal logger: the logging module costs startup time on every pilot."""
import sys
import time

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# Option names whose values are never logged (as SECRET_WORDS in wrapper.sh), any case.
SECRET_WORDS = ("token", "secret", "password", "passwd")


def secret(name):
    name = name.lower()
    return any(word in name for word in SECRET_WORDS)


def redacted(args):
    """Command-line arguments with the values of secret-looking options hidden,
    in both forms: --name=VALUE and --name VALUE."""
    out = []
    hide = False
    for arg in args:
        name, sep, _ = arg.partition("=")
        if hide:
            arg, hide = "<redacted>", False
        elif secret(name) and sep:
            arg = name + "=<redacted>"
        elif secret(name):
            hide = arg.startswith("-")
        out.append(arg)
    return out


class Log:
    def __init__(self, level="info"):
        self.threshold = LEVELS[level]

    def set_level(self, level):
        self.threshold = LEVELS[level]

    def _emit(self, level, message):
        if LEVELS[level] >= self.threshold:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            sys.stderr.write("%s wrapper.py %s: %s\n" % (stamp, level.upper(), message))
            sys.stderr.flush()

    def debug(self, message):
        self._emit("debug", message)

    def info(self, message):
        self._emit("info", message)

    def warning(self, message):
        self._emit("warning", message)

    def error(self, message):
        self._emit("error", message)
