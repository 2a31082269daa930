"""Monitors over real HTTP on loopback: apfmon REST calls, the status page, metrics, logs."""
import contextlib
import html
import http.client
import json
import logging
import math
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from provisioner import config as configmod
from provisioner.errors import ConfigErrors
from provisioner.factory import Factory
from provisioner.ledger import Ledger
from provisioner.monitor.apfmon import APFMon
from provisioner.monitor.web import WebMonitor
from provisioner.services import Services

QUEUES = ("[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\nbatchsubmitplugin = CondorLocal\n"
          "[A]\nwmsqueue = WA\n[B]\nwmsqueue = WB\n")


@pytest.fixture
def recorder():
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _record(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            calls.append((self.command, self.path, json.loads(body) if body else None))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = _record

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def test_apfmon_calls(write_conf, emulated, recorder):
    url, calls = recorder
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    mon = APFMon(url, "test-factory", factory.config.queues)
    factory.monitors.append(mon)
    mon.start()
    pool.schedd().add_jobs(2, TargetQueue="WA")
    factory.cycle()
    clock.advance_to(clock.now() + 60)
    factory.cycle()
    mon.stop()  # reports what is queued
    assert calls[0][:2] == ("PUT", "/factories/test-factory")
    labels = [c for c in calls if c[:2] == ("PUT", "/labels")]
    assert len(labels) == 1 and {x["name"] for x in labels[0][2]} == {"A", "B"}
    (jobs,) = [c for c in calls if c[:2] == ("PUT", "/jobs")]
    assert [j["label"] for j in jobs[2]] == ["A", "A"] and all("." in j["cid"] for j in jobs[2])
    status = [c for c in calls if c[0] == "POST"]
    assert [c[1] for c in status] == ["/labels/test-factory:A", "/labels/test-factory:B"] * 2
    assert "ready=2" in status[0][2]["status"]


def test_unreachable_monitor_never_stops_the_cycle(write_conf, emulated, caplog):
    factory, pool, *_ = emulated(write_conf(QUEUES))
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as s:
        dead = f"http://127.0.0.1:{s.server_address[1]}"
    mon = APFMon(dead, "test-factory", factory.config.queues, timeout=2)
    factory.monitors.append(mon)
    mon.start()
    pool.schedd().add_jobs(1, TargetQueue="WB")
    decisions = factory.cycle()
    mon.stop()
    assert [d.count for d in decisions] == [0, 1]
    assert "monitor PUT /factories/test-factory failed" in caplog.text


def test_silent_monitor_never_delays_the_cycle_and_stop_leaves_no_thread(write_conf, emulated, caplog):
    factory, pool, *_ = emulated(write_conf(QUEUES))
    with socket.socket() as silent:  # takes connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        mon = APFMon(f"http://127.0.0.1:{silent.getsockname()[1]}", "test-factory", factory.config.queues,
                     timeout=3)
        factory.monitors.append(mon)
        mon.start()
        pool.schedd().add_jobs(1, TargetQueue="WB")
        began = time.monotonic()
        assert [d.count for d in factory.cycle()] == [0, 1]
        assert time.monotonic() - began < mon.timeout
        worker = mon.worker
        mon.stop()
        assert not worker.is_alive()
    assert "the rest of this cycle goes unreported" in caplog.text


# B's submissions fail at the schedd, which refuses the grid type.
BAD_SUBMIT = "batchsubmit.condorlocal.condor_attributes = universe = grid, grid_resource = bogus x\n"


