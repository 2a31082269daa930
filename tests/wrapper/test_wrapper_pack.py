"""provisioner.wrapperpack: a reproducible stage-two tarball and the `wrapper pack` command."""
import argparse
import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import urllib.request
from pathlib import Path

import pytest
from provisioner import wrapperpack
from provisioner.cli import main
from provisioner.errors import InputError, ProvisionerError


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
    umask = os.umask(0o077)  # stage one's mode must not depend on it
    try:
        assert args.func(args) == 0
    finally:
        os.umask(umask)
    path, digest, stage_one, stage_one_digest = capsys.readouterr().out.split()
    assert path == str(tmp_path / "wrapper.tar.gz")  # the tarball's lines first, as before
    assert digest == hashlib.sha256(open(path, "rb").read()).hexdigest()
    # stage one, which a plain install had nowhere to serve or run from: the shipped file, executable
    assert stage_one == str(tmp_path / "wrapper.sh")
    data = (tmp_path / "wrapper.sh").read_bytes()
    assert data == (wrapperpack.wrapper_root() / "wrapper/bash/wrapper.sh").read_bytes()
    assert stage_one_digest == hashlib.sha256(data).hexdigest()
    assert stat.S_IMODE(os.stat(stage_one).st_mode) == 0o755
    assert sorted(os.listdir(tmp_path)) == ["wrapper.sh", "wrapper.tar.gz"]  # no .partial left


def test_without_the_wrapper_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(wrapperpack, "__file__", str(tmp_path / "site-packages" / "provisioner" / "wrapperpack.py"))
    with pytest.raises(ProvisionerError, match="not found in .*/provisioner/pilotwrapper or .*/site-packages: "):
        wrapperpack.pack(str(tmp_path / "out"))


@pytest.mark.parametrize("row, message", [
    ("* * * myvo myplugin prod", "lookuptable.conf:2: plugin 'myplugin' is not among the packed plugins "
                                 "(condorstartd, generic, panda, trivial)"),
    ("* * * myvo generic prod:x", "lookuptable.conf:2: invalid weight"),
    ("* * * generic -", "lookuptable.conf:2: expected 6 columns"),
    ("* * OSG cms base -", "lookuptable.conf:2: 'base' is not a plugin"),
    ("* ANALY_* OSG * generic prod", "lookuptable.conf:2: QUEUE 'ANALY_*' never matches"),
])
def test_pack_refuses_a_table_that_pilots_would_fail_on(tmp_path, capsys, row, message):
    table = tmp_path / "lookuptable.conf"
    table.write_text("* * * * generic -\n" + row + "\n")
    assert main(["wrapper", "pack", "--out", str(tmp_path / "out"), "--lookuptable", str(table)]) == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith("error: --lookuptable %s/%s" % (tmp_path, message)), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out", ["{dir}/afile", "{dir}/afile/sub", ""])
