"""The shipped systemd unit: valid for systemd, and its exit-status settings match the CLI's."""
import configparser
import os
import shlex
import shutil
import subprocess
import sys

from provisioner import cli

UNIT = os.path.join(os.path.dirname(cli.__file__), "examples", "provisioner.service")


def service():
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read(UNIT)
    return unit["Service"]


def test_systemd_reads_the_unit_without_a_complaint(tmp_path, missing):
    if not shutil.which("systemd-analyze"):
        missing("systemd-analyze is not installed (apt-get install systemd)")
    # systemd checks that ExecStart is executable and only warns about settings it ignores
    text = open(UNIT).read().replace("/usr/local/bin/provisioner", shutil.which("provisioner"))
    (tmp_path / "provisioner.service").write_text(text)
    p = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "provisioner.service")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


def test_a_configuration_mistake_is_not_restarted(tmp_path):
    s = service()
    assert s["Restart"] == "on-failure" and s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    command = shlex.split(s["ExecStart"])
    assert command[:3] == ["/usr/local/bin/provisioner", "run", "--conf"]
    bad = tmp_path / "factory.conf"
    bad.write_text("[Factory]\nqueueConf = queues.conf\n")  # no factoryId
    p = subprocess.run([sys.executable, "-m", "provisioner", "run", "--conf", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert str(p.returncode) in s["RestartPreventExitStatus"].split(), p.stderr
    assert "factoryid" in p.stderr.lower()