def test_apfmon_quotes_names_and_reports_why_a_submit_failed(write_conf, emulated, recorder):
    url, calls = recorder
    conf = write_conf(QUEUES + BAD_SUBMIT, factory_id="apf+test@bnl")
    factory, pool, *_ = emulated(conf)
    mon = APFMon(url, "apf+test@bnl", factory.config.queues)
    factory.monitors.append(mon)
    mon.start()
    pool.schedd().add_jobs(1, TargetQueue="WB")
    factory.cycle()
    mon.stop()
    assert calls[0][:2] == ("PUT", "/factories/apf%2Btest%40bnl")
    (status,) = [c for c in calls if c[:2] == ("POST", "/labels/apf%2Btest%40bnl:B")]
    assert "ready=1" in status[2]["status"] and "submit failed" in status[2]["status"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("line, key, message", [
    ("monitorURL = apfmon.example.org/api", "monitorurl", "must be an http:// or https:// URL with a host"),
    ("monitorURL = https://apf:hunter2@apfmon.example.org/", "monitorurl", "must not carry user:password@"),
    ("monitorURL = http://apfmon.example.org:80x/", "monitorurl", "not a URL"),
    ("logserver.port = 70000", "logserver.port", "must be at most 65535, got 70000"),
])
def test_bad_monitor_options_are_one_line_errors(write_conf, line, key, message):
    conf = write_conf(QUEUES, factory_extra=line + "\n")
    for args in (("check-config", "--conf", conf), ("run", "--once", "--emulate", "--conf", conf)):
        out = cli(*args)
        assert out.returncode == 2
        assert out.stderr.startswith(f"error: {conf}: [Factory] {key}: ") and len(out.stderr.splitlines()) == 1
        assert message in out.stderr and "hunter2" not in out.stderr


def test_busy_logserver_port_is_a_one_line_error(write_conf):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        conf = write_conf(QUEUES, factory_extra=f"logserver.enabled = True\nlogserver.port = {port}\n")
        out = cli("run", "--once", "--emulate", "--conf", conf)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1] == (f"error: {conf}: [Factory] logserver.port: cannot listen on "
                                           f"127.0.0.1:{port}: Address already in use")


def test_an_address_not_on_this_host_is_blamed_on_the_address(tmp_path):
    mon = WebMonitor("test-factory", str(tmp_path), "192.0.2.7", 0, conf_path="factory.conf")  # TEST-NET-1
    with pytest.raises(ConfigErrors, match=r"^factory.conf: \[Factory\] logserver.address: cannot listen on 192.0.2.7"):
        mon.start()


