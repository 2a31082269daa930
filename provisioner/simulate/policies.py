"""Named policies: the queue options (policy chain and its settings) each one stands for.

``provisioner simulate --policy glideinwms`` rewrites every queue of the loaded
config with these options, so a policy is exactly what an admin would write in
queues.conf. ``{target}`` is the queue's batchsubmit plugin, ``{boot_time}`` the
scenario's boot time; target options apply only where the target has them. Each
step's module documents its source.
"""
import dataclasses
from typing import Dict

from provisioner import config as configmod

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


def apply(cfg: configmod.FactoryConfig, name: str, boot_time: float) -> configmod.FactoryConfig:
    """The loaded config with every queue's chain and its options replaced by policy ``name``.

    Each queue is rebuilt from the values it was loaded with, so it keeps its file's path
    (errors name the user's file) and everything the loader resolved (``file://`` paths,
    queue directories, ``[DEFAULT]``)."""
    if name not in POLICIES:
        raise KeyError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")
    queues = []
    for q in cfg.queues:
        items = {k: v for k, v in q.raw.items() if k != "schedplugin" and not k.startswith("sched.")}
        target = q.batchsubmit.name
        for key, value in {**_COMMON, **POLICIES[name]}.items():
            key = key.replace("{target}", target)
            if key.startswith("batchsubmit.") and key.split(".", 2)[2] not in q.batchsubmit.cls.options:
                continue
            items[key] = value.replace("{boot_time}", str(int(boot_time)))
        rewritten = configmod.queue_from_items(q.name, q.path, items)
        rewritten.enabled = q.enabled  # [Factory] enablequeues = False is not in the queue's own values
        queues.append(rewritten)
    return dataclasses.replace(cfg, queues=queues)
