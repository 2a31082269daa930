"""Job attributes every pilot carries, so status is read back by attribute."""
import re

import classad2

FACTORY = "ProvisionerFactory"
QUEUE = "ProvisionerQueue"
LAUNCH = "ProvisionerLaunch"

PILOT_PROJECTION = ["ClusterId", "ProcId", "JobStatus", "QDate", "EnteredCurrentStatus",
                    "JobCurrentStartDate", "RemoteWallClockTime", QUEUE, LAUNCH]


def created_by(factory_id: str) -> str:
    """The constraint selecting what ``factory_id`` created, the id quoted as a string literal."""
    return f"{FACTORY} =?= {classad2.quote(factory_id)}"  # '==' on strings ignores case


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAMES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = {"true", "false", "undefined", "error", "is", "isnt", "my", "target", "parent"}


def referenced(expr: str) -> set:
    """Attribute names an expression may read (a superset: function names too)."""
    return {n for n in _NAMES.findall(_STRINGS.sub("", expr)) if n.lower() not in _KEYWORDS}