def request(mon, method, path, headers=None):
    conn = http.client.HTTPConnection(*mon.server.server_address[:2], timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def get(mon, path):
    code, headers, body = request(mon, "GET", path)
    return code, headers.get("Content-Type"), body


@contextlib.contextmanager
def serving(log_dir, factory=None):
    """A started WebMonitor on log_dir, a monitor of ``factory`` if given; stopped after."""
    mon = WebMonitor("test-factory", str(log_dir), port=0)
    if factory is not None:
        factory.monitors.append(mon)
    mon.start()
    try:
        yield mon
    finally:
        mon.stop()


def scrape(mon) -> dict:
    """{(sample name, frozenset of its labels): value} of /metrics, as Prometheus parses it."""
    code, ctype, body = get(mon, "/metrics")
    assert code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def sample(name, **labels):
    return name, frozenset(labels.items())


def queues_in(metrics) -> set:
    return {dict(labels).get("queue") for _, labels in metrics} - {None}


def test_reload_announces_new_queues_and_forgets_removed_ones(write_conf, emulated, recorder, tmp_path):
    url, calls = recorder
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    apf, web = APFMon(url, "test-factory", factory.config.queues), WebMonitor("test-factory", str(tmp_path), port=0)
    for mon in (apf, web):
        factory.monitors.append(mon)
        mon.start()
    try:
        factory.cycle()
        # what a SIGHUP reload hands the monitors: B gone, C new
        cfg = configmod.load(write_conf(QUEUES.replace("[B]\nwmsqueue = WB\n", "[C]\nwmsqueue = WC\n")))
        for mon in (apf, web):
            mon.reconfigure(cfg)
        factory = Factory(cfg, factory.services, factory.ledger, factory.monitors)
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        apf.stop()
        labels = [x for c in calls if c[:2] == ("PUT", "/labels") for x in c[2]]
        assert [(x["name"], x["wmsqueue"]) for x in labels] == [("A", "WA"), ("B", "WB"), ("C", "WC")]
        assert sorted(json.loads(get(web, "/status.json")[2])) == ["A", "C"]
        assert queues_in(scrape(web)) == {"A", "C"}
    finally:
        apf.stop()
        web.stop()


def test_a_queue_disabled_by_a_reload_leaves_the_status_page_and_metrics(write_conf, emulated, tmp_path):
    factory, *_ = emulated(write_conf(QUEUES))
    with serving(tmp_path, factory) as web:
        factory.cycle()
        web.reconfigure(configmod.load(write_conf(QUEUES.replace("[B]\n", "[B]\nenabled = False\n"))))
        assert sorted(json.loads(get(web, "/status.json")[2])) == ["A"]
        metrics = scrape(web)
        assert queues_in(metrics) == {"A"}
        for name in ("provisioner_last_cycle_timestamp_seconds", "provisioner_cycle_interval_seconds",
                     "provisioner_held_pilots", "provisioner_queue_paused"):
            assert sample(name, queue="A") in metrics
        assert get(web, "/plot/B.png")[0] == 404


def test_a_skipped_cycle_leaves_no_stale_counts_in_the_metrics(write_conf, emulated, tmp_path):
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    with serving(tmp_path, factory) as web:
        pool.schedd().add_jobs(5, TargetQueue="WA")
        factory.cycle()
        read = ("provisioner_idle_jobs", "provisioner_pending_pilots", "provisioner_running_pilots",
                "provisioner_held_pilots", "provisioner_queue_paused", "provisioner_last_decision")
        metrics = scrape(web)
        assert metrics[sample("provisioner_idle_jobs", queue="A")] == 5
        assert all(sample(name, queue="A") in metrics for name in read)
        pool.schedd().down = True
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        metrics = scrape(web)
        assert metrics[sample("provisioner_skipped_cycles_total", queue="A")] == 1
        assert not [name for name in read if sample(name, queue="A") in metrics]
        assert json.loads(get(web, "/status.json")[2])["A"]["idle"] is None


def test_a_queues_first_skip_or_failure_follows_a_zero_sample(write_conf, emulated, tmp_path):
    # The counters appeared at 1 on a queue's first skip or failed submit: Prometheus saw no
    # increase, so `increase(provisioner_failed_actions_total[10m]) > 0` missed it.
    factory, pool, clock, _ = emulated(write_conf(QUEUES + BAD_SUBMIT))
    counters = ("provisioner_skipped_cycles_total", "provisioner_failed_actions_total")
    with serving(tmp_path, factory) as web:
        factory.cycle()
        metrics = scrape(web)
        for queue in ("A", "B"):
            assert [metrics[sample(name, queue=queue)] for name in counters] == [0, 0], queue
            assert [metrics[sample("provisioner_actions_total", queue=queue, action=action)]
                    for action in ("submit", "retire")] == [0, 0], queue
        pool.schedd().add_jobs(1, TargetQueue="WB")
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        assert scrape(web)[sample("provisioner_failed_actions_total", queue="B")] == 1


def test_when_each_queue_last_cycled_and_how_often_it_should(write_conf, emulated, tmp_path):
    # An alert on a factory that stopped cycling needs both: time() - last > 3 * interval.
    factory, pool, clock, _ = emulated(write_conf(QUEUES.replace("WB\n", "WB\napfqueue.sleep = 120\n")))
    with serving(tmp_path, factory) as web:
        began = clock.now()
        factory.cycle()
        metrics = scrape(web)
        for queue, interval in (("A", 60), ("B", 120)):
            assert metrics[sample("provisioner_last_cycle_timestamp_seconds", queue=queue)] == began
            assert metrics[sample("provisioner_cycle_interval_seconds", queue=queue)] == interval
        pool.schedd().down = True  # a skipped cycle is a cycle: the factory is not stuck
        clock.advance_to(began + 60)
        factory.cycle()
        metrics = scrape(web)
        assert metrics[sample("provisioner_last_cycle_timestamp_seconds", queue="A")] == began + 60
        assert metrics[sample("provisioner_last_cycle_timestamp_seconds", queue="B")] == began  # not due


def test_cycle_duration_is_a_histogram_of_the_factorys_cycles(write_conf, emulated, tmp_path):
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    source = next(iter(factory.sources.values()))  # read each cycle: both queues are due in both
    read = source.read

    def slow_read(now):  # a slow condor_q: the cycle takes at least this long
        time.sleep(0.3)
        return read(now)

    source.read = slow_read
    with serving(tmp_path, factory) as web:
        factory.cycle()
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        metrics = scrape(web)
    assert metrics[sample("provisioner_cycle_duration_seconds_count")] == 2
    assert metrics[sample("provisioner_cycle_duration_seconds_sum")] >= 0.6
    assert metrics[sample("provisioner_cycle_duration_seconds_bucket", le="0.25")] == 0
    assert metrics[sample("provisioner_cycle_duration_seconds_bucket", le="+Inf")] == 2


def test_status_page_metrics_plots_and_logs(write_conf, emulated, tmp_path):
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    logs = tmp_path / "logs"
    with serving(logs, factory) as mon:
        pool.schedd().add_jobs(5, TargetQueue="WA")
        factory.cycle()
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        code, ctype, body = get(mon, "/")
        assert code == 200 and "<td>A</td><td>5</td><td>5</td>" in body.decode()
        code, ctype, body = get(mon, "/metrics")
        assert code == 200 and 'provisioner_idle_jobs{queue="A"} 5.0' in body.decode()
        assert 'provisioner_actions_total{action="submit",queue="A"} 5.0' in body.decode()
        code, ctype, body = get(mon, "/plot/A.png")
        assert code == 200 and ctype == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
        assert get(mon, "/plot/nope.png")[0] == 404
        status = json.loads(get(mon, "/status.json")[2])
        assert status["A"]["pending"] == 5 and status["B"]["action"] == "none"
        pilot_dir = next(p for p in logs.rglob("A") if p.is_dir())
        (pilot_dir / "7.0.out").write_text("pilot says hello\n")
        rel = pilot_dir.relative_to(logs)
        assert "7.0.out" in get(mon, f"/logs/{rel}/")[2].decode()
        assert get(mon, f"/logs/{rel}/7.0.out")[2] == b"pilot says hello\n"
        (tmp_path / "secret.conf").write_text("key")
        assert get(mon, "/logs/../secret.conf")[0] in (403, 404)
        assert get(mon, "/logs/%2e%2e/secret.conf")[0] in (403, 404)


def links(mon, path):
    return [html.unescape(h) for h in re.findall(r"href='([^']*)'", get(mon, path)[2].decode())]


def test_only_pilot_logs_are_served_and_listings_link_to_them(tmp_path):
    logs = tmp_path / "logs"
    queue_dir = logs / "2024-05-01" / "Q."  # a queue name may end in a dot
    queue_dir.mkdir(parents=True)
    (queue_dir / "7.0.out").write_text("pilot says hello\n")
    (logs / "EC2.user-data").write_text('content: "IDTOKEN-of-the-pool"\n')  # CondorEC2 writes it here
    (logs / "ledger.sqlite").write_bytes(b"SQLite format 3\0")  # the ledger, when statedir is unset
    (queue_dir / "7.1.log").symlink_to(logs / "EC2.user-data")
    with serving(logs) as mon:
        (day,) = links(mon, "/logs/")  # followed as a browser would
        (queue,) = links(mon, day)
        out, _ = links(mon, queue)
        assert out == "/logs/2024-05-01/Q./7.0.out"
        conn = http.client.HTTPConnection(*mon.server.server_address[:2], timeout=10)
        conn.request("GET", out)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"pilot says hello\n"
        assert resp.getheader("X-Content-Type-Options") == "nosniff"
        for path in ("/logs/EC2.user-data", "/logs/ledger.sqlite", "/logs/2024-05-01/Q./7.1.log", "/logs/%00"):
            code, _, body = get(mon, path)
            assert code == 404 and b"IDTOKEN" not in body, path


def test_log_dir_reached_through_a_symlink(tmp_path):
    (tmp_path / "real" / "A").mkdir(parents=True)
    (tmp_path / "real" / "A" / "1.0.err").write_text("oops\n")
    (tmp_path / "logs").symlink_to(tmp_path / "real")
    with serving(tmp_path / "logs") as mon:
        assert get(mon, "/logs/A/1.0.err")[:3:2] == (200, b"oops\n")


def test_a_large_log_is_sent_whole_in_chunks(tmp_path):
    body = bytes(range(256)) * 1200  # several chunks, not a multiple of one
    (tmp_path / "big.out").write_bytes(body)
    with serving(tmp_path) as mon:
        assert get(mon, "/logs/big.out")[::2] == (200, body)


def test_status_page_says_why_a_submit_failed(write_conf, emulated):
    factory, pool, _, ledger = emulated(write_conf(QUEUES + BAD_SUBMIT))
    with serving("unused", factory) as mon:
        pool.schedd().add_jobs(1, TargetQueue="WB")
        factory.cycle()
        assert "submit failed: submit to schedd failed" in json.loads(get(mon, "/status.json")[2])["B"]["reason"]
        assert "ready=1 (ready=1 pending=0); submit failed: submit to schedd failed" in get(mon, "/")[2].decode()
        assert "submit failed" in ledger.last_decisions()["B"]["reason"]  # what `provisioner status` shows


def test_a_connection_that_never_sends_a_request_is_closed(tmp_path):
    # Each connection holds a thread of the factory's process: one sending nothing must not
    # hold it for ever (thousands of them would leave the factory no thread to start).
    mon = WebMonitor("test-factory", str(tmp_path), port=0)
    mon.request_timeout = 1
    mon.start()
    try:
        with socket.create_connection(mon.server.server_address[:2], timeout=10) as idle:
            began = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server, not by this socket's timeout
            assert time.monotonic() - began < 5
        assert get(mon, "/status.json")[0] == 200
    finally:
        mon.stop()


def test_a_client_leaving_during_a_log_download_is_one_debug_line(tmp_path, caplog, capfd):
    (tmp_path / "big.out").write_bytes(b"x" * (16 << 20))
    with serving(tmp_path) as mon:
        with caplog.at_level(logging.DEBUG, logger="provisioner"):
            with socket.create_connection(mon.server.server_address[:2], timeout=10) as leaving:
                leaving.sendall(b"GET /logs/big.out HTTP/1.0\r\n\r\n")
                assert leaving.recv(12).startswith(b"HTTP/1.0 200")
                leaving.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
            deadline = time.monotonic() + 10
            while not any("client gone" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the aborted download was not logged"
                time.sleep(0.05)
        assert "Traceback" not in capfd.readouterr().err  # nothing on the factory's stderr
        assert get(mon, "/status.json")[0] == 200


def test_head_gives_the_headers_of_a_get_and_no_body(write_conf, emulated, tmp_path):
    # uptime probes and `curl -I` send HEAD: it was answered 501
    factory, *_ = emulated(write_conf(QUEUES))
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "7.0.out").write_text("pilot says hello\n")
    with serving(logs, factory) as mon:
        factory.cycle()
        for path in ("/", "/status.json", "/metrics", "/plot/A.png", "/logs/", "/logs/7.0.out", "/nope"):
            code, headers, body = request(mon, "GET", path)
            head_code, head_headers, head_body = request(mon, "HEAD", path)
            assert (head_code, head_body) == (code, b""), path
            assert head_headers["Content-Length"] == headers["Content-Length"] == str(len(body)), path
            assert head_headers["Content-Type"] == headers["Content-Type"], path


def test_plots_are_lazy_images_with_labelled_axes(write_conf, emulated):
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    with serving("unused", factory) as mon:
        pool.schedd().add_jobs(5, TargetQueue="WA")
        factory.cycle()
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        # A page of 200 queues made the browser fetch 200 plots at once, none of them in view.
        imgs = re.findall(r"<img [^>]*>", get(mon, "/")[2].decode())
        assert len(imgs) == 2 and all('loading="lazy"' in i for i in imgs)
        code, ctype, png = get(mon, "/plot/A.png")
        width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR
        assert f'width="{width}" height="{height}"' in imgs[0]
        # The y axis had no label, the x axis "minutes" since the oldest point kept.
        from provisioner.monitor import web
        ax = web._figure("A", list(mon.history["A"])).axes[0]
        assert ax.get_ylabel() == "jobs / pilots" and "time" in ax.get_xlabel()
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["idle jobs", "pending pilots",
                                                                       "running pilots"]


def test_a_skipped_cycle_is_a_gap_in_the_plot_and_counts_start_at_zero(write_conf, emulated):
    from provisioner.monitor import web

    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    with serving("unused", factory) as mon:
        pool.schedd().add_jobs(5, TargetQueue="WA")
        for down in (False, True, False):  # the schedd unreachable in the second cycle
            pool.schedd().down = down
            factory.cycle()
            clock.advance_to(clock.now() + 60)
        assert get(mon, "/plot/A.png")[0] == 200
        # The idle jobs were drawn on at 5 through the cycle that could not read them.
        idle = web._figure("A", list(mon.history["A"])).axes[0].get_lines()[0]
        assert [math.isnan(y) for y in idle.get_ydata()] == [False, True, False]
        # A queue with nothing had a y axis from -0.05 to 0.05 jobs.
        ax = web._figure("B", list(mon.history["B"])).axes[0]
        assert ax.get_ylim()[0] == 0 and all(t == int(t) for t in ax.get_yticks())
    # A queue whose every cycle was skipped had empty axes from 0 to 1, nothing said.
    skipped = web._figure("C", [(clock.now(), None, None, None, 0)]).axes[0]
    assert [t.get_text() for t in skipped.texts] == ["no status read yet"]


def test_a_plot_is_drawn_once_per_cycle_however_often_it_is_fetched(write_conf, emulated, monkeypatch):
    # Each fetch drew it anew: a page of 200 queues took 24 s of CPU from the factory and
    # stretched its cycles sixfold.
    from matplotlib.figure import Figure

    drawn = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **kw: drawn.append(1) or savefig(fig, *a, **kw))
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    with serving("unused", factory) as mon:
        factory.cycle()
        first = {get(mon, "/plot/A.png")[2] for _ in range(3)}
        assert len(first) == 1 and len(drawn) == 1
        pool.schedd().add_jobs(5, TargetQueue="WA")
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        assert get(mon, "/plot/A.png")[2] not in first and len(drawn) == 2


