"""Plugins: the runner's step order, and what trivial, generic and panda do."""
import hashlib
import shutil
import subprocess
import sys

import plugins
import pytest
from plugins.base import Plugin
from wrapperlib.errors import BAD_OPTION, DOWNLOAD, INTERNAL, PLUGIN

STEPS = ["validate", "setup", "download", "execute", "report", "cleanup"]
COLLECTOR = ["--wrappercollector=cm.example:9618", "--wrappertoken=tok"]


@pytest.fixture
def record_steps(monkeypatch):
    """Records the steps the runner calls on plugin_class, still running them."""
    calls = []

    def record(plugin_class):
        for step in STEPS:
            original = getattr(plugin_class, step)

            def wrapped(self, *args, _original=original, _step=step):
                calls.append(_step)
                return _original(self, *args)

            monkeypatch.setattr(plugin_class, step, wrapped)
        return calls

    return record


@pytest.mark.parametrize("name", ["trivial", "generic", "panda", "condorstartd"])
def test_steps_run_in_order(stage_two, name, record_steps, pilot, fake_bin, workdir, base_args):
    calls = record_steps(plugins.load(name))
    entry = "pilot.py" if name == "panda" else "run.sh"
    script = "print('pilot')\n" if name == "panda" else "#!/bin/sh\necho pilot\n"
    url = pilot("p", script, entry)
    fake_bin("condor_master", "#!/bin/sh\nexit 0\n")
    extra = {"generic": ["--wrapperpilotcodeurl=" + url], "panda": ["--wrapperpilotcodeurl=" + url],
             "condorstartd": COLLECTOR}.get(name, [])
    assert stage_two.main(base_args + ["--wrapperplugin=" + name, "--wrapperpilottype=p"] + extra) == 0
    assert calls == STEPS


def test_failed_step_still_reports_and_cleans_up(stage_two, record_steps, server, workdir, base_args):
    calls = record_steps(plugins.load("generic"))
    args = base_args + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=%s/missing.tar.gz" % server.url]
    assert stage_two.main(args) == DOWNLOAD
    assert calls == ["validate", "setup", "download", "report", "cleanup"]
    assert list(workdir.iterdir()) == []


def test_plugin_bug_is_an_internal_error_after_which_cleanup_runs(stage_two, record_steps, monkeypatch,
                                                                  workdir, base_args, capsys):
    calls = record_steps(plugins.load("trivial"))
    monkeypatch.setattr(plugins.load("trivial"), "command", lambda self: 1 / 0)
    monkeypatch.setattr(plugins.load("trivial"), "execute", Plugin.execute)
    assert stage_two.main(base_args + ["--wrapperplugin=trivial"]) == INTERNAL
    assert calls[-2:] == ["report", "cleanup"]
    assert "ZeroDivisionError" in capsys.readouterr().err


def test_trivial_prints_what_it_found(stage_two, workdir, base_args, capsys):
    args = base_args + ["--wrapperplugin=trivial", "--wrapperpilottype=x", "--wrappervo=atlas",
                        "--extra=1", "--api-token=hush"]
    assert stage_two.main(args) == 0
    out = capsys.readouterr().out
    assert "trivial: site=S queue=Q grid=local vo=atlas pilottype=x" in out
    assert "cpus=" in out and "mem_total_mb=" in out and "load=" in out
    assert "--extra=1 --api-token=<redacted>" in out and "hush" not in out


def test_generic_runs_the_pilot_entry_with_args_and_environment(stage_two, server, pilot, workdir, base_args,
                                                                capfd):
    pilot("pilotcode", '#!/bin/sh\necho "args: $*"\necho "env: $WRAPPER_SITE $WRAPPER_PILOTTYPE"\n'
                       'echo "cwd: $PWD"\nexit 3\n')
    args = base_args + ["--wrappergrid=OSG", "--wrapperplugin=generic", "--wrapperserverurl=" + server.url,
                        "--wrapperpilottype=pilotcode", "--a=1", "b c"]
    assert stage_two.main(args) == 3
    out = capfd.readouterr().out
    assert "args: --a=1 b c" in out
    assert "env: S pilotcode" in out
    assert "cwd: %s" % (workdir / "pilot") in out
    assert not (workdir / "pilot").exists()


def test_generic_finds_the_entry_in_a_top_directory(stage_two, pilot, workdir, base_args, capfd):
    url = pilot("nested", "#!/bin/sh\necho nested entry\n", entry="pilot-1.0/run.sh")
    assert stage_two.main(base_args + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url]) == 0
    assert "nested entry" in capfd.readouterr().out


def test_generic_weighted_pilot_code_urls(stage_two, pilot, workdir, base_args, capfd):
    never, always = pilot("never", "#!/bin/sh\necho never\n"), pilot("always", "#!/bin/sh\necho always\n")
    args = base_args + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=%s,%s" % (never, always),
                        "--wrapperpilotcoderatio=0,1"]
    assert stage_two.main(args) == 0
    assert "always" in capfd.readouterr().out


