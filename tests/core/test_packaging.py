"""A plain (not editable) install works: what setup.cfg packs is what the code reads; the oldest
Pythons promised (python_requires, docs/wrapper.md for stage two) run the code."""
import configparser
import glob
import os
import re
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
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
    # The dependencies come from this interpreter's site-packages (system_site_packages would give a
    # venv's base interpreter's instead); provisioner only from the wheel.
    venv.create(tmp_path / "venv", with_pip=False)
    python = str(tmp_path / "venv" / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
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


def python_of(version):
    """An interpreter of that version: on PATH, or pyenv's (the project's machines have 3.6 to 3.13)."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = [shutil.which(f"python{version}")] + sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    for python in filter(None, found):
        if subprocess.run([python, "-c", ""], capture_output=True).returncode == 0:  # a pyenv shim may refuse
            return python
    pytest.skip(f"no Python {version} here")


def test_the_oldest_python_admitted_compiles_every_module_and_finds_entry_point_plugins(tmp_path):
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    python = python_of(cfg["options"]["python_requires"].removeprefix(">="))
    dist = tmp_path / "site_policy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: site-policy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[provisioner.sched]\nHalf = site_policy:Half\n")
    (tmp_path / "site_policy.py").write_text("from provisioner.sched.base import Step\n"
                                              "class Half(Step):\n    name = 'half'\n    options = {}\n")
    script = f"""import pathlib, sys
sys.path[:0] = [{str(ROOT)!r}, {str(tmp_path)!r}]
for path in sorted(pathlib.Path({str(ROOT / "provisioner")!r}).rglob("*.py")):
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
from provisioner import plugins
print("half" in plugins.names("sched"), plugins.load("sched", "half").__name__)
"""
    r = subprocess.run([python, "-I", "-B", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "True Half\n"), r.stderr  # was a TypeError on 3.9


def test_stage_two_runs_on_the_oldest_python_docs_promise(tmp_path):
    promised = re.search(r"Python (3\.\d+) or later", (ROOT / "docs" / "wrapper.md").read_text()).group(1)
    r = subprocess.run([python_of(promised), "-B", "-E", "-S", str(ROOT / "wrapper" / "python" / "wrapper.py"),
                        "--wrapperqueue=Q", "--wrappergrid=local", "--wrapperplugin=trivial",
                        f"--wrapperlookuptable={ROOT / 'lookuptable.conf'}"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and f"python={promised}." in r.stdout, r.stderr