def test_range_requests_on_a_log(tmp_path):
    # `curl -r -10000` on a large running pilot's log sent the whole log
    body = bytes(range(256)) * 400
    (tmp_path / "big.out").write_bytes(body)

    def ranged(spec):
        code, headers, got = request(mon, "GET", "/logs/big.out", {"Range": spec})
        return code, headers.get("Content-Range"), got

    size = len(body)
    with serving(tmp_path) as mon:
        assert ranged("bytes=-1000") == (206, f"bytes {size - 1000}-{size - 1}/{size}", body[-1000:])
        assert ranged("bytes=10-19") == (206, f"bytes 10-19/{size}", body[10:20])
        assert ranged("bytes=100000-") == (206, f"bytes 100000-{size - 1}/{size}", body[100000:])
        assert ranged(f"bytes=0-{size * 2}") == (206, f"bytes 0-{size - 1}/{size}", body)
        assert ranged(f"bytes={size}-")[:2] == (416, f"bytes */{size}")
        for ignored in ("bytes=0-1,5-6", "bytes=9-2", "lines=1-2", "bytes=x-"):  # the whole log
            assert ranged(ignored) == (200, None, body), ignored
        assert get(mon, "/logs/big.out")[::2] == (200, body)


CLOUD = """[CLOUD]
wmsstatusplugin = Condor
batchstatusplugin = Cloud
schedplugin = VMDemand
batchsubmitplugin = EC2
batchsubmit.ec2.ami_id = ami-12c6146b
batchsubmit.ec2.instance_types = m5.2xlarge
batchsubmit.ec2.collector = cm.example.org
batchsubmit.ec2.boot_timeout = 600
batchsubmit.ec2.guard_failures = 3
batchsubmit.ec2.guard_backoff = 1800
"""


