"""A small sqlite ledger of every decision and action.

An action is written as an intent before the target is called and completed
after, so a crash between the two leaves a visible open intent whose launch id
(also on every pilot or VM it created) lets a restarted factory reconcile.
"""
import fcntl
import json
import os
import secrets
import sqlite3
import urllib.parse
from typing import Dict, List, Optional

from provisioner.errors import ProvisionerError

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY, time REAL, queue TEXT, target TEXT, action TEXT,
    count INTEGER, ids TEXT, launch_id TEXT, state TEXT, note TEXT);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, time REAL, queue TEXT, idle INTEGER, running INTEGER,
    pending INTEGER, pilots_running INTEGER, n INTEGER, action TEXT, count INTEGER, reason TEXT);
CREATE INDEX IF NOT EXISTS decisions_queue ON decisions (queue, id);
-- read every cycle (interrupted launches, open intents) and by launch id: the table only grows
CREATE INDEX IF NOT EXISTS actions_state ON actions (state, queue, time);
CREATE INDEX IF NOT EXISTS actions_launch ON actions (launch_id);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT);
"""


# Decisions and finished actions are kept this long: a decision row per queue and cycle (some 160
# bytes) would otherwise grow the ledger for as long as the factory runs.
KEEP_SECONDS = 30 * 86400.0
_PRUNE_EVERY = 3600.0


class Ledger:
    def __init__(self, path: Optional[str], factory_id: str, readonly: bool = False, exclusive: bool = False):
        """``path`` None keeps the ledger in memory (simulations); ``readonly``: only read an
        existing ledger, as ``provisioner status`` does, which may not write the directory;
        ``exclusive``: refused while another holds it so, and held until closed (a daemon's)."""
        self.factory_id = factory_id
        self._lock = self.db = None
        self._pruned = float("-inf")
        if readonly:
            self.db = _open_readonly(path)
            return
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            if exclusive:
                self._lock = _lock(path)
        try:
            # in the try: a directory where the file should be fails here, with the lock held
            self.db = sqlite3.connect(path or ":memory:", isolation_level=None)
            if path:
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.close()
            # Safe to move aside: a fresh ledger draws a new epoch and finds the VMs by their tags.
            raise ProvisionerError(f"ledger {path}: {exc}; move it aside to start a new one (the factory"
                                   " finds its VMs and pilots again without it)") from None
        # Launch ids are "<factory>-<epoch>-<n>": a fresh ledger (deleted, or a new host) draws
        # a new epoch, so its ids never repeat the old ones on VMs or in cloud client tokens.
        self.epoch = self.get_state("ledger.epoch")
        if self.epoch is None:
            self.epoch = secrets.token_hex(3)
            self.put_state("ledger.epoch", self.epoch)

    def intent(self, time: float, queue: str, target: str, action: str, count: int) -> str:
        cur = self.db.execute(
            "INSERT INTO actions (time, queue, target, action, count, ids, state) VALUES (?,?,?,?,?,?,?)",
            (time, queue, target, action, count, "[]", "intent"))
        launch_id = f"{self.factory_id}-{self.epoch}-{cur.lastrowid}"
        self.db.execute("UPDATE actions SET launch_id=? WHERE id=?", (launch_id, cur.lastrowid))
        return launch_id

    def launch_time(self, launch_id: str) -> Optional[float]:
        row = self.db.execute("SELECT time FROM actions WHERE launch_id=?", (launch_id,)).fetchone()
        return row[0] if row else None

    def complete(self, launch_id: str, ids: List[str], state: str = "done", note: str = "") -> None:
        self.db.execute("UPDATE actions SET ids=?, state=?, note=?, count=? WHERE launch_id=?",
                        (json.dumps(ids), state, note, len(ids), launch_id))

    def interrupt_open_intents(self) -> List[Dict]:
        """Close the intents a crash left open. What they created carries their launch id
        (job attribute or cloud tag), so status still counts it and nothing is launched twice."""
        rows = self.open_intents()
        self.db.execute("UPDATE actions SET state='interrupted', note=? WHERE state='intent'",
                        ("the factory stopped before the result was recorded",))
        return rows

    def record_decision(self, d) -> None:
        self.db.execute(
            "INSERT INTO decisions (time, queue, idle, running, pending, pilots_running, n, action, count, reason)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (d.time, d.queue, d.work.idle if d.work else None, d.work.running if d.work else None,
             d.pilots.pending if d.pilots else None, d.pilots.running if d.pilots else None,
             d.n, d.action, d.count, d.reason))

    def prune(self, now: float) -> None:
        """At most hourly, deletes decisions and finished actions older than KEEP_SECONDS, but
        never each queue's last decision (``provisioner status``), an open intent, nor the
        newest action, whose id the next launch id follows (sqlite would hand it out again)."""
        if now < self._pruned + _PRUNE_EVERY:
            return
        self._pruned = now
        before = now - KEEP_SECONDS
        self.db.execute("DELETE FROM decisions WHERE time < ? AND id NOT IN (SELECT MAX(id) FROM decisions"
                        " GROUP BY queue)", (before,))
        self.db.execute("DELETE FROM actions WHERE time < ? AND state != 'intent' AND id < (SELECT MAX(id)"
                        " FROM actions)", (before,))

    def get_state(self, key: str):
        """What a plugin kept across restarts under ``key`` (JSON), or None."""
        row = self.db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_state(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def states(self, prefix: str) -> Dict[str, object]:
        """Every kept state whose key starts with ``prefix``, by key."""
        rows = self.db.execute("SELECT key, value FROM state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        return {key: json.loads(value) for key, value in rows}

    def drop_state(self, key: str) -> None:
        self.db.execute("DELETE FROM state WHERE key=?", (key,))

    def interrupted(self, queue: str, action: str, since: float) -> List[Dict]:
        """This queue's ``action`` rows interrupted by a stop, at ``since`` or later."""
        return self._rows("SELECT * FROM actions WHERE queue=? AND action=? AND state='interrupted' AND time>=?"
                          " ORDER BY id", (queue, action, since))

    def open_intents(self) -> List[Dict]:
        return self._rows("SELECT * FROM actions WHERE state='intent' ORDER BY id")

    def actions(self, queue: Optional[str] = None, limit: int = 100) -> List[Dict]:
        if queue:
            return self._rows("SELECT * FROM actions WHERE queue=? ORDER BY id DESC LIMIT ?", (queue, limit))
        return self._rows("SELECT * FROM actions ORDER BY id DESC LIMIT ?", (limit,))

    def last_decisions(self) -> Dict[str, Dict]:
        rows = self._rows("SELECT d.* FROM decisions d JOIN (SELECT queue, MAX(id) AS id FROM decisions"
                          " GROUP BY queue) m ON d.id = m.id ORDER BY d.queue")
        return {r["queue"]: r for r in rows}

    def _rows(self, sql, args=()):
        cur = self.db.execute(sql, args)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def _lock(path: str) -> int:
    """A lock file beside the ledger, locked for as long as the ledger is open. Two factories on
    one ledger would launch twice for the same demand, and the second would take the first's
    launches in progress for ones a crash interrupted. The kernel drops the lock when the
    process dies, kill -9 too, so a restart after a crash is never refused."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ProvisionerError(f"ledger {path}: in use by another running factory; stop it first, or give this one"
                               f" a statedir of its own") from None
    return fd


def _open_readonly(path: str) -> sqlite3.Connection:
    """The ledger opened without writing anything (no WAL switch, schema or epoch)."""
    path = os.path.abspath(path)
    # A WAL ledger is read through its -shm file. With none (the factory stopped) and none to be
    # made (a directory this process may not write, where no writer can be at work either),
    # sqlite reads it only as immutable.
    immutable = not os.path.exists(path + "-shm") and not os.access(os.path.dirname(path), os.W_OK)
    uri = "file:" + urllib.parse.quote(path) + ("?immutable=1" if immutable else "?mode=ro")
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            db.execute("SELECT 1 FROM decisions LIMIT 1")  # where a failure to open shows
        except sqlite3.DatabaseError:
            db.close()
            raise
    except sqlite3.DatabaseError as exc:
        raise ProvisionerError(f"ledger {path}: cannot read it: {exc}") from None
    return db
