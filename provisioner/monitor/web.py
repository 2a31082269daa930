"""The factory's own web server: a status page with plots, Prometheus metrics, pilot logs.

``/`` status page (one row per queue, a plot per queue), ``/metrics`` Prometheus
exposition, ``/status.json``, ``/plot/<queue>.png``, ``/logs/...`` the pilot logs
under baseLogDir and nothing above it. Only pilot logs (``*.out``, ``*.err``,
``*.log``) are served: other files live under baseLogDir too (a CondorEC2 queue's
user-data with the pool token, the ledger when statedir is unset).
"""
import contextlib
import datetime
import errno
import html
import io
import json
import logging
import math
import os
import posixpath
import re
import sys
import threading
import time
import urllib.parse
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from provisioner.cloud import lifecycle
from provisioner.errors import ConfigError, ConfigErrors
from provisioner.monitor.base import Monitor

log = logging.getLogger("provisioner")

HISTORY = 2880  # decisions kept per queue for plots (two days of one-minute cycles)
LOG_SUFFIXES = (".out", ".err", ".log")  # what the pilot submit descriptions write
PLOT_PX, PLOT_DPI = (480, 192), 80
REFRESH = 60  # seconds between reloads of an open status page: a page left open on a screen stays current


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        labels = ["queue"]
        self.idle = Gauge("provisioner_idle_jobs", "Idle jobs waiting for the queue", labels, registry=self.registry)
        self.pending = Gauge("provisioner_pending_pilots", "Pilots or VMs submitted, not yet running", labels,
                             registry=self.registry)
        self.running = Gauge("provisioner_running_pilots", "Pilots or VMs running", labels, registry=self.registry)
        self.held = Gauge("provisioner_held_pilots", "Pilots held, or VMs failed", labels, registry=self.registry)
        self.vms = Gauge("provisioner_vms", "A VM queue's VMs by lifecycle state", ["queue", "state"],
                         registry=self.registry)
        self.paused = Gauge("provisioner_queue_paused", "1 while a hold on the queue's submissions is in force "
                            "(black-hole guard, interrupted launch, cloud error's pause, x509 proxy)", labels,
                            registry=self.registry)
        self.decision = Gauge("provisioner_last_decision", "Last policy result (+submit, -retire)", labels,
                              registry=self.registry)
        self.last_cycle = Gauge("provisioner_last_cycle_timestamp_seconds", "When the queue's last cycle began, "
                                "skipped or not", labels, registry=self.registry)
        self.interval = Gauge("provisioner_cycle_interval_seconds", "The queue's configured cycle interval", labels,
                              registry=self.registry)
        # Up to ten minutes: a large pool's condor_q or a slow cloud API takes minutes.
        self.duration = Histogram("provisioner_cycle_duration_seconds", "Time the factory's cycles take",
                                  buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
                                  registry=self.registry)
        self.actions = Counter("provisioner_actions", "Pilots or VMs acted on", ["queue", "action"],
                               registry=self.registry)
        self.skips = Counter("provisioner_skipped_cycles", "Cycles skipped (status unavailable)", labels,
                             registry=self.registry)
        self.failures = Counter("provisioner_failed_actions", "Submits or retires that failed", labels,
                                registry=self.registry)
        # read from a cycle's status: unknown after a skipped one
        self.status = (self.idle, self.pending, self.running, self.held, self.paused, self.decision)

    def record(self, d):
        self.last_cycle.labels(d.queue).set(d.time)
        if d.action == "skip":
            self.skips.labels(d.queue).inc()
            # Unknown now, as on the status page: a stale count would feed alerts and dashboards.
            _remove(self.status, d.queue)
            _remove_vms(self.vms, d.queue, {})
            return
        p = d.pilots
        self.idle.labels(d.queue).set(d.work.idle)
        self.pending.labels(d.queue).set(p.pending)
        self.running.labels(d.queue).set(p.running)
        self.held.labels(d.queue).set(p.held)
        self.paused.labels(d.queue).set(1 if d.pause else 0)
        self.decision.labels(d.queue).set(d.n)
        for state, count in p.states.items():
            if state in lifecycle.STATES:  # a Slurm queue's task states are not VMs
                self.vms.labels(d.queue, state).set(count)
        _remove_vms(self.vms, d.queue, p.states)
        if d.action in ("submit", "retire"):
            self.actions.labels(d.queue, d.action).inc(d.count)
        elif d.action == "failed":
            self.failures.labels(d.queue).inc()

    def start_counters(self, queue: str) -> None:
        """The queue's counters at 0 from its first cycle: a series that first appears at 1 is an
        increase() and rate() of nothing, so the queue's first failure would alert no one."""
        for counter in (self.skips, self.failures):
            counter.labels(queue)
        for action in ("submit", "retire"):
            self.actions.labels(queue, action)

    def forget(self, queue: str) -> None:
        _remove((*self.status, self.last_cycle, self.interval, self.skips, self.failures), queue)
        _remove_vms(self.vms, queue, {})
        for action in ("submit", "retire"):
            _remove((self.actions,), queue, action)


