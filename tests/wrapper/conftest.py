"""Fixtures for the pilot-wrapper tests: stage two importable, loopback HTTP
servers, real pilot tarballs, stage one run with real bash."""
import functools
import hashlib
import http.server
import importlib.util
import io
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGE_TWO = REPO / "wrapper" / "python"
if str(STAGE_TWO) not in sys.path:
    sys.path.insert(0, str(STAGE_TWO))


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="session")
def stage_two():
    """wrapper/python/wrapper.py as a module (a unique name: the repo has a wrapper/ folder)."""
    spec = importlib.util.spec_from_file_location("stage_two_wrapper", STAGE_TWO / "wrapper.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def restore_signal_handlers():
    """main() installs forwarding handlers; give pytest its own back."""
    from wrapperlib.supervise import FORWARDED

    saved = {s: signal.getsignal(s) for s in FORWARDED}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """Serves files from `root` (GET) and queues the JSON bodies of POST/PUT."""

    def __init__(self, root):
        self.root = Path(root)
        self.reports = queue.Queue()
        server = self

        class Handler(QuietHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def _report(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.reports.put((self.command, self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _report

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    srv = Server(www)
    yield srv
    srv.close()


def make_tarball(path, files):
    """Writes a .tar.gz at path from {name: (text, mode)}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, (text, mode) in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def pilot(server):
    """pilot(name, script, entry="run.sh", mode=0o755) serves name.tar.gz holding
    the entry script; returns its URL."""

    def build(name, script, entry="run.sh", mode=0o755):
        make_tarball(server.root / (name + ".tar.gz"), {entry: (script, mode)})
        return "%s/%s.tar.gz" % (server.url, name)

    return build


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The current directory for stage two, as stage one's private directory would be."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def table(tmp_path):
    """table(text) writes a lookup table and returns its path."""

    def write(text):
        path = tmp_path / "lookuptable.conf"
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture
def base_args():
    """Minimal stage-two options, with the repo's lookup table (a checkout has none next to wrapper.py)."""
    return ["--wrapperqueue=Q", "--wrappersite=S", "--wrappergrid=local",
            "--wrapperlookuptable=%s" % (REPO / "lookuptable.conf")]


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """fake_bin(name, script) puts an executable script first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", "%s%s%s" % (bin_dir, os.pathsep, os.environ["PATH"]))

    def add(name, script):
        path = bin_dir / name
        path.write_text(script)
        path.chmod(0o755)
        return path

    return add


@pytest.fixture
def path_without(tmp_path):
    """path_without(*programs): a PATH of symlinks to what the wrapper runs, minus programs."""

    def make(*left_out):
        bin_dir = tmp_path / "restricted-bin"
        bin_dir.mkdir()
        for program in ("bash", "curl", "wget", "tar", "gzip", "sha256sum", "mktemp", "rm", "mkdir",
                        "timeout", "sleep"):
            if program not in left_out:
                (bin_dir / program).symlink_to(shutil.which(program))
        (bin_dir / "python3").symlink_to(sys.executable)
        return str(bin_dir)

    return make


@pytest.fixture
def hanging():
    """URL of a loopback server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept():
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed at teardown
                return

    threading.Thread(target=accept, daemon=True).start()
    yield "http://127.0.0.1:%d" % listener.getsockname()[1]
    listener.close()
    for connection in held:
        connection.close()


@pytest.fixture
def late_server(server):
    """URL of a server for server.root that starts listening only after a refused first try."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = []

    def start():
        handler = functools.partial(QuietHandler, directory=str(server.root))
        started.append(http.server.ThreadingHTTPServer(("127.0.0.1", port), handler))
        threading.Thread(target=started[0].serve_forever, args=(0.05,), daemon=True).start()

    timer = threading.Timer(0.5, start)
    timer.start()
    yield "http://127.0.0.1:%d" % port
    timer.join()
    started[0].shutdown()
    started[0].server_close()


class Trickling(http.server.BaseHTTPRequestHandler):
    """Promises 100000 bytes and sends one every 0.2 s: never idle for long, done (short)
    only after 10 s, when it closes the connection."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the client gave up
            pass


@pytest.fixture
def trickling():
    """URL of a loopback server that answers a byte at a time, too slowly to finish."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickling)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def flaky(server):
    """flaky(status, failures): URL of a server for server.root whose first `failures`
    GETs get HTTP `status`; it counts every GET in .hits."""

    def start(status, failures):
        counter = SimpleNamespace(hits=0)

        class Handler(QuietHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def do_GET(self):
                counter.hits += 1
                if counter.hits <= failures:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    super().do_GET()

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        started.append(httpd)
        counter.url = "http://127.0.0.1:%d" % httpd.server_address[1]
        return counter

    started = []
    yield start
    for httpd in started:
        httpd.shutdown()
        httpd.server_close()


class StageOne:
    """Runs wrapper.sh with real bash, fetching the real packed stage two from server."""

    def __init__(self, repo, server, tmp_path):
        from provisioner.wrapperpack import pack

        _, checksum = pack(str(server.root))
        self.root = server.root
        self.added = {}  # repack()'s files so far
        self.url = server.url
        self.args = ["--wrapperqueue=Q", "--wrappergrid=local", "--wrappertarballurl=%s/wrapper.tar.gz" % server.url,
                     "--wrappertarballchecksum=" + checksum]
        self.tmpdir = tmp_path / "tmp"  # stage one's TMPDIR: empty again after every run
        self.tmpdir.mkdir()
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("OSG_GRID", "GLITE_LOCATION") and not key.startswith("WRAPPER_")}
        self.env["TMPDIR"] = str(self.tmpdir)
        self.argv = ["bash", str(repo / "wrapper" / "bash" / "wrapper.sh")]

    def repack(self, files):
        """Serves the packed stage two with files ({name: text}, and those of earlier calls)
        added or replaced, as `provisioner wrapper pack` builds it with an author's plugin,
        and fetches that."""
        self.added.update(files)
        files = self.added
        with tarfile.open(self.root / "wrapper.tar.gz") as packed, \
                tarfile.open(self.root / "authored.tar.gz", "w:gz") as tar:
            for member in packed.getmembers():
                if member.name not in files:
                    tar.addfile(member, packed.extractfile(member) if member.isfile() else None)
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        checksum = hashlib.sha256((self.root / "authored.tar.gz").read_bytes()).hexdigest()
        self.args = [arg.replace("/wrapper.tar.gz", "/authored.tar.gz") for arg in self.args
                     if not arg.startswith("--wrappertarballchecksum=")] + ["--wrappertarballchecksum=" + checksum]

    def popen(self, *args, env=None, base=True, cwd=None, stdout=subprocess.PIPE):
        """Starts wrapper.sh with the base options (base=False: without), args, and env added,
        in cwd (default: the current directory)."""
        argv = self.argv + (self.args if base else []) + list(args)
        return subprocess.Popen(argv, env=dict(self.env, **(env or {})), stdout=stdout,
                                stderr=subprocess.PIPE, text=True, cwd=cwd)

    def run(self, *args, env=None, base=True, timeout=60, cwd=None, stdout=subprocess.PIPE):
        wrapper = self.popen(*args, env=env, base=base, cwd=cwd, stdout=stdout)
        try:
            out, err = wrapper.communicate(timeout=timeout)
        finally:
            wrapper.kill()
        return subprocess.CompletedProcess(wrapper.args, wrapper.returncode, out, err)


@pytest.fixture
def stage_one(repo, server, tmp_path):
    return StageOne(repo, server, tmp_path)
