"""AutoPyFactory's monitor REST API (apfmon), so existing dashboards keep working.

At start ``PUT /factories/<id>``; each cycle ``PUT /labels`` for queues not yet
announced, ``PUT /jobs`` for new pilots, ``POST /labels/<id>:<queue>`` with the
decision's reasons as status. A failing monitor is logged, never fatal.
"""
import json
import logging
import urllib.error
import urllib.request

from provisioner import __version__
from provisioner.monitor.base import Monitor

log = logging.getLogger("provisioner")


class APFMon(Monitor):
    name = "apfmon"

    def __init__(self, url: str, factory_id: str, queues, email=None, log_url=None, timeout: float = 5.0):
        self.url, self.factory_id = url.rstrip("/"), factory_id
        self.queues = {q.name: q for q in queues}
        self.email, self.log_url, self.timeout = email, log_url, timeout
        self.announced = set()

    def _send(self, method: str, path: str, body) -> bool:
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
            return True
        except (urllib.error.URLError, OSError) as exc:
            log.warning("monitor %s %s failed: %s", method, path, getattr(exc, "reason", exc))
            return False

    def start(self):
        self._send("PUT", f"/factories/{self.factory_id}",
                   {"version": __version__, "email": self.email, "url": self.log_url})

    def on_cycle(self, now, decisions):
        new = [d.queue for d in decisions if d.queue not in self.announced]
        if new:
            labels = [{"name": n, "factory": self.factory_id, "wmsqueue": self.queues[n].wmsqueue,
                       "batchqueue": self.queues[n].batchqueue} for n in new if n in self.queues]
            if self._send("PUT", "/labels", labels):
                self.announced.update(new)
        jobs = [{"cid": i, "label": d.queue, "factory": self.factory_id}
                for d in decisions if d.action == "submit" for i in d.ids]
        if jobs:
            self._send("PUT", "/jobs", jobs)
        for d in decisions:
            self._send("POST", f"/labels/{self.factory_id}:{d.queue}", {"status": d.reason or d.note})
