"""Named policies: the queue options (policy chain and its settings) each one stands for.

``provisioner simulate --policy glideinwms`` rewrites every queue of the given
config with these options before loading it, so a policy is exactly what an
admin would write in queues.conf. ``{target}`` is the queue's batchsubmit
plugin, ``{boot_time}`` the scenario's boot time; target options apply only
where the target has them. Each step's module documents its source.
"""
import configparser
import os
import tempfile
from typing import Dict

from provisioner import plugins

# Every policy retires through the same drain path, unthrottled, so the
# comparison is between decisions, not disruption budgets.
_COMMON = {"batchsubmit.{target}.max_draining_percent": "100"}

POLICIES: Dict[str, Dict[str, str]] = {
    "elastic": {"schedplugin": "Elastic", "sched.elastic.boot_time": "{boot_time}"},
    "elastic-nolead": {"schedplugin": "Elastic", "sched.elastic.boot_time": "{boot_time}", "sched.elastic.lead": "0",
                       "sched.elastic.recheck": "0"},
    "apf": {"schedplugin": "Ready, MaxPerCycle, MaxPending, APFRetire",
            "sched.maxpercycle.maximum": "20", "sched.maxpending.maximum": "50"},
    "glideinwms": {"schedplugin": "GlideinWMS"},
    "cobald": {"schedplugin": "Cobald", "sched.cobald.rate": "0.02", "sched.cobald.high_allocation": "0.9"},
    "gcpm": {"schedplugin": "Gcpm", "sched.gcpm.buffer": "1"},
    "vmdemand": {"schedplugin": "VMDemand"},
}
DEFAULT = "elastic"
PEERS = ("apf", "glideinwms", "cobald", "gcpm")


def describe(name: str) -> str:
    return "; ".join(f"{k} = {v}" for k, v in POLICIES[name].items())


def apply(conf_path: str, name: str, boot_time: float, workdir: str) -> str:
    """A copy of the factory config whose queues all use policy ``name``; returns its path."""
    if name not in POLICIES:
        raise KeyError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    conf_path = os.path.abspath(conf_path)
    base = os.path.dirname(conf_path)
    fac = _raw(conf_path)
    queue_files = [os.path.join(base, f.strip()) for f in fac.get("Factory", "queueconf", fallback="").split(",")
                   if f.strip()]
    qdir = fac.get("Factory", "queuedirconf", fallback=None)
    if qdir:
        qdir = os.path.join(base, qdir)
        queue_files += sorted(os.path.join(qdir, f) for f in os.listdir(qdir) if f.endswith(".conf"))
    out_dir = tempfile.mkdtemp(prefix=f"{name}-", dir=workdir)
    written = []
    for i, path in enumerate(queue_files):
        cp = _raw(path)
        for key in [k for k in cp.defaults() if k == "schedplugin" or k.startswith("sched.")]:
            cp.remove_option(cp.default_section, key)
        for section in cp.sections():
            _rewrite(cp, section, POLICIES[name], boot_time)
        target = os.path.join(out_dir, f"queues{i}.conf")
        with open(target, "w") as fh:
            cp.write(fh)
        written.append(target)
    fac.set("Factory", "queueconf", ", ".join(written))
    fac.remove_option("Factory", "queuedirconf")
    for key in ("baselogdir", "statedir"):  # relative paths keep pointing where they did
        if fac.has_option("Factory", key) and not os.path.isabs(fac.get("Factory", key)):
            fac.set("Factory", key, os.path.join(base, fac.get("Factory", key)))
    out = os.path.join(out_dir, "factory.conf")
    with open(out, "w") as fh:
        fac.write(fh)
    return out


def _raw(path: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str.lower
    with open(path) as fh:
        cp.read_file(fh)
    return cp


def _rewrite(cp, section, options, boot_time):
    target = plugins.canonical("batchsubmit", cp.get(section, "batchsubmitplugin", fallback="") or "")
    try:
        target_opts = plugins.load("batchsubmit", target).options if target else {}
    except LookupError:
        target_opts = {}
    for key in [k for k in cp.options(section) if k == "schedplugin" or k.startswith("sched.")]:
        cp.remove_option(section, key)  # False, harmlessly, for keys from [DEFAULT]
    for key, value in {**_COMMON, **options}.items():
        key = key.replace("{target}", target)
        if key.startswith("batchsubmit.") and key.split(".", 2)[2] not in target_opts:
            continue
        cp.set(section, key, value.replace("{boot_time}", str(int(boot_time))))