def cloud_factory(write_conf, tmp_path, conf=CLOUD, **emulator):
    """A factory of the CLOUD queue on an emulated EC2 in virtual time: (factory, pool, clock, cloud)."""
    from provisioner.clock import VirtualClock
    from provisioner.cloud.emulator import EmulatedEC2
    from provisioner.condor.emulator import Pool

    cfg = configmod.load(write_conf(conf))
    clock = VirtualClock(1_700_000_000.0)
    pool = Pool(clock)
    cloud = EmulatedEC2(clock, pool, boot_time=120, **emulator)
    services = Services(cfg.factory_id, clock, pool, log_dir=str(tmp_path / "logs"), extra={"ec2": cloud.client})
    return Factory(cfg, services, Ledger(None, cfg.factory_id)), pool, clock, cloud


def test_vms_by_state_held_and_paused_by_the_black_hole_guard(write_conf, tmp_path):
    # a broken image: no VM joins
    factory, pool, clock, _ = cloud_factory(write_conf, tmp_path, boot_failure_rate=1.0)

    def vms(metrics):
        return {dict(labels)["state"]: v for (name, labels), v in metrics.items() if name == "provisioner_vms"}

    with serving(tmp_path, factory) as web:
        pool.schedd().add_jobs(24, RequestCpus=1, RequestMemory=2048)
        factory.cycle()  # three VMs launched
        clock.advance_to(clock.now() + 60)
        factory.cycle()
        metrics = scrape(web)
        assert vms(metrics) == {"booting": 3}
        assert metrics[sample("provisioner_queue_paused", queue="CLOUD")] == 0
        assert metrics[sample("provisioner_held_pilots", queue="CLOUD")] == 0
        status = json.loads(get(web, "/status.json")[2])["CLOUD"]
        assert (status["vms"], status["held"], status["paused"], status["paused_until"]) == ({"booting": 3}, 0,
                                                                                             False, None)
        assert "<td>3 booting</td><td>no</td>" in get(web, "/")[2].decode()
        clock.advance_to(clock.now() + 700)  # past the boot timeout: three boot failures trip the guard
        tripped = clock.now()
        factory.cycle()
        metrics = scrape(web)
        assert vms(metrics) == {"failed": 3}  # none left booting: no stale series
        assert metrics[sample("provisioner_held_pilots", queue="CLOUD")] == 3
        assert metrics[sample("provisioner_queue_paused", queue="CLOUD")] == 1
        status = json.loads(get(web, "/status.json")[2])["CLOUD"]
        assert (status["vms"], status["held"], status["paused"], status["paused_until"]) == ({"failed": 3}, 3,
                                                                                             True, tripped + 1800)
        assert status["paused_reason"].startswith("black-hole guard: 3 boot failures")
        until = time.strftime("%H:%M:%S", time.localtime(tripped + 1800))
        assert (f"<td>3</td><td>3 failed</td><td>until {until}: {html.escape(status['paused_reason'])}</td>"
                in get(web, "/")[2].decode())
        clock.advance_to(clock.now() + 60)
        factory.cycle()  # the failed VMs are terminated; the pause holds
        metrics = scrape(web)
        assert vms(metrics) == {} and metrics[sample("provisioner_held_pilots", queue="CLOUD")] == 0
        assert metrics[sample("provisioner_queue_paused", queue="CLOUD")] == 1
        assert json.loads(get(web, "/status.json")[2])["CLOUD"]["vms"] == {}
        clock.advance_to(clock.now() + 1800)  # the back-off is over
        factory.cycle()
        assert scrape(web)[sample("provisioner_queue_paused", queue="CLOUD")] == 0


