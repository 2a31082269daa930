"""AutoPyFactory's monitor REST API (apfmon), so existing dashboards keep working.

At start ``PUT /factories/<id>``; each cycle ``PUT /labels`` for queues not yet
announced, ``PUT /jobs`` for new pilots, ``POST /labels/<id>:<queue>`` with the
decision's reasons as status. The calls are made by one thread of their own, so
a slow or dead monitor never delays a cycle; a failing monitor is logged, never
fatal. When the monitor cannot be reached, the rest of that cycle's calls are
dropped rather than each waiting out its timeout.
"""
import json
import logging
import queue
import threading
import urllib.error
import urllib.parse
import urllib.request

from provisioner import __version__
from provisioner.monitor.base import Monitor

log = logging.getLogger("provisioner")

BACKLOG = 10  # cycles waiting to be reported; beyond, a cycle goes unreported


def check_url(url):
    """The config check of monitorURL; never echoes the value, which may hold a password."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # raises ValueError on a bad port
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry user:password@ (apfmon takes none)"
    return None


class _Unreachable(Exception):
    pass


class APFMon(Monitor):
    name = "apfmon"

    def __init__(self, url: str, factory_id: str, queues, email=None, log_url=None, timeout: float = 5.0):
        self.url, self.factory_id = url.rstrip("/"), factory_id
        self.queues = {q.name: q for q in queues}
        self.email, self.log_url, self.timeout = email, log_url, timeout
        self.announced = set()
        self.pending = queue.Queue()  # bounded by on_cycle, so that stop never blocks
        self.stopping = threading.Event()
        self.worker = None

    def _send(self, method: str, path: str, body) -> bool:
        """True if taken, False if the monitor answered with an error; _Unreachable if it did not answer."""
        data = json.dumps(body).encode()
        try:
            req = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
            return True
        except urllib.error.HTTPError as exc:
            exc.close()
            log.warning("monitor %s %s failed: HTTP %s", method, path, exc.code)
            return False
        except Exception as exc:  # URLError, timeouts, a broken HTTP answer: the worker must live on
            log.warning("monitor %s %s failed: %s; the rest of this cycle goes unreported", method, path,
                        getattr(exc, "reason", exc))
            raise _Unreachable from None

    def _label(self, queue_name: str) -> str:
        return urllib.parse.quote(f"{self.factory_id}:{queue_name}", safe=":")

    def reconfigure(self, cfg, keep=()):
        self.queues = {q.name: q for q in cfg.queues}  # replaced, never changed: cycles queued keep theirs

    def start(self):
        self.pending.put(None)  # the factory's own announcement comes first
        self.worker = threading.Thread(target=self._work, name="apfmon", daemon=True)
        self.worker.start()

    def stop(self):
        """Reports what is queued, waiting at most a timeout and a second; an unreachable monitor ends it."""
        if self.worker is None:
            return
        self.stopping.set()
        self.pending.put(StopIteration)
        self.worker.join(self.timeout + 1)
        self.worker = None

    def on_cycle(self, now, decisions):
        if self.pending.qsize() >= BACKLOG:
            log.warning("monitor is %d cycles behind: the cycle at %.0f goes unreported", BACKLOG, now)
            return
        self.pending.put((list(decisions), self.queues))

    def _work(self):
        while True:
            item = self.pending.get()
            if item is StopIteration:
                return
            try:
                if item is None:
                    self._send("PUT", f"/factories/{urllib.parse.quote(self.factory_id, safe='')}",
                               {"version": __version__, "email": self.email, "url": self.log_url})
                else:
                    self._report(*item)
            except _Unreachable:
                if self.stopping.is_set():
                    return
            except Exception:  # a bug here must not end the reports for good
                log.exception("monitor report failed")

    def _report(self, decisions, queues):
        new = [d.queue for d in decisions if d.queue not in self.announced]
        if new:
            labels = [{"name": n, "factory": self.factory_id, "wmsqueue": queues[n].wmsqueue,
                       "batchqueue": queues[n].batchqueue} for n in new if n in queues]
            if self._send("PUT", "/labels", labels):
                self.announced.update(new)
        jobs = [{"cid": i, "label": d.queue, "factory": self.factory_id}
                for d in decisions if d.action == "submit" for i in d.ids]
        if jobs:
            self._send("PUT", "/jobs", jobs)
        for d in decisions:
            self._send("POST", f"/labels/{self._label(d.queue)}", {"status": d.reason})
