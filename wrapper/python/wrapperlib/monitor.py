"""State reports (apfmon style: running, exiting with its code) as JSON over HTTP."""
import time


class Monitor:
    def __init__(self, url, method, log, fields, timeout=10):
        self.url = url
        self.method = method
        self.log = log
        self.fields = fields
        self.timeout = timeout

    def send(self, state, **extra):
        """Reports state; a failed report is logged, never fatal to the pilot."""
        if not self.url:
            return False
        # Imported here: urllib costs tens of ms and most pilots have no monitor.
        import json
        import urllib.request

        body = dict(self.fields, state=state, time=int(time.time()), **extra)
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body, sort_keys=True).encode(),
            method=self.method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                answer.read()
        except (OSError, ValueError) as exc:
            self.log.warning("monitor report %r to %s failed: %s" % (state, self.url, exc))
            return False
        self.log.debug("monitor report %r sent" % state)
        return True