def _no_vm_named(cloud, monkeypatch):
    monkeypatch.setattr(cloud, "run_instances", lambda **request: {"ReservationId": "r-1", "Instances": []})


@pytest.mark.parametrize("fault, holds, why", [
    # a configuration error from the cloud: the queue holds its launches for error_pause
    (lambda cloud, _: cloud.fail_next("run_instances", "AuthFailure"), True, "AuthFailure: emulated AuthFailure"),
    # a launch answered as done naming no VM: launching again would launch more, unseen
    (_no_vm_named, True, "without naming any VM"),
    # these fail one cycle and hold nothing: the next cycle launches
    (lambda cloud, _: cloud.fail_next("run_instances", "InsufficientInstanceCapacity", status=500), False,
     "InsufficientInstanceCapacity"),
    (lambda cloud, _: cloud.fail_next("run_instances", "InternalError", status=500), False,
     "InternalError"),  # retry_budget = 0: the budget is spent at the first error
    (lambda cloud, monkeypatch: monkeypatch.setattr(cloud, "vcpu_quota", 0), False, "VcpuLimitExceeded"),
], ids=["cloud-error", "no-vm-named", "no-capacity", "retry-budget", "quota"])
def test_paused_exactly_while_a_failed_launch_holds_the_queue(write_conf, tmp_path, monkeypatch, fault, holds,
                                                               why):
    # The metric read only the black-hole guard's pause: a queue holding its launches after a
    # cloud error showed 0, and an alert on it missed the hold.
    conf = CLOUD + "batchsubmit.ec2.error_pause = 600\nbatchsubmit.ec2.retry_budget = 0\n"
    factory, pool, clock, cloud = cloud_factory(write_conf, tmp_path, conf)
    began = clock.now()

    def seen(web):
        return (scrape(web)[sample("provisioner_queue_paused", queue="CLOUD")],
                json.loads(get(web, "/status.json")[2])["CLOUD"])

    with serving(tmp_path, factory) as web:
        pool.schedd().add_jobs(24, RequestCpus=1, RequestMemory=2048)
        fault(cloud, monkeypatch)
        (d,) = factory.cycle()
        assert d.action == "failed" and why in d.note
        monkeypatch.undo()  # the cloud answers again
        paused, status = seen(web)
        assert paused == holds
        assert status["paused"] is holds
        if holds:
            assert status["paused_until"] == began + 600 and why in status["paused_reason"]
            assert html.escape(status["paused_reason"]) in get(web, "/")[2].decode()
        else:
            assert status["paused_until"] is None and status["paused_reason"] is None
        assert why in status["reason"]  # the failure itself, hold or not
        clock.advance_to(began + 60)
        (d,) = factory.cycle()
        paused, status = seen(web)
        assert (d.action, paused, status["paused"]) == (("none", 1, True) if holds else ("submit", 0, False))
        if holds:  # still in force, though no submit failed this cycle
            assert status["paused_until"] == began + 600 and status["reason"].endswith(
                "paused: " + status["paused_reason"])
            clock.advance_to(began + 600)
            (d,) = factory.cycle()
            assert (d.action, seen(web)[0]) == ("submit", 0)


