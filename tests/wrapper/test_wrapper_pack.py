"""provisioner.wrapperpack: a reproducible stage-two tarball and the `wrapper pack` command."""
import argparse
import gzip
import hashlib
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from provisioner import wrapperpack
from provisioner.errors import InputError


def test_same_sources_same_bytes(tmp_path, repo):
    (repo / "wrapper" / "python" / "plugins" / "__pycache__").mkdir(exist_ok=True)  # never packed
    first_path, first_sum = wrapperpack.pack(str(tmp_path / "a"))
    os.utime(repo / "lookuptable.conf")  # a newer mtime must not matter
    second_path, second_sum = wrapperpack.pack(str(tmp_path / "b"))
    data = open(first_path, "rb").read()
    assert data == open(second_path, "rb").read()
    assert first_sum == second_sum == hashlib.sha256(data).hexdigest()
    assert first_path == str(tmp_path / "a" / "wrapper.tar.gz")


def test_tarball_content(tmp_path):
    path, _ = wrapperpack.pack(str(tmp_path))
    with open(path, "rb") as raw:
        header = raw.read(10)
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    for required in ("wrapper.py", "lookuptable.conf", "plugins/base.py", "plugins/trivial.py",
                     "plugins/generic.py", "plugins/panda.py", "plugins/condorstartd.py", "wrapperlib/lookup.py"):
        assert required in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            wrapperpack.MTIME, 0, 0, "", "")
        expected = 0o755 if member.isdir() or member.name == "wrapper.py" else 0o644
        assert member.mode == expected, member.name
    with gzip.open(path) as unzipped:
        assert unzipped.read()


def test_cli_subcommand(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    wrapperpack.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["wrapper", "pack", "--out", str(tmp_path)])
    assert args.func(args) == 0
    path, digest = capsys.readouterr().out.split()
    assert path == str(tmp_path / "wrapper.tar.gz")
    assert digest == hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_outside_a_checkout(tmp_path, monkeypatch):
    monkeypatch.setattr(wrapperpack, "__file__", str(tmp_path / "site-packages" / "provisioner" / "wrapperpack.py"))
    with pytest.raises(InputError, match="source checkout"):
        wrapperpack.pack(str(tmp_path / "out"))


@pytest.mark.parametrize("row, message", [
    ("* * * myvo myplugin prod", "lookuptable.conf:2: plugin 'myplugin' is not in"),
    ("* * * myvo generic prod:x", "lookuptable.conf:2: invalid weight"),
    ("* * * generic -", "lookuptable.conf:2: expected 6 columns"),
    ("* * OSG cms base -", "lookuptable.conf:2: 'base' is not a plugin"),
    ("* ANALY_* OSG * generic prod", "lookuptable.conf:2: QUEUE 'ANALY_\\*' never matches"),
])
def test_pack_refuses_a_table_that_pilots_would_fail_on(tmp_path, row, message):
    root = Path(wrapperpack.wrapper_root())
    shutil.copytree(root / "wrapper" / "python", tmp_path / "wrapper" / "python")
    (tmp_path / "lookuptable.conf").write_text("* * * * generic -\n" + row + "\n")
    with pytest.raises(InputError, match=message):
        wrapperpack.check_table(tmp_path)
    wrapperpack.check_table(root)  # the shipped table is sound


@pytest.mark.parametrize("out", ["{dir}/afile", "{dir}/afile/sub", ""])
def test_an_unusable_out_is_one_line_naming_the_option(tmp_path, capsys, out):
    from provisioner.cli import main

    (tmp_path / "afile").write_text("")
    assert main(["wrapper", "pack", "--out", out.format(dir=tmp_path)]) == 2  # was a FileExistsError traceback
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith("error: --out: cannot write to "), err


def test_pack_refuses_a_plugin_that_does_not_compile(tmp_path, monkeypatch):
    # was packed, with a sha256 to deploy: every pilot choosing it would then exit 82
    root = Path(wrapperpack.wrapper_root())
    src = tmp_path / "src"
    shutil.copytree(root / "wrapper" / "python", src / "wrapper" / "python",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "lookuptable.conf", src)
    (src / "wrapper" / "python" / "plugins" / "mine.py").write_text(
        "from .base import Plugin\n\n\nclass Mine(Plugin)\n    pass\n")
    monkeypatch.setattr(wrapperpack, "__file__", str(src / "provisioner" / "wrapperpack.py"))
    with pytest.raises(InputError, match=r"^%s:4: SyntaxError: " % (src / "wrapper/python/plugins/mine.py")):
        wrapperpack.pack(str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