def test_an_unusable_out_is_one_line_naming_the_option(tmp_path, capsys, out):
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
    (src / "wrapper" / "bash").mkdir()
    shutil.copy(root / "wrapper" / "bash" / "wrapper.sh", src / "wrapper" / "bash")
    (src / "wrapper" / "python" / "plugins" / "mine.py").write_text(
        "from .base import Plugin\n\n\nclass Mine(Plugin)\n    pass\n")
    monkeypatch.setattr(wrapperpack, "__file__", str(src / "provisioner" / "wrapperpack.py"))
    with pytest.raises(InputError, match=r"^%s:4: SyntaxError: " % (src / "wrapper/python/plugins/mine.py")):
        wrapperpack.pack(str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


VOHELLO = '''\
"""vohello: a VO's plugin, kept in the VO's own repository."""
from ._vocommon import GREETING
from .base import Plugin


class VoHello(Plugin):
    def command(self):
        return ["sh", "-c", 'echo "%s $WRAPPER_VO $WRAPPER_PILOTTYPE: $*"' % GREETING, "vohello"] + self.args
'''

VOTABLE = """\
# SITE  QUEUE  GRID   PROJECT  PLUGIN   PILOTTYPE
*       *      *      *        trivial  -
*       *      local  myvo     vohello  vo-prod
"""


@pytest.fixture
def author(tmp_path):
    """A wrapper author's repository: plugins/ (a plugin and the helper module it imports) and a table."""
    vo = tmp_path / "vo-wrapper"
    (vo / "plugins" / "__pycache__").mkdir(parents=True)  # never packed, nor are other files than *.py
    (vo / "plugins" / "vohello.py").write_text(VOHELLO)
    (vo / "plugins" / "_vocommon.py").write_text('GREETING = "hello"\n')
    (vo / "plugins" / "README").write_text("not packed\n")
    (vo / "lookuptable.conf").write_text(VOTABLE)
    return vo


def pack_cli(capsys, *args):
    """`provisioner wrapper pack ARGS` -> (exit code, stdout lines, stderr lines)."""
    code = main(["wrapper", "pack"] + [str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_an_authors_plugins_and_table_run_from_the_served_tarball(author, stage_one, server, capsys):
    code, (path, digest, packed_stage_one, stage_one_digest), _ = pack_cli(
        capsys, "--out", server.root, "--plugins", author / "plugins", "--lookuptable", author / "lookuptable.conf")
    assert code == 0 and path == str(server.root / "wrapper.tar.gz")
    # as a VM fetches stage one (wrapper_url) and checks it (wrapper_checksum) before running it
    with urllib.request.urlopen(server.url + "/wrapper.sh") as served:
        assert hashlib.sha256(served.read()).hexdigest() == stage_one_digest
    stage_one.argv = [packed_stage_one]  # the packed copy, run as an executable, not the checkout's
    stage_one.args = [arg for arg in stage_one.args if not arg.startswith("--wrappertarballchecksum=")] + [
        "--wrappertarballchecksum=" + digest]
    result = stage_one.run("--wrappervo=myvo", "--extra=1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello myvo vo-prod: --extra=1\n"
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert tar.extractfile("lookuptable.conf").read().decode() == VOTABLE
    assert {"plugins/vohello.py", "plugins/_vocommon.py", "plugins/generic.py", "wrapper.py"} <= set(names)
    assert not [n for n in names if "README" in n or "__pycache__" in n]


def test_an_authors_tarball_is_reproducible(author, tmp_path):
    args = dict(plugins=str(author / "plugins"), lookuptable=str(author / "lookuptable.conf"))
    _, first = wrapperpack.pack(str(tmp_path / "a"), **args)
    copy = tmp_path / "elsewhere"
    shutil.copytree(author, copy)  # another clone: other mtimes, path and modes
    (copy / "plugins" / "vohello.py").chmod(0o755)
    _, second = wrapperpack.pack(str(tmp_path / "b"), plugins=str(copy / "plugins"),
                                 lookuptable=str(copy / "lookuptable.conf"))
    assert first == second
    assert first != wrapperpack.pack(str(tmp_path / "c"))[1]


def test_an_authors_plugin_replaces_a_shipped_one_with_a_warning(author, tmp_path, caplog):
    (author / "plugins" / "generic.py").write_text(VOHELLO.replace("VoHello", "Generic"))
    path, _ = wrapperpack.pack(str(tmp_path), plugins=str(author / "plugins"))
    with tarfile.open(path) as tar:
        assert b"class Generic(Plugin)" in tar.extractfile("plugins/generic.py").read()
        assert tar.extractfile("plugins/base.py").read() == (wrapperpack.wrapper_root() /
                                                              "wrapper/python/plugins/base.py").read_bytes()
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "--plugins %s/plugins/generic.py replaces the shipped plugins/generic.py" % author]


@pytest.mark.parametrize("name", ["base.py", "__init__.py"])
def test_the_wrappers_own_plugin_files_are_not_replaced(author, tmp_path, capsys, name):
    (author / "plugins" / name).write_text("")
    code, out, err = pack_cli(capsys, "--out", tmp_path / "out", "--plugins", author / "plugins")
    assert (code, out) == (2, [])
    assert err == ["error: --plugins %s/plugins/%s: plugins/%s is the wrapper's own (plugin loader or base class), "
                   "not a plugin, and cannot be replaced: rename or remove it" % (author, name, name)]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, args, message", [
    (None, ["--plugins", "{vo}/missing"], "--plugins {vo}/missing: no such directory"),
    (None, ["--plugins", "{vo}/lookuptable.conf"], "--plugins {vo}/lookuptable.conf: not a directory"),
    (None, ["--plugins", "{vo}"], "--plugins {vo}: no *.py file"),
    (("plugins/vohello.py", "class VoHello(Plugin)\n    pass\n"), ["--plugins", "{vo}/plugins"],
     "--plugins {vo}/plugins/vohello.py:1: SyntaxError: "),
    (("plugins/vohello.py", "x = 1\0\n"), ["--plugins", "{vo}/plugins"],
     "--plugins {vo}/plugins/vohello.py"),
    (None, ["--lookuptable", "{vo}/missing.conf"], "--lookuptable {vo}/missing.conf: cannot read: No such file"),
    (None, ["--lookuptable", "{vo}"], "--lookuptable {vo}: cannot read: Is a directory"),
    (None, ["--lookuptable", "{vo}/lookuptable.conf"],
     "--lookuptable {vo}/lookuptable.conf:3: plugin 'vohello' is not among the packed plugins "
     "(condorstartd, generic, panda, trivial)"),  # its plugins not given
    (("lookuptable.conf", VOTABLE + "* * local myvo generic -\n"), ["--plugins", "{vo}/plugins", "--lookuptable",
                                                                    "{vo}/lookuptable.conf"],
     "--lookuptable {vo}/lookuptable.conf:4: same SITE QUEUE GRID PROJECT as line 3"),
])
def test_an_authors_mistake_is_one_line_naming_the_option_and_file(author, tmp_path, capsys, change, args, message):
    if change:
        (author / change[0]).write_text(change[1])
    code, out, err = pack_cli(capsys, "--out", tmp_path / "out", *[arg.format(vo=author) for arg in args])
    assert (code, out, len(err)) == (2, [], 1), err
    assert err[0].startswith("error: " + message.format(vo=author)), err
    assert not (tmp_path / "out").exists()