def test_status_json_and_page_show_vms_held_and_a_hold_escaped(tmp_path):
    from provisioner.status import Decision, Pilots, Work

    reason = 'EC2 launch: UnauthorizedOperation: <b>"not yours"</b>'
    held = Decision("Q", 1_700_000_000.0, work=Work(), pilots=Pilots(pending=3, running=20, held=1, states={
        "busy": 20, "booting": 3, "failed": 1}), pause=(1_700_000_000.0 + 86400, reason))
    with serving(tmp_path) as web:
        web.on_cycle(0.0, [held, Decision("S", 0.0, work=Work(), pilots=Pilots(pending=2, states={"PENDING": 2})),
                           Decision("X", 0.0, action="skip", note="status unavailable")])
        status = json.loads(get(web, "/status.json")[2])
        page = get(web, "/")[2].decode()
    assert {k: status["Q"][k] for k in ("held", "vms", "paused", "paused_until", "paused_reason")} == {
        "held": 1, "vms": {"booting": 3, "busy": 20, "failed": 1}, "paused": True,
        "paused_until": 1_700_086_400.0, "paused_reason": reason}
    assert (status["S"]["vms"], status["S"]["paused"]) == ({}, False)  # Slurm task states are not VMs
    assert [status["X"][k] for k in ("held", "vms", "paused", "paused_until", "paused_reason")] == [None] * 5
    # a hold into another day has its date; the cloud's text is escaped
    until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_700_086_400.0))
    assert f"<td>3 booting, 20 busy, 1 failed</td><td>until {until}: {html.escape(reason)}</td>" in page
    assert "<b>" not in page