def test_generic_pilot_checksum(stage_two, server, pilot, workdir, base_args):
    url = pilot("p", "#!/bin/sh\nexit 0\n")
    good = hashlib.sha256((server.root / "p.tar.gz").read_bytes()).hexdigest()
    args = base_args + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url]
    assert stage_two.main(args + ["--wrapperpilotchecksum=" + good]) == 0
    assert stage_two.main(args + ["--wrapperpilotchecksum=" + "0" * 64]) == DOWNLOAD
    assert list(workdir.iterdir()) == []  # nothing left of the refused tarball


@pytest.mark.parametrize("entry, mode, message", [
    ("other.sh", 0o755, "has no run.sh"),
    ("run.sh", 0o644, "not executable"),
])
def test_generic_bad_pilot_tarball(stage_two, pilot, workdir, base_args, capsys, entry, mode, message):
    url = pilot("bad", "#!/bin/sh\n", entry=entry, mode=mode)
    assert stage_two.main(base_args + ["--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url]) == DOWNLOAD
    assert message in capsys.readouterr().err


def test_generic_needs_a_pilot_source(stage_two, workdir, base_args, capsys):
    assert stage_two.main(base_args + ["--wrapperplugin=generic"]) == BAD_OPTION
    assert "needs --wrapperpilotcodeurl" in capsys.readouterr().err
    ratio = ["--wrapperpilotcodeurl=http://a.example/x", "--wrapperpilotcoderatio=1,2"]
    assert stage_two.main(base_args + ["--wrapperplugin=generic"] + ratio) == BAD_OPTION


def test_panda_runs_pilot_py_with_site_and_queue(stage_two, pilot, workdir, base_args, capfd):
    url = pilot("pilot3", "import sys\nprint('pilot.py', sys.argv[1:])\n", entry="pilot3/pilot.py")
    args = base_args + ["--wrapperqueue=ANALY_Q", "--wrappersite=SITE_X", "--wrapperplugin=panda",
            "--wrapperpilotcodeurl=" + url, "--wrapperserverurl=https://panda.example:25443", "--job-type=user"]
    assert stage_two.main(args) == 0
    assert "pilot.py ['-q', 'ANALY_Q', '-s', 'SITE_X', '--url', 'https://panda.example:25443', " \
           "'--job-type=user']" in capfd.readouterr().out


def test_a_new_plugin_is_one_file(repo, tmp_path, server):
    """A copy of stage two with plugins/hello.py added runs it by name."""
    copy = tmp_path / "stage2"
    shutil.copytree(repo / "wrapper" / "python", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "plugins" / "hello.py").write_text(
        'from .base import Plugin\n\n\n'
        'class Hello(Plugin):\n'
        '    def command(self):\n'
        '        return ["echo", "hello from", self.opts.site]\n')
    (copy / "lookuptable.conf").write_text("* * * * hello -\n")
    result = subprocess.run([sys.executable, "-ES", str(copy / "wrapper.py"), "--wrapperqueue=Q",
                             "--wrappersite=S", "--wrappergrid=local"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "hello from S" in result.stdout


def run_copy_with_plugin(repo, tmp_path, source, *args):
    """Runs a copy of stage two with plugins/broken.py holding source."""
    copy = tmp_path / "stage2"
    shutil.copytree(repo / "wrapper" / "python", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "plugins" / "broken.py").write_text(source)
    return subprocess.run([sys.executable, "-ES", str(copy / "wrapper.py"), "--wrapperqueue=Q",
                           "--wrappergrid=local", "--wrapperplugin=broken", "--wrapperpilottype=p", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("source, message", [
    ("raise RuntimeError('no config')\n", "plugin 'broken' cannot be loaded: RuntimeError: no config"),
    ("from .base import Plugin\n\n\nclass Broken(Plugin):\n    @classmethod\n"
     "    def add_arguments(cls, parser):\n        parser.add_argument('--x')\n        parser.add_argument('--x')\n",
     "plugin broken cannot be loaded: add_arguments failed: ArgumentError: argument --x: conflicting option"),
])
def test_a_plugin_failing_to_load_is_exit_82_in_one_line(repo, tmp_path, source, message):
    result = run_copy_with_plugin(repo, tmp_path, source)
    assert result.returncode == PLUGIN, result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR: " in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "exit=82 (plugin not loadable)" in result.stderr.splitlines()[-1]


def test_a_plugin_failing_in_its_constructor_is_an_internal_error(repo, tmp_path):
    source = ("from .base import Plugin\n\n\nclass Broken(Plugin):\n"
              "    def __init__(self, *args):\n        raise KeyError('setting')\n")
    result = run_copy_with_plugin(repo, tmp_path, source)
    assert result.returncode == INTERNAL
    assert "KeyError: 'setting'" in result.stderr
    assert "exit=87 (internal error)" in result.stderr.splitlines()[-1]