def _remove_vms(vms, queue: str, states) -> None:
    """Drops the queue's series of the VM states not in ``states``: no stale count of a state left."""
    for state in lifecycle.STATES:
        if state not in states:
            _remove((vms,), queue, state)


def _remove(metrics, *labels) -> None:
    """Each metric's series of these labels, if it has one."""
    for metric in metrics:
        with contextlib.suppress(KeyError):
            metric.remove(*labels)


class WebMonitor(Monitor):
    name = "web"
    # Seconds a connection may stay silent: each holds a thread of the factory's process, so
    # one that never sends its request (or stops reading a log) must not hold it for ever.
    request_timeout = 30

    def __init__(self, factory_id: str, log_dir: str, address: str = "127.0.0.1", port: int = 0, conf_path=""):
        # realpath: the served paths are resolved, so a baseLogDir reached through a symlink must be too
        self.factory_id, self.log_dir = factory_id, os.path.realpath(log_dir)
        self.address, self.port, self.conf_path = address, port, conf_path
        self.metrics = Metrics()
        self.history = defaultdict(lambda: deque(maxlen=HISTORY))
        self.last = {}
        self.lock = threading.Lock()
        self.plot_lock = threading.Lock()
        self.plots = {}  # queue -> (its last history row, PNG)
        self.server = None
        self.began = None  # time.monotonic() at the current cycle's start

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        monitor = self

        class Handler(_Handler):
            pass

        Handler.monitor = monitor
        Handler.timeout = self.request_timeout
        try:
            self.server = _Server((self.address, self.port), Handler)
        except OSError as exc:
            # in use or privileged: the port; anything else (no such address here): the address
            key = "logserver.port" if exc.errno in (errno.EADDRINUSE, errno.EACCES) else "logserver.address"
            raise ConfigErrors([ConfigError(self.conf_path, "Factory", key, f"cannot listen on "
                                            f"{self.address}:{self.port}: {exc.strerror}")]) from None
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="web-monitor", daemon=True).start()
        log.info("status page, metrics and pilot logs at %s", self.url)

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def on_cycle_start(self, queues):
        self.began = time.monotonic()
        with self.lock:
            for q in queues:
                self.metrics.interval.labels(q.name).set(q.interval)
                self.metrics.start_counters(q.name)

    def on_cycle(self, now, decisions):
        with self.lock:
            if self.began is not None:  # a cycle whose start it heard of
                self.metrics.duration.observe(time.monotonic() - self.began)
                self.began = None
            for d in decisions:
                self.metrics.record(d)
                self.last[d.queue] = d
                if d.action == "skip":  # unknown: a gap in the plot, not the last counts drawn on
                    self.history[d.queue].append((now, None, None, None, 0))
                else:
                    self.history[d.queue].append((now, d.work.idle, d.pilots.pending, d.pilots.running,
                                                  d.count if d.action == "submit" else 0))

    def reconfigure(self, cfg, keep=()):
        """A queue gone from the configuration, or disabled, leaves the page and the metrics,
        once it no longer winds its VMs down (its counters would start again from 0)."""
        names = {q.name for q in cfg.enabled_queues} | set(keep)
        with self.lock:
            for gone in [q for q in self.last if q not in names]:
                del self.last[gone]
                self.history.pop(gone, None)
                self.plots.pop(gone, None)
                self.metrics.forget(gone)

    def status(self):
        """Per queue; what a cycle's status tells (idle to paused_reason) is None after a skipped one."""
        with self.lock:
            return {q: _status(d) for q, d in sorted(self.last.items())}

    def plot(self, queue: str) -> bytes:
        with self.lock:
            rows = list(self.history.get(queue, ()))
        key = rows[-1] if rows else None  # holds the cycle's time: a new cycle, a new plot
        # Drawn once per cycle and one at a time: each view of a page of many queues (or many
        # viewers) must not draw every plot again, many at once, beside the cycles.
        with self.plot_lock:
            cached = self.plots.get(queue)
            if cached is None or cached[0] != key:
                cached = self.plots[queue] = (key, _draw(queue, rows))
        return cached[1]

    def page(self) -> str:
        rows, now = [], time.time()
        for q, s in self.status().items():
            when = _clock(s["time"], now)  # with its date when not today's: a factory that stopped cycling
            action = f"{s['action']} {s['count']}" if s["action"] in ("submit", "retire") else s["action"]
            vms = ", ".join(f"{n} {state}" for state, n in (s["vms"] or {}).items())
            paused = (f"until {_clock(s['paused_until'], s['time'])}: {s['paused_reason']}" if s["paused"]
                      else "no" if s["paused"] is False else "-")
            rows.append(f"<tr><td>{html.escape(q)}</td><td>{_n(s['idle'])}</td><td>{_n(s['pending'])}</td>"
                        f"<td>{_n(s['running'])}</td><td>{_n(s['held'])}</td><td>{html.escape(vms or '-')}</td>"
                        f"<td>{html.escape(paused)}</td><td>{when}</td><td>{html.escape(action)}</td>"
                        f"<td>{html.escape(s['reason'])}</td></tr>")
        # lazy, with its size: a browser may leave the plots out of view unfetched
        plots = "".join(f'<img alt="{html.escape(q)}" src="/plot/{urllib.parse.quote(q)}.png" loading="lazy" '
                        f'width="{PLOT_PX[0]}" height="{PLOT_PX[1]}">' for q in sorted(self.last))
        return (f"<!doctype html><html><head><meta charset='utf-8'>"
                f"<meta http-equiv='refresh' content='{REFRESH}'><title>{html.escape(self.factory_id)}</title>"
                "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
                "tr:nth-child(even){background:#eee}</style></head><body>"
                f"<h1>factory {html.escape(self.factory_id)}</h1><table><tr><th>queue</th><th>idle jobs</th>"
                "<th>pending</th><th>running</th><th>held</th><th>VMs</th><th>paused</th><th>at</th><th>decision</th>"
                "<th>why</th></tr>"
                f"{''.join(rows)}</table><p><a href='/metrics'>metrics</a> · <a href='/logs/'>pilot logs</a>"
                f" · <a href='/status.json'>status.json</a></p>{plots}</body></html>")


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        # A client that went away or stalled (a download stopped) is no fault of the factory:
        # one debug line, not a traceback on its stderr.
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("web: client gone: %s: %s", client_address[0], exc)
        else:
            log.exception("web: request from %s failed", client_address[0])


