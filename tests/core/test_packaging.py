"""A plain (not editable) install works: what setup.cfg packs is what the code reads."""
import configparser
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from setuptools import find_packages

from provisioner import wrapperpack

ROOT = Path(__file__).resolve().parents[2]


def test_setup_cfg_lists_every_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    assert listed == set(find_packages(str(ROOT), include=["provisioner*"])) | {"provisioner.templates",
                                                                                 "provisioner.pilotwrapper"}


def test_a_wheel_installed_in_a_fresh_venv_runs_a_cycle_and_packs_the_wrapper(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("provisioner-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").rglob("*.j2"):
        assert f"provisioner/templates/{template.relative_to(ROOT / 'templates').as_posix()}" in names
    # The dependencies come from this interpreter's site-packages; provisioner only from the wheel.
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=False)
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = {**os.environ, "HOME": str(tmp_path)}
    where = subprocess.run([python, "-c", "import provisioner; print(provisioner.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(tmp_path / "venv"))
    cli = str(tmp_path / "venv" / "bin" / "provisioner")
    r = subprocess.run([cli, "run", "--emulate", "--once"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "submit 20" in r.stderr, r.stderr  # rendered from the packed templates
    r = subprocess.run([cli, "wrapper", "pack", "--out", "www"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr  # was exit 2: it read the wrapper from a checkout only
    path, digest, stage_one, stage_one_digest = r.stdout.split()
    assert path == "www/wrapper.tar.gz"
    assert digest == wrapperpack.pack(str(tmp_path / "checkout"))[1]  # the same tarball as the checkout's
    assert stage_one == "www/wrapper.sh"  # was not installed: a plain install had no stage one to serve
    assert stage_one_digest == wrapperpack.pack_stage_one(str(tmp_path / "checkout"))[1]
