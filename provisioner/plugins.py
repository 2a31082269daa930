"""Plugin lookup: built-ins are one module per plugin, third parties use entry points.

A built-in named ``MaxPerCycle`` in a config lives in ``provisioner/sched/maxpercycle.py``
and exports its class as ``PLUGIN``. Third-party plugins register under the entry
point group ``provisioner.<family>`` with the (lower-case) name as the key.
"""
import difflib
import importlib
import pkgutil
import sys
from importlib.metadata import distributions, entry_points

FAMILIES = ("wmsstatus", "batchstatus", "sched", "batchsubmit", "monitor")

# Older APF spellings of the same plugin.
ALIASES = {
    "batchsubmit": {"condornordugrid": "condorarc", "condorosgce": "condorce", "condorgridce": "condorce"},
}

_NOT_PLUGINS = {"base"}


def builtin_names(family: str) -> list:
    pkg = importlib.import_module(f"provisioner.{family}")
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                  if not m.name.startswith("_") and m.name not in _NOT_PLUGINS)


def _entry_points(family: str) -> dict:
    group = f"provisioner.{family}"
    if sys.version_info >= (3, 10):
        return {ep.name.lower(): ep for ep in entry_points(group=group)}
    eps = {}  # 3.9 (EL9's python3) has no group=, and its entry points do not know their distribution
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == group:
                ep.dist = dist
                eps[ep.name.lower()] = ep
    return eps


def names(family: str) -> list:
    return sorted(set(builtin_names(family)) | set(_entry_points(family)))


def canonical(family: str, name: str) -> str:
    key = name.strip().lower()
    return ALIASES.get(family, {}).get(key, key)


def load(family: str, name: str):
    """Return the plugin class, or raise LookupError with a did-you-mean."""
    key = canonical(family, name)
    if key in builtin_names(family):
        return importlib.import_module(f"provisioner.{family}.{key}").PLUGIN
    eps = _entry_points(family)
    if key in eps:
        ep = eps[key]
        dist = f" of {ep.dist.metadata['Name']} {ep.dist.version}" if ep.dist else ""  # 3.9: no dist.name
        where = f"{family} plugin {name.strip()!r}: entry point {ep.name} = {ep.value}{dist}"
        try:
            cls = ep.load()
        except Exception as exc:  # whatever a third party's import raises is a broken install here
            why = (str(exc).splitlines() or [""])[0]
            raise LookupError(f"{where} fails to load: {type(exc).__name__}: {why}") from None
        # A module or function named by mistake, or another family's plugin, would fail later
        # with a traceback (no typed options) or at every cycle.
        if not isinstance(cls, type) or not isinstance(getattr(cls, "options", None), dict) \
                or getattr(cls, "family", family) != family:
            raise LookupError(f"{where} is not a {family} plugin class")
        return cls
    hint = did_you_mean(key, names(family))
    raise LookupError(f"unknown {family} plugin {name!r}{hint}")


def did_you_mean(word: str, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
