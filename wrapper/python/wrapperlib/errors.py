"""Stage-two exit codes (docs/wrapper.md has the full table) and the error carrying one."""

OK = 0
BAD_OPTION = 80
LOOKUP = 81
PLUGIN = 82
DOWNLOAD = 83
SILENT = 84
MIDDLEWARE = 85
PYTHON_TOO_OLD = 86
INTERNAL = 87

MEANINGS = {
    OK: "success",
    BAD_OPTION: "bad option",
    LOOKUP: "lookup table error",
    PLUGIN: "plugin not loadable",
    DOWNLOAD: "pilot download failed",
    SILENT: "payload killed after silence",
    MIDDLEWARE: "required program missing",
    PYTHON_TOO_OLD: "python too old",
    INTERNAL: "internal error",
}


def meaning(code, payload=False):
    """What an exit code means; payload: it is the payload's own, whatever its number."""
    if code in MEANINGS and not (payload and code):
        return MEANINGS[code]
    if code > 128:
        return "killed by signal %d" % (code - 128)
    return "payload exit code"


class WrapperError(Exception):
    """A failure that ends the run with a documented exit code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message
