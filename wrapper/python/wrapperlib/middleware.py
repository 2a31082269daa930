"""Checks for the programs and grid environment a plugin needs."""
import os


def which(program):
    """Path of program on PATH, or None (shutil.which without shutil's import cost)."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or ".", program)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def missing_programs(required):
    """Entries of required not on PATH; an entry may be a tuple of alternatives."""
    missing = []
    for entry in required:
        alternatives = (entry,) if isinstance(entry, str) else entry
        if not any(which(program) for program in alternatives):
            missing.append(" or ".join(alternatives))
    return missing


GRID_VARIABLES = ("OSG_GRID", "GLITE_LOCATION", "X509_USER_PROXY", "X509_CERT_DIR", "BEARER_TOKEN_FILE")


def grid_environment():
    """The grid middleware variables set on this node, with a note on missing files."""
    found = {}
    for name in GRID_VARIABLES:
        value = os.environ.get(name)
        if value:
            found[name] = value if os.path.exists(value) else value + " (missing)"
    return found
