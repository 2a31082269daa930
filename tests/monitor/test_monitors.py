"""Monitors over real HTTP on loopback: apfmon REST calls, the status page, metrics, logs."""
import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from provisioner.monitor.apfmon import APFMon
from provisioner.monitor.web import WebMonitor

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
    factory.monitors.append(APFMon(dead, "test-factory", factory.config.queues, timeout=2))
    pool.schedd().add_jobs(1, TargetQueue="WB")
    decisions = factory.cycle()
    assert [d.count for d in decisions] == [0, 1]
    assert "monitor PUT /labels failed" in caplog.text


def get(mon, path):
    conn = http.client.HTTPConnection(*mon.server.server_address[:2], timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.getheader("Content-Type"), resp.read()


def test_status_page_metrics_plots_and_logs(write_conf, emulated, tmp_path):
    factory, pool, clock, _ = emulated(write_conf(QUEUES))
    logs = tmp_path / "logs"
    mon = WebMonitor("test-factory", str(logs), port=0)
    factory.monitors.append(mon)
    mon.start()
    try:
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
    finally:
        mon.stop()
