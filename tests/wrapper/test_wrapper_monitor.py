"""Monitor reports: running and exiting with the exit code, as JSON to a real loopback server."""
import queue

import pytest


def reports(server, count):
    return [server.reports.get(timeout=10) for _ in range(count)]


def test_running_then_exiting(stage_two, server, workdir, base_args):
    url = server.url + "/jobs/factory:1.0"
    assert stage_two.main(base_args + ["--wrapperplugin=trivial", "--wrappermonitorurl=" + url]) == 0
    (method1, path1, running), (method2, _, exiting) = reports(server, 2)
    assert (method1, path1) == ("POST", "/jobs/factory:1.0")
    assert running["state"] == "running" and running["site"] == "S" and running["plugin"] == "trivial"
    assert exiting["state"] == "exiting" and exiting["rc"] == 0
    assert server.reports.empty()


def test_put_and_failure_exit_code(stage_two, server, workdir, base_args):
    args = base_args + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=%s/missing.tar.gz" % server.url,
                        "--wrappermonitorurl=%s/jobs/f:2.0" % server.url, "--wrappermonitormethod=PUT"]
    assert stage_two.main(args) == 83
    (method, _, running), (_, _, exiting) = reports(server, 2)
    assert method == "PUT" and running["state"] == "running"
    assert (exiting["state"], exiting["rc"]) == ("exiting", 83)


def test_heartbeats_while_the_payload_runs(stage_two, server, pilot, workdir, base_args):
    # The payload ends once the server has stored a heartbeat (a file appears):
    # bounded waiting on the real event, no fixed sleep.
    flag = server.root / "beat"
    original_put = server.reports.put

    def put(item):
        original_put(item)
        if server.reports.qsize() >= 2:
            flag.touch()

    server.reports.put = put
    url = pilot("beating", '#!/bin/sh\nfor i in $(seq 200); do [ -e "%s" ] && exit 0; sleep 0.05; done\nexit 1\n'
                % flag)
    args = base_args + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, "--wrapperheartbeat=1",
                        "--wrappermonitorurl=%s/jobs/f:3.0" % server.url]
    assert stage_two.main(args) == 0
    states = [body["state"] for _, _, body in reports(server, 3)]
    assert states == ["running", "running", "exiting"]


def test_unreachable_monitor_is_not_fatal(stage_two, workdir, base_args, capsys):
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    args = base_args + ["--wrapperplugin=trivial", "--wrappermonitorurl=http://127.0.0.1:%d/x?token=SECRET" % port]
    assert stage_two.main(args) == 0
    err = capsys.readouterr().err
    assert "monitor report 'running' to http://127.0.0.1:%d/x?<redacted> failed" % port in err
    assert "SECRET" not in err  # a token in the query string is not logged


@pytest.fixture(autouse=True)
def no_leftover_reports(request):
    yield
    server = request.node.funcargs.get("server")
    if server is not None:
        with pytest.raises(queue.Empty):
            server.reports.get_nowait()
