"""The CLI as a user runs it: run --once on the emulated pool, dry-run, status."""
import subprocess
import sys

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
