"""A VO's own plugin, written from docs/wrapper.md, packed into stage two and run
by the real wrapper.sh under bash, with tarballs and reports on loopback HTTP;
then what such an author gets wrong."""
import contextlib
import os
import signal

import pytest
from wrapperlib.errors import BAD_OPTION, DOWNLOAD, INTERNAL, LOOKUP, PLUGIN, SILENT

VOPAYLOAD = '''\
"""vopayload: runs the VO's payload, <serverurl>/<pilottype>.tar.gz, entry start.sh."""
import os

from wrapperlib.errors import BAD_OPTION, DOWNLOAD, WrapperError

from .base import Plugin


class VoPayload(Plugin):
    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--wrappervomode", dest="vomode", default="prod")

    def validate(self):
        if not (self.opts.serverurl and self.pilottype):
            raise WrapperError(BAD_OPTION, "vopayload needs --wrapperserverurl and a pilot type")

    def download(self):
        payload = self.fetch("%s/%s.tar.gz" % (self.opts.serverurl, self.pilottype), "payload")
        self.entry = os.path.join(payload, "start.sh")
        if not os.access(self.entry, os.X_OK):
            raise WrapperError(DOWNLOAD, "payload has no executable start.sh")

    def command(self):
        return [self.entry, "--mode", self.opts.vomode] + self.args

    def report(self, code):
        super().report(code)
        print("vopayload: reported exit %d" % code)
'''

TABLE = """\
# SITE  QUEUE  GRID   PROJECT  PLUGIN     PILOTTYPE
*       *      *      *        trivial    -
*       *      *      myvo     vopayload  vo-prod:3,vo-test:1
MYSITE  *      OSG    myvo     vopayload  vo-test
*       *      cloud  myvo     vopayload  vo-prod:1,vo-test:0
"""

PAYLOAD = '#!/bin/bash\necho "payload $WRAPPER_PILOTTYPE: $*"\n'


@pytest.fixture
def authored(stage_one, pilot):
    """stage_one serving a stage two with vopayload and TABLE, and the VO's payload tarballs."""
    for name in ("vo-prod", "vo-test"):
        pilot(name, PAYLOAD, entry="start.sh")
    stage_one.repack({"plugins/vopayload.py": VOPAYLOAD, "lookuptable.conf": TABLE})
    stage_one.args = [arg.replace("--wrapperqueue=Q", "--wrapperqueue=ANALY_Q") for arg in stage_one.args] + [
        "--wrappervo=myvo", "--wrapperserverurl=" + stage_one.url]
    return stage_one


def reports(server):
    found = []
    while not server.reports.empty():
        found.append(server.reports.get_nowait()[2])
    return found


def summary(result):
    """Stage two's summary: its last line, before stage one's own last one."""
    return [line for line in result.stderr.splitlines() if "wrapper.py INFO: summary:" in line][-1]


def errors(result):
    return [line for line in result.stderr.splitlines() if " ERROR: " in line]