def _draw(queue: str, rows) -> bytes:
    buf = io.BytesIO()
    _figure(queue, rows).savefig(buf, format="png")
    return buf.getvalue()


def _figure(queue: str, rows):
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure  # not pyplot: its global figure list is not thread-safe
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(PLOT_PX[0] / PLOT_DPI, PLOT_PX[1] / PLOT_DPI), dpi=PLOT_DPI)
    ax = fig.subplots()
    if any(r[1] is not None for r in rows):
        xs = [datetime.datetime.fromtimestamp(r[0]) for r in rows]
        for i, label in ((1, "idle jobs"), (2, "pending pilots"), (3, "running pilots")):
            # NaN where a cycle was skipped: a gap, not the counts before it drawn on
            ax.step(xs, [math.nan if r[i] is None else r[i] for r in rows], where="post", label=label)
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        # counts: whole numbers from 0, also for a queue with nothing (matplotlib drew -0.05 to 0.05)
        ax.yaxis.set_major_locator(MaxNLocator("auto", steps=[1, 2, 2.5, 5, 10], integer=True))
        ax.set_ylim(0, max(1, ax.get_ylim()[1]))
        ax.legend(loc="upper left", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no status read yet", transform=ax.transAxes, ha="center", va="center")
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel("time (factory's local time)", fontsize=8)
    ax.set_ylabel("jobs / pilots", fontsize=8)
    ax.set_title(queue, fontsize=9)
    fig.tight_layout()
    return fig


def _byte_range(header, size: int):
    """(start, end) of a single ``Range: bytes=`` range of a log of ``size`` bytes; None: send it
    whole (no range, several, or malformed: RFC 9110 lets a server ignore them); ValueError: no
    byte of it exists. ``bytes=-N`` is the log's tail: what one wants of a large running pilot's."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if not m or m.groups() == ("", "") or (m[1] and m[2] and int(m[2]) < int(m[1])):
        return None
    if not m[1]:
        if int(m[2]) == 0 or size == 0:
            raise ValueError
        return max(0, size - int(m[2])), size
    if int(m[1]) >= size:
        raise ValueError
    return int(m[1]), min(size, int(m[2]) + 1) if m[2] else size


def _n(v):
    return "-" if v is None else v


def _status(d) -> dict:
    p = d.pilots
    return {"time": d.time, "action": d.action, "count": d.count, "n": d.n, "reason": d.reason, "note": d.note,
            "idle": d.work.idle if d.work else None,
            "pending": p.pending if p else None, "running": p.running if p else None,
            "held": p.held if p else None,
            # in lifecycle order; a Slurm queue's task states are not VMs
            "vms": {s: p.states[s] for s in lifecycle.STATES if p.states.get(s)} if p else None,
            "paused": bool(d.pause) if p else None,
            "paused_until": d.pause[0] if d.pause else None,
            "paused_reason": d.pause[1] if d.pause else None}


def _clock(t: float, ref: float) -> str:
    """Local time, with the date when not ``ref``'s day: a pause may last into the next."""
    when, day = time.localtime(t), time.localtime(ref)
    return time.strftime("%H:%M:%S" if when[:3] == day[:3] else "%Y-%m-%d %H:%M:%S", when)


class _Handler(BaseHTTPRequestHandler):
    monitor: WebMonitor = None

    def log_message(self, fmt, *args):
        log.debug("web: " + fmt, *args)

    def _send(self, code, body: bytes, ctype: str, headers=None):
        self._head(code, len(body), ctype, headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _head(self, code, length: int, ctype: str, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("X-Content-Type-Options", "nosniff")  # pilot output is never rendered as HTML
        self.end_headers()

    def do_GET(self):
        # surrogateescape: a log's name need not be UTF-8, and the listing's %-escaped bytes must find it
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path, errors="surrogateescape")
        m = self.monitor
        if path == "/":
            return self._send(200, m.page().encode(), "text/html; charset=utf-8")
        if path == "/metrics":
            with m.lock:
                body = generate_latest(m.metrics.registry)
            return self._send(200, body, CONTENT_TYPE_LATEST)
        if path == "/status.json":
            return self._send(200, json.dumps(m.status()).encode(), "application/json")
        if path.startswith("/plot/") and path.endswith(".png"):
            queue = path[len("/plot/"):-len(".png")]
            if queue not in m.last:
                return self._send(404, b"no such queue\n", "text/plain")
            return self._send(200, m.plot(queue), "image/png")
        if path == "/logs" or path.startswith("/logs/"):
            return self._logs(path[len("/logs"):])
        return self._send(404, b"not found\n", "text/plain")

    do_HEAD = do_GET  # uptime probes and `curl -I`: the headers of a GET, no body

    def _logs(self, rel: str):
        root = self.monitor.log_dir
        try:
            full = os.path.realpath(os.path.join(root, posixpath.normpath("/" + rel).lstrip("/")))
        except ValueError:  # a NUL byte in the path
            return self._send(404, b"no such log\n", "text/plain")
        if full != root and not full.startswith(root + os.sep):
            return self._send(403, b"outside the log directory\n", "text/plain")
        if os.path.isdir(full):
            names = sorted(n for n in os.listdir(full) if n.endswith(LOG_SUFFIXES)
                           or os.path.isdir(os.path.join(full, n)))
            here = os.path.relpath(full, root)
            base = "/logs/" + ("" if here == "." else urllib.parse.quote(os.fsencode(here)) + "/")
            links = "".join(f"<li><a href='{html.escape(base + urllib.parse.quote(os.fsencode(n)))}'>"
                            f"{html.escape(os.fsencode(n).decode(errors='replace'))}</a></li>" for n in names)
            return self._send(200, f"<!doctype html><ul>{links}</ul>".encode(), "text/html; charset=utf-8")
        if not full.endswith(LOG_SUFFIXES):
            return self._send(404, b"no such log\n", "text/plain")
        try:
            fh = open(full, "rb")
        except OSError:
            return self._send(404, b"no such log\n", "text/plain")
        with fh:
            # Streamed, as a pilot log may be large, and only as many bytes as announced:
            # a running pilot's log grows while it is sent.
            size = os.fstat(fh.fileno()).st_size
            try:
                span = _byte_range(self.headers.get("Range"), size)
            except ValueError:
                return self._send(416, b"range not in the log\n", "text/plain",
                                  {"Content-Range": f"bytes */{size}"})
            start, end = span or (0, size)
            fh.seek(start)
            left = end - start
            headers = {"Accept-Ranges": "bytes"}
            if span:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            self._head(206 if span else 200, left, "text/plain; charset=utf-8", headers)
            while left > 0 and self.command != "HEAD":
                chunk = fh.read(min(left, 1 << 16))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