def test_the_status_page_refreshes_itself_and_dates_a_cycle_not_of_today(write_conf, emulated):
    # A page left open on the on-call screen showed the same counts for ever, and a factory
    # stuck since yesterday showed "at 19:42:38", as if it had just cycled.
    factory, *_ = emulated(write_conf(QUEUES), start=time.time() - 2 * 86400)
    with serving("unused", factory) as mon:
        factory.cycle()
        page = get(mon, "/")[2].decode()
    assert "<meta http-equiv='refresh' content='60'>" in page
    began = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(factory.services.clock.now()))
    assert f"<td>{began}</td><td>none</td>" in page


def test_a_log_name_not_in_utf8_is_listed_and_served(tmp_path):
    # One such name in a directory made its listing fail: no answer, a traceback per request.
    name = os.fsdecode(b"7.0-\xe9t\xe9.out")  # Latin-1, as another tool may have written it
    (tmp_path / "Q").mkdir()
    (tmp_path / "Q" / name).write_text("pilot says hello\n")
    with serving(tmp_path) as mon:
        code, ctype, body = get(mon, "/logs/Q/")
        assert code == 200 and "7.0-\ufffdt\ufffd.out" in body.decode()
        (href,) = links(mon, "/logs/Q/")
        assert href == "/logs/Q/7.0-%E9t%E9.out"
        assert get(mon, href)[::2] == (200, b"pilot says hello\n")


def test_a_slurm_queues_task_states_are_not_counted_as_vms(tmp_path):
    from provisioner.status import Decision, Pilots, Work

    with serving(tmp_path) as web:
        web.on_cycle_start([])
        web.on_cycle(0.0, [Decision("S", 0.0, work=Work(), pilots=Pilots(pending=2, states={"PENDING": 2}))])
        metrics = scrape(web)
    assert metrics[sample("provisioner_pending_pilots", queue="S")] == 2
    assert not [name for name, _ in metrics if name == "provisioner_vms"]
