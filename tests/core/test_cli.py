"""The CLI as a user runs it: run --once on the emulated pool, dry-run, status."""
import os
import shutil
import subprocess
import sys

import pytest

from provisioner.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, timeout=60)


def test_example_runs_one_cycle_and_status_shows_it(tmp_path):
    r = run("run", "--emulate", "--once")
    assert r.returncode == 0, r.stderr
    assert "queue=BNL_CE idle=120" in r.stderr and "submit 20" in r.stderr
    assert "queue=LOCAL_BIGMEM idle=12" in r.stderr  # RequestMemory > 8000 of the LOCAL jobs
    s = run("status")
    assert s.returncode == 0
    rows = {line.split()[0]: line for line in s.stdout.splitlines()}
    assert "QUEUE" in rows and "submit 20" in rows["BNL_CE"] and "maxpercycle=20" in rows["BNL_CE"]


def test_dry_run_says_would(write_conf):
    conf = write_conf("[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\n"
                      "[Q]\nwmsqueue = BNL\nbatchsubmitplugin = CondorLocal\n")
    r = run("run", "--conf", conf, "--emulate", "--once", "--dry-run")
    assert r.returncode == 0 and "would submit 120" in r.stderr
    s = run("status", "--conf", conf)
    assert "no ledger yet" in s.stdout


def test_bad_conf_exits_2_with_one_line(tmp_path, capsys):
    assert main(["run", "--conf", str(tmp_path / "missing.conf"), "--once"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.conf" in err[0] and "cannot read" in err[0]


def test_apf_factory_conf_with_file_url_and_proxy_profile(tmp_path, capsys):
    (tmp_path / "queues.conf").write_text(
        "[DEFAULT]\nwmsstatus.condor.queueattribute = TargetQueue\nbatchsubmit.condorce.proxy = None\n"
        "[BNL]\nbatchsubmitplugin = CondorOSGCE\nbatchsubmit.condorosgce.gridresource = gk.example.org\n"
        "batchsubmit.condorosgce.proxy = atlas-production\n")
    fac = tmp_path / "autopyfactory.conf"
    fac.write_text(f"[Factory]\nfactoryId = apf\nqueueConf = file://{tmp_path}/queues.conf\nbaseLogDir = logs\n"
                   "proxyConf = /etc/autopyfactory/proxy.conf\nproxymanager.enabled = True\n")
    assert main(["check-config", "--conf", str(fac)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[BNL] batchsubmit.condorosgce.proxy:" in err[0] and "proxy.conf" in err[0]
    (tmp_path / "queues.conf").write_text((tmp_path / "queues.conf").read_text().replace(
        "atlas-production", str(tmp_path / "x509up")))
    r = run("run", "--conf", str(fac), "--emulate", "--once", "--dry-run")
    assert r.returncode == 0 and "queue=BNL idle=120" in r.stderr and "would submit 120" in r.stderr, r.stderr


def read_only(path, missing) -> list:
    """A command prefix under which ``path`` cannot be written, even by root, who ignores modes."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return []
    mount = ["sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(path)]
    for unshare in (["unshare", "-m"], ["unshare", "-r", "-m"]):
        if shutil.which("unshare") and subprocess.run([*unshare, *mount, "true"]).returncode == 0:
            return [*unshare, *mount]
    missing("a read-only directory for root needs unshare -m (util-linux) and the right to use it")


def test_status_reads_a_ledger_it_cannot_write(write_conf, tmp_path, missing):
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n")
    assert run("run", "--conf", conf, "--emulate", "--once").returncode == 0
    prefix = read_only(tmp_path / "logs", missing)
    try:
        s = subprocess.run([*prefix, sys.executable, "-m", "provisioner", "status", "--conf", conf],
                           capture_output=True, text=True, timeout=60)
    finally:
        (tmp_path / "logs").chmod(0o755)
    assert s.returncode == 0, s.stderr
    (row,) = s.stdout.splitlines()[1:]
    assert row.startswith("Q ") and " submit 142 " in row


def test_status_of_a_ledger_it_cannot_reach_is_an_error_not_no_ledger_yet(write_conf, tmp_path, missing):
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n")
    assert run("run", "--conf", conf, "--emulate", "--once").returncode == 0
    prefix = []
    if os.geteuid() == 0:  # root reads through modes unless it gives up the capabilities that let it
        if not shutil.which("setpriv"):
            missing("an unreadable directory for root needs setpriv (util-linux)")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    (tmp_path / "logs").chmod(0)
    try:
        s = subprocess.run([*prefix, sys.executable, "-m", "provisioner", "status", "--conf", conf],
                           capture_output=True, text=True, timeout=60)
    finally:
        (tmp_path / "logs").chmod(0o755)
    assert (s.returncode, s.stdout) == (1, "")
    assert s.stderr == f"error: ledger {tmp_path}/logs/ledger.sqlite: cannot read it: Permission denied\n"


@pytest.mark.parametrize("line, key, why", [
    ("statedir = queues.conf/state", "statedir", "cannot create {base}/queues.conf/state: Not a directory"),
    ("baseLogDir = queues.conf/logs", "baselogdir", "cannot create {base}/queues.conf/logs: Not a directory"),
])
def test_a_ledger_directory_that_cannot_be_made_is_one_line_naming_the_option(write_conf, capsys, line, key, why):
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n")
    with open(conf) as fh:
        text = fh.read().replace("baseLogDir = logs\n", "")
    with open(conf, "w") as fh:
        fh.write(text + line + "\n")
    assert main(["run", "--once", "--emulate", "--conf", conf]) == 2
    base = os.path.dirname(conf)
    assert capsys.readouterr().err.splitlines() == [f"error: {conf}: [Factory] {key}: {why.format(base=base)}"]


def test_a_directory_in_the_ledgers_place_is_one_line_and_releases_the_lock(write_conf, tmp_path, capsys):
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n", "statedir = state\n")
    (tmp_path / "state" / "ledger.sqlite").mkdir(parents=True)
    for _ in range(2):  # the lock taken before sqlite failed is let go: the second says the same
        assert main(["run", "--once", "--emulate", "--conf", conf]) == 1  # was a sqlite3 traceback
        (err,) = capsys.readouterr().err.splitlines()
        assert err.startswith(f"error: ledger {tmp_path}/state/ledger.sqlite: unable to open database file; "
                              "move it aside"), err


def test_a_ledger_directory_that_cannot_be_written_is_one_line(write_conf, tmp_path, missing):
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\n", "statedir = state\n")
    (tmp_path / "state").mkdir()
    prefix = read_only(tmp_path / "state", missing)
    try:
        r = subprocess.run([*prefix, sys.executable, "-m", "provisioner", "run", "--once", "--emulate", "--conf",
                            conf], capture_output=True, text=True, timeout=60)
    finally:
        (tmp_path / "state").chmod(0o755)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"error: {conf}: [Factory] statedir: cannot write in {tmp_path}/state"]