def test_as_a_grid_site_starts_it(authored, server, tmp_path):
    (tmp_path / "setup.sh").write_text("export VO_SETUP_DONE=1\n")
    args = [arg.replace("--wrappergrid=local", "--wrappergrid=OSG") for arg in authored.args]
    result = authored.run(*args, "--wrappersite=MYSITE", "--wrappermonitorurl=%s/mon" % server.url,
                          "--wrappervomode=test", "--extra=1", "free word", base=False,
                          env={"OSG_GRID": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "payload vo-test: --mode test --extra=1 free word\nvopayload: reported exit 0\n"
    assert "lookuptable.conf line 4" in result.stderr  # the more specific row, though after the wildcard one
    assert [(r["state"], r.get("rc"), r["plugin"]) for r in reports(server)] == [
        ("running", None, "vopayload"), ("exiting", 0, "vopayload")]
    assert not list(authored.tmpdir.iterdir())


def test_as_a_cloud_vm_starts_it(authored):
    # user-data hands over one argument string; weight 0 never draws vo-test
    line = " ".join(arg.replace("--wrappergrid=local", "--wrappergrid=cloud") for arg in authored.args)
    result = authored.run(line + " --wrapperseed=7 'two words'", base=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "payload vo-prod: --mode prod two words"


def test_a_blank_plugin_option_means_its_default(authored):
    result = authored.run("--wrappervomode=", "--wrapperheartbeat=")
    assert result.returncode == 0, result.stderr
    assert ": --mode prod\n" in result.stdout


def broken(step, body):
    """VOPAYLOAD with step (a method) replaced by one running body."""
    return VOPAYLOAD + "\n    def %s(self, *args):\n        %s\n" % (step, body)


@pytest.mark.parametrize("step", ["validate", "setup", "download", "command", "execute"])
@pytest.mark.parametrize("body", ["raise RuntimeError('boom')", "import sys; sys.exit(0)"])
def test_a_plugin_failing_in_a_step_still_reports_and_cleans_up(authored, server, step, body):
    authored.repack({"plugins/vopayload.py": broken(step, body)})
    result = authored.run("--wrappermonitorurl=%s/mon" % server.url)
    assert result.returncode == INTERNAL, result.stderr
    # the error line itself says what went wrong (was a bare "internal error:"); the traceback follows it
    assert errors(result)[0].endswith(" ERROR: internal error: " + ("RuntimeError: boom" if "boom" in body
                                                                   else "SystemExit: 0")), result.stderr
    assert "Traceback (most recent call last):" in result.stderr
    assert "exit=87 (internal error)" in summary(result)
    assert [r["rc"] for r in reports(server) if r["state"] == "exiting"] == [INTERNAL]
    assert not list(authored.tmpdir.iterdir())


@pytest.mark.parametrize("value", ["None", "-1", "300", "True", "'0'"])
def test_execute_returning_no_exit_code_is_an_internal_error(authored, value):
    authored.repack({"plugins/vopayload.py": broken("execute", "return " + value)})
    result = authored.run()
    assert result.returncode == INTERNAL, result.stderr
    assert errors(result) == [errors(result)[0]]
    assert "plugin vopayload: execute() returned %s, not an exit code 0-255" % value in errors(result)[0]
    assert result.stdout == "vopayload: reported exit 87\n"


@pytest.mark.parametrize("line, code, message", [
    ("*  *  *  myvo  vopayload", LOOKUP, "lookuptable.conf:6: expected 6 columns"),
    ("*  *  *  myvo  vopayload  vo-prod:²", LOOKUP, "lookuptable.conf:6: invalid weight in 'vo-prod:²'"),
    ("*  *  *  myvo  vopayload  vo-prod:-1", LOOKUP, "lookuptable.conf:6: invalid weight"),
    ("*  *  *  myvo  vopayload  vo-prod,,vo-test", LOOKUP, "lookuptable.conf:6: invalid pilot type ''"),
    ("*  *  LOCAL  myvo  trivial  -\n*  *  local  myvo  vopayload  x", LOOKUP,
     "lookuptable.conf:7: same SITE QUEUE GRID PROJECT as line 6"),
    ("*  *  local  myvo  vopayloda  vo-prod", PLUGIN,
     "plugin 'vopayloda' cannot be loaded: No module named 'plugins.vopayloda' (chosen by "),
    ("*  *  local  myvo  vopayload  -", BAD_OPTION, "vopayload needs --wrapperserverurl and a pilot type"),
])
def test_a_lookup_table_mistake_is_one_line_and_its_exit_code(authored, line, code, message):
    authored.repack({"lookuptable.conf": TABLE + line + "\n"})
    result = authored.run()
    assert result.returncode == code, result.stderr
    assert len(errors(result)) == 1 and message in errors(result)[0], result.stderr
    if code == PLUGIN:
        assert errors(result)[0].endswith("lookuptable.conf line 6)")


@pytest.mark.parametrize("added, message", [
    ('"--wrappervo", dest="vo2"', "--wrappervo (dest 'vo2') clashes with the wrapper's own --wrappervo"),
    ('"--pandaproject", dest="vo2"', "--pandaproject (dest 'vo2') clashes with the wrapper's own --wrappervo"),
    ('"--wrapperdiracserver", dest="serverurl"',
     "--wrapperdiracserver (dest 'serverurl') clashes with the wrapper's own --wrapperserverurl"),
])
def test_a_plugin_option_taking_the_wrappers_own_is_one_line(authored, added, message):
    # was silent: the plugin's option never set, or the wrapper's own value replaced by its default
    plugin = VOPAYLOAD.replace('default="prod")', 'default="prod")\n        parser.add_argument(%s)' % added)
    authored.repack({"plugins/vopayload.py": plugin})
    result = authored.run()
    assert result.returncode == PLUGIN, result.stderr
    assert errors(result) == [errors(result)[0]]
    assert "plugin vopayload cannot be loaded: add_arguments: " + message in errors(result)[0]


def test_a_plugin_missing_from_the_tarball_names_the_row(stage_one):
    stage_one.repack({"lookuptable.conf": TABLE})
    result = stage_one.run("--wrappervo=myvo")
    assert result.returncode == PLUGIN, result.stderr
    assert "No module named 'plugins.vopayload' (chosen by " in errors(result)[0]
    assert errors(result)[0].endswith("lookuptable.conf line 3)")


def test_a_payload_ignoring_sigterm_is_killed_after_the_grace(authored, pilot):
    pilot("vo-prod", "#!/bin/bash\ntrap '' TERM\necho $$\necho ready\nexec sleep 600\n", entry="start.sh")
    wrapper = authored.popen("--wrapperkillgrace=1", "--wrapperpilottype=vo-prod")
    pid = None
    try:
        pid = int(wrapper.stdout.readline())
        assert wrapper.stdout.readline() == "ready\n"
        wrapper.send_signal(signal.SIGTERM)
        out, err = wrapper.communicate(timeout=20)
    finally:
        wrapper.kill()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # on a failure only
    assert wrapper.returncode == 128 + signal.SIGKILL, err
    assert "payload still running 1s after it was asked to stop: killing it" in err
    assert out == "vopayload: reported exit 137\n"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not list(authored.tmpdir.iterdir())


def test_a_pilot_that_is_no_tarball_is_one_error_line(stage_one, server):
    (server.root / "maintenance.tar.gz").write_text("<html>down for maintenance</html>\n")  # served with 200
    result = stage_one.run("--wrapperplugin=generic", "--wrapperpilotcodeurl=%s/maintenance.tar.gz" % server.url)
    assert result.returncode == DOWNLOAD, result.stderr
    assert [line for line in result.stderr.splitlines() if " wrapper.py " not in line and " wrapper.sh " not in line] \
        == []  # was tar's three lines of complaint, two of them outside any log line
    assert len(errors(result)) == 1 and "unpacking %s/maintenance.tar.gz failed: gzip: " % server.url in errors(result)[0]


MIRRORS = VOPAYLOAD.replace(
    '''        payload = self.fetch("%s/%s.tar.gz" % (self.opts.serverurl, self.pilottype), "payload")''',
    '''        for mirror in ("broken", self.pilottype):
            try:
                payload = self.fetch("%s/%s.tar.gz" % (self.opts.serverurl, mirror), "payload")
                break
            except WrapperError as exc:
                self.log.warning(exc.message)''')


def test_a_plugin_trying_mirrors_unpacks_the_next_after_a_broken_one(authored, server):
    (server.root / "broken.tar.gz").write_text("<html>down for maintenance</html>\n")
    authored.repack({"plugins/vopayload.py": MIRRORS})
    result = authored.run("--wrapperpilottype=vo-prod")
    assert result.returncode == 0, result.stderr  # was 87: FileExistsError from the broken one's directory
    assert result.stdout.startswith("payload vo-prod: --mode prod\n")
    assert "WARNING: unpacking %s/broken.tar.gz failed" % server.url in result.stderr
    assert not list(authored.tmpdir.iterdir())


@pytest.mark.parametrize("code", [3, 83])
def test_report_and_summary_get_the_payloads_own_exit_code(authored, server, pilot, code):
    pilot("vo-prod", "#!/bin/sh\nexit %d\n" % code, entry="start.sh")
    result = authored.run("--wrapperpilottype=vo-prod", "--wrappermonitorurl=%s/mon" % server.url)
    assert result.returncode == code, result.stderr
    assert result.stdout == "vopayload: reported exit %d\n" % code
    assert reports(server)[-1]["rc"] == code
    assert "exit=%d (payload exit code)" % code in summary(result)  # 83 is not "pilot download failed"
    assert not errors(result)


def test_a_silent_payload_is_killed_in_one_line(authored, pilot):
    pilot("vo-prod", "#!/bin/sh\necho started\nexec sleep 600\n", entry="start.sh")
    result = authored.run("--wrapperpilottype=vo-prod", "--wrappersilencetimeout=1", "--wrapperkillgrace=1")
    assert result.returncode == SILENT, result.stderr
    assert result.stdout == "started\nvopayload: reported exit 84\n"
    assert len(errors(result)) == 1 and "payload silent for 1s" in errors(result)[0]
    assert "exit=84 (payload killed after silence)" in summary(result)


def test_the_payload_does_not_outlive_a_wrapper_whose_output_is_gone(stage_one, pilot, tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    url = pilot("quiet", '#!/bin/bash\necho $$\nread -r _ < "$GO"\necho more\nexec sleep 600\n')
    wrapper = stage_one.popen("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, env={"GO": str(fifo)})
    pid = None
    try:
        pid = int(wrapper.stdout.readline())
        wrapper.stdout.close()  # the reader of the wrapper's output goes away...
        fifo.write_text("\n")  # ...before the payload writes again
        err = wrapper.communicate(timeout=20)[1]
    finally:
        wrapper.kill()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # on a failure only
    assert wrapper.returncode == 87, err  # not 120 from Python's failed flush at exit
    assert "ERROR: cannot relay the payload's output: [Errno 32] Broken pipe" in err
    assert "Traceback" not in err
    assert "exit=87 (internal error)" in err
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
