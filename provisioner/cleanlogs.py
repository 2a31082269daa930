"""``cleanlogs.keepdays``: old pilot logs removed, as AutoPyFactory did.

HTCondor pilots write to ``<baseLogDir>/<day>/<queue>/`` (``batchsubmit/_condor.py``).
Only entries named as the factory names days are looked into, and in them only
directories named as queues are removed: never a link, nor a file (the ledger when
``statedir`` is unset, a CondorEC2 queue's user-data, an admin's notes).
"""
import datetime
import logging
import os
import re
import shutil
from typing import Dict, List

from provisioner.config import QUEUE_NAME

log = logging.getLogger("provisioner")

# A directory is due once its day is more than keepdays days past: looking hourly removes it
# within the hour, and a factory submitting every minute does not rescan its logs every minute.
INTERVAL = 3600.0
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # _condor._day's %Y-%m-%d


class Cleaner:
    def __init__(self, log_dir: str, keepdays: Dict[str, int], default: int):
        """``keepdays``: each configured queue's value; ``default``: the [Factory] value, for
        the directories of queues no longer configured. 0 keeps forever."""
        self.log_dir, self.keepdays, self.default = log_dir, keepdays, default
        self.next_pass = float("-inf")

    def maybe(self, now: float) -> None:
        """A pass, if the last was at least INTERVAL ago; failures are one warning line."""
        if now < self.next_pass:
            return
        self.next_pass = now + INTERVAL
        removed, errors = clean(self.log_dir, now, self.keepdays, self.default)
        if removed:
            log.info("cleanlogs: removed %d pilot log %s older than cleanlogs.keepdays under %s", removed,
                     _directories(removed), self.log_dir)
        if errors:
            first = errors[0]
            why = f"{first.filename}: {first.strerror}" if first.filename else str(first)
            log.warning("cleanlogs: cannot clean %d pilot log %s under %s: %s", len(errors),
                        _directories(len(errors)), self.log_dir, why)


def clean(log_dir: str, now: float, keepdays: Dict[str, int], default: int):
    """Removes the queue directories of days older than their queue's keepdays, then the
    day directories this emptied; returns (directories removed, OSErrors met)."""
    today = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).date().toordinal()
    removed, errors = 0, []
    for day in _dirs(log_dir, errors):
        age = _age(day.name, today)
        if age is None:
            continue
        emptied = False
        for queue in _dirs(day.path, errors):
            keep = keepdays.get(queue.name, default)
            if not keep or age <= keep or not QUEUE_NAME.match(queue.name):
                continue
            try:
                shutil.rmtree(queue.path)  # removes links inside, never what they point to
            except OSError as exc:
                errors.append(exc)
            else:
                removed, emptied = removed + 1, True
        if emptied:
            try:
                os.rmdir(day.path)
            except OSError:  # another queue's logs, or a file, are left in it
                pass
    return removed, errors


def _dirs(path: str, errors: List[OSError]) -> list:
    """The directories in ``path``, links left out."""
    try:
        with os.scandir(path) as entries:
            return [e for e in entries if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:  # no pilot has written yet
        return []
    except OSError as exc:
        errors.append(exc)
        return []


def _age(name: str, today: int):
    """Days from the day ``name`` to today, or None if it is not a day the factory writes."""
    if not _DAY.fullmatch(name):
        return None
    try:
        return today - datetime.date.fromisoformat(name).toordinal()
    except ValueError:  # 2023-02-30
        return None


def _directories(n: int) -> str:
    return "directory" if n == 1 else "directories"
