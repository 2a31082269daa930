"""`provisioner demo` as a new user runs it: a subprocess, no network, under a minute."""
import os
import re
import subprocess
import sys
import time

import pytest

# Loaded before the demo by Python's site module: any network use fails loudly.
NO_NETWORK = """\
import socket

def _refuse(*args, **kwargs):
    raise OSError("provisioner demo tried to use the network")

socket.socket.connect = socket.socket.connect_ex = _refuse
socket.getaddrinfo = socket.create_connection = _refuse
"""


def demo(tmp_path, *args):
    guard = tmp_path / "nonet"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(guard), os.environ.get("PYTHONPATH")]))}
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "provisioner", "demo", *args], capture_output=True, text=True,
                       timeout=120, env=env, cwd=tmp_path)
    return r, time.monotonic() - start


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    r, seconds = demo(tmp, "--out", str(tmp / "out"))
    return r, seconds, tmp / "out"


def test_exits_0_in_under_a_minute(run):
    r, seconds, _ = run
    assert r.returncode == 0, r.stderr
    assert seconds < 60
    assert "network" not in r.stderr


def test_live_view_shows_the_whole_mission(run):
    out = run[0].stdout
    for header in ("burst", "lull", "second burst"):
        assert re.search(rf"^== \d\d:\d\d:\d\d {header}", out, re.M), header
    # idle jobs drive VMs up, and the line says why
    assert re.search(r"^\S+  ANALYSIS  \d+ idle, \d+ running .* launch \d+ +<- elastic=\d+ \(needed=", out, re.M)
    # VMs join and run the jobs
    assert re.search(r"^\S+  ANALYSIS  \d+ idle, [1-9]\d* running +VMs: .*\d+ busy", out, re.M)
    # work ends: VMs drain and go away
    assert re.search(r"ANALYSIS .* drain \d+ +<- elastic=-\d+", out)
    assert re.search(r"ANALYSIS  terminate \d+ VMs?: drained", out)
    # the broken image: boot failures terminated, the guard trips and holds launches back
    assert re.search(r"HIGHMEM   terminate \d+ VMs?: boot timeout", out)
    assert re.search(r"HIGHMEM   !! black-hole guard: \d+ boot failures", out)
    assert re.search(r"HIGHMEM .* paused, wants \d+", out)
    assert len(out.splitlines()) < 250


def test_summary_tells_what_happened(run):
    out = run[0].stdout
    analysis = re.search(r"^  ANALYSIS: (\d+)/(\d+) jobs ran; .*", out, re.M)
    assert analysis and analysis.group(1) == analysis.group(2), out
    assert "drained and terminated" in analysis.group(0) and "no VM left at the end" in analysis.group(0)
    highmem = re.search(r"^  HIGHMEM: 0/\d+ jobs ran; .*", out, re.M)
    assert highmem and "never joined the pool" in highmem.group(0) and "black-hole guard tripped" in highmem.group(0)
    table = re.search(r"^queue +policy +jobs +wait p50 .*\n(.*\n){3}", out, re.M)
    assert table, out
    assert [line.split()[0] for line in table.group(0).splitlines()] == ["queue", "ANALYSIS", "HIGHMEM", "all"]


def test_plot_files_exist_and_are_self_contained(run):
    out, outdir = run[0].stdout, run[2]
    png = re.search(r"^plot: (.+)$", out, re.M).group(1)
    html = re.search(r"^report: (.+)$", out, re.M).group(1)
    assert os.path.dirname(png) == os.path.dirname(html) == str(outdir)
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(html) as fh:
        page = fh.read()
    assert "data:image/png;base64," in page
    assert not re.search(r"https?://", page, re.I)


def test_quiet_prints_only_the_summary(tmp_path):
    r, _ = demo(tmp_path, "--quiet", "--out", str(tmp_path / "q"))
    assert r.returncode == 0, r.stderr
    assert "==" not in r.stdout and "<- elastic" not in r.stdout
    assert "what happened:" in r.stdout and "wait p50" in r.stdout and "plot: " in r.stdout


def test_unusable_out_dir_is_one_line_exit_2_naming_the_option(tmp_path):
    (tmp_path / "taken").write_text("a file, not a directory")
    r, _ = demo(tmp_path, "--out", str(tmp_path / "taken"))
    assert r.returncode == 2 and r.stdout == ""  # as simulate's --out, before the replay
    assert r.stderr.strip().splitlines() == [f"error: --out: cannot create {tmp_path / 'taken'}: File exists"]


def test_every_vm_launched_is_accounted_for(run):
    out = run[0].stdout
    assert re.search(r"ANALYSIS .* drain \d+, cancel \d+ <- elastic=-\d+ .*cancel-booting=\d+", out)
    for line in re.findall(r"^  (?:ANALYSIS|HIGHMEM): .*", out, re.M):
        launched = int(re.search(r"(\d+) VMs launched", line).group(1))
        gone = sum(int(n) for n in re.findall(
            r"(\d+) (?:drained and terminated|terminated while still booting|never joined)", line))
        assert "no VM left at the end" in line and launched == gone, line
