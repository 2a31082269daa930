"""Stage one (wrapper.sh) run with real bash against loopback servers, with the
real packed stage two: secrets, signals, grid setup, special command,
downloads, option checks stage two agrees with, required programs."""
import contextlib
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from wrapperlib import options
from wrapperlib.errors import BAD_OPTION, WrapperError


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("wrapper.sh: error:")]


def test_secret_values_reach_no_log_line(stage_one, pilot):
    url = pilot("quiet", "#!/bin/sh\nexit 0\n")
    result = stage_one.run("--wrapperloglevel=debug", "--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url,
                           "--pilottoken=SECRET1", "--accessToken=SECRET2", "--wrappertoken", "SECRET3",
                           "--DB-Password", "SECRET4")
    assert result.returncode == 0, result.stderr
    assert "SECRET" not in result.stdout + result.stderr
    # stage one's debug line, stage two's, and the payload-started line
    for line in ("wrapper.sh DEBUG: stage two:", "wrapper.py DEBUG: options:", "wrapper.py INFO: payload started"):
        logged = [text for text in result.stderr.splitlines() if line in text]
        assert len(logged) == 1, result.stderr
        assert ("--pilottoken=<redacted> --accessToken=<redacted> --wrappertoken <redacted> "
                "--DB-Password <redacted>") in logged[0]


@pytest.mark.parametrize("name", ["USR1", "USR2"])
def test_usr_signals_reach_the_payload_through_both_stages(stage_one, pilot, name):
    url = pilot("trapping", '#!/bin/bash\nfor s in USR1 USR2; do trap "echo got $s; exit 7" $s; done\n'
                            'echo ready\nsleep 30 &\nwait $!\nexit 1\n')
    wrapper = stage_one.popen("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url)
    try:
        assert wrapper.stdout.readline() == "ready\n"  # the payload's traps are set
        wrapper.send_signal(getattr(signal, "SIG" + name))
        out, err = wrapper.communicate(timeout=15)
    finally:
        wrapper.kill()
    assert wrapper.returncode == 7, err
    assert out == "got %s\n" % name
    assert "forwarded to the payload: SIG" + name in err
    assert not list(stage_one.tmpdir.iterdir())


def osg_args(stage_one):
    return [arg.replace("--wrappergrid=local", "--wrappergrid=OSG") for arg in stage_one.args]


@pytest.mark.parametrize("status", [0, 3])
def test_a_grid_setup_file_calling_exit_is_grid_broken(stage_one, tmp_path, status):
    (tmp_path / "setup.sh").write_text("echo sourced >&2\nexit %d\n" % status)
    result = stage_one.run(*osg_args(stage_one), base=False, env={"OSG_GRID": str(tmp_path)})
    assert result.returncode == 67
    assert "sourced" in result.stderr
    assert error_lines(result.stderr) == [
        "wrapper.sh: error: grid OSG: setup file %s/setup.sh exited (exit %d)" % (tmp_path, status)]


def test_a_grid_setup_file_setting_traps_does_not_replace_the_wrappers(stage_one, tmp_path):
    (tmp_path / "setup.sh").write_text("trap 'echo setup trap' EXIT TERM\n")
    result = stage_one.run(*osg_args(stage_one), "--wrapperplugin=trivial", base=False,
                           env={"OSG_GRID": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert not list(stage_one.tmpdir.iterdir())  # the wrapper's own cleanup ran


@pytest.mark.parametrize("command", [
    "exit 0",
    "declare -g OPT[tarballchecksum]=" + "0" * 64,
    "export LOGLEVEL=debug",
])
def test_the_special_command_cannot_change_the_wrappers_state(stage_one, command):
    result = stage_one.run("--wrapperplugin=trivial", "--wrapperspecialcmd=" + command)
    assert result.returncode == 0, result.stderr
    assert "trivial: site=Q" in result.stdout  # stage two ran
    assert "DEBUG" not in result.stderr


def test_a_special_command_exiting_fails_with_exit_68(stage_one):
    result = stage_one.run("--wrapperspecialcmd=exit 3")
    assert result.returncode == 68
    assert error_lines(result.stderr) == ["wrapper.sh: error: --wrapperspecialcmd failed (exit 3)"]


@pytest.mark.parametrize("command, seen", [
    ("export SPECIAL_SET='a b\nc'", "set=a b\nc. gone=1."),
    ("unset SPECIAL_GONE", "set=none. gone=none."),
])
def test_stage_two_inherits_what_the_special_command_exports_and_unsets(stage_one, pilot, command, seen):
    url = pilot("env", '#!/bin/sh\necho "set=${SPECIAL_SET-none}. gone=${SPECIAL_GONE-none}."\n')
    result = stage_one.run("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url,
                           "--wrapperspecialcmd=" + command, env={"SPECIAL_GONE": "1"})
    assert result.returncode == 0, result.stderr
    assert seen in result.stdout


def test_glob_characters_in_urls_are_literal(stage_one, server, pilot):
    shutil.copy(server.root / "wrapper.tar.gz", server.root / "stage[1].tar.gz")
    url = pilot("pilot[1]", "#!/bin/sh\necho pilot ran\n")
    args = [arg.replace("/wrapper.tar.gz", "/stage[1].tar.gz") for arg in stage_one.args]
    result = stage_one.run(*args, "--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, base=False)
    assert result.returncode == 0, result.stderr
    assert "pilot ran" in result.stdout


@pytest.mark.parametrize("downloader", ["curl", "wget"])
def test_downloads_retry_a_refused_connection(stage_one, pilot, late_server, path_without, downloader):
    pilot("late", "#!/bin/sh\necho late pilot\n")
    path = path_without("curl") if downloader == "wget" else os.environ["PATH"]
    args = [arg.replace(stage_one.url, late_server) for arg in stage_one.args]
    result = stage_one.run(*args, "--wrapperplugin=generic", "--wrapperpilotcodeurl=%s/late.tar.gz" % late_server,
                           base=False, env={"PATH": path, "WRAPPER_DOWNLOAD_RETRIES": "3"})
    assert result.returncode == 0, result.stderr
    assert "late pilot" in result.stdout


def test_download_settings_are_decimal(stage_one):
    result = stage_one.run("--wrapperplugin=trivial", env={"WRAPPER_DOWNLOAD_TIMEOUT": "08",
                                                           "WRAPPER_DOWNLOAD_RETRIES": "09"})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name, value", [
    ("WRAPPER_DOWNLOAD_TIMEOUT", "0"),
    ("WRAPPER_DOWNLOAD_TIMEOUT", "-1"),
    ("WRAPPER_DOWNLOAD_TIMEOUT", "1e3"),
    ("WRAPPER_DOWNLOAD_RETRIES", "x"),
    ("WRAPPER_DOWNLOAD_RETRIES", "99999999999999999999"),
])
def test_bad_download_settings_are_bad_options(stage_one, name, value):
    result = stage_one.run(env={name: value})
    assert result.returncode == 64
    assert len(result.stderr.splitlines()) == 1 and name in result.stderr


def downloaders(url):
    """Pids of curl or wget processes fetching url."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as cmdline:
                argv = cmdline.read().decode(errors="replace").split("\0")
        except (OSError, ValueError):
            continue
        if os.path.basename(argv[0]) in ("curl", "wget") and any(url in arg for arg in argv):
            found.append(int(entry))
    return found


@pytest.mark.parametrize("downloader", ["curl", "wget"])
def test_sigterm_stops_a_hung_download_at_once(stage_one, hanging, path_without, downloader):
    path = path_without("curl") if downloader == "wget" else os.environ["PATH"]
    url = hanging + "/hung-%s.tar.gz" % downloader
    args = [arg.replace(stage_one.url + "/wrapper.tar.gz", url) for arg in stage_one.args]
    wrapper = stage_one.popen(*args, base=False, env={"PATH": path, "WRAPPER_DOWNLOAD_TIMEOUT": "60"})
    try:
        next(line for line in wrapper.stderr if "fetching" in line)
        deadline = time.monotonic() + 10
        while not downloaders(url) and time.monotonic() < deadline:  # the downloader is running
            time.sleep(0.01)
        wrapper.send_signal(signal.SIGTERM)
        wrapper.communicate(timeout=5)
    finally:
        wrapper.kill()
    assert wrapper.returncode == 128 + signal.SIGTERM
    assert not downloaders(url)
    assert not list(stage_one.tmpdir.iterdir())


# Values stage one used to accept and stage two refused.
DISAGREED = [
    ("--wrapperpilottype", "a:0"),
    ("--wrapperpilottype", "a:0,b:00"),
    ("--wrapperpilottype", "-,a"),
    ("--wrapperserverurl", "https://a.example,https://b.example"),
    ("--wrappertarballurl", "https://a.example/w.tar.gz\nhttps://b.example/w.tar.gz"),
    ("--wrappertarballurl", "https://a.example/w.tar.gz,"),
    ("--wrapperpilotcodeurl", "https://a.example/p.tar.gz\n"),
]


@pytest.mark.parametrize("option, value", DISAGREED)
def test_both_stages_refuse(stage_one, option, value):
    args = [arg for arg in stage_one.args if not arg.startswith(option + "=")] + [option + "=" + value]
    result = stage_one.run(*args, base=False)
    assert result.returncode == 64
    assert len(error_lines(result.stderr)) == len(result.stderr.splitlines()) == 1
    assert option in result.stderr
    with pytest.raises(WrapperError) as error:
        options.parse(args)
    assert error.value.code == BAD_OPTION and option in error.value.message


@pytest.mark.parametrize("option, value", [
    ("--wrapperpilottype", "a:0,b:1"),
    ("--wrapperpilottype", "-"),
    ("--wrapperserverurl", "https://a.example/x"),
])
def test_both_stages_accept(stage_one, option, value):
    result = stage_one.run("--wrapperplugin=trivial", option + "=" + value)
    assert result.returncode == 0, result.stderr


def test_a_repeated_stage_two_option_is_an_error_through_stage_one(stage_one, server):
    result = stage_one.run("--wrapperplugin=trivial", "--wrappermonitorurl=%s/a" % server.url,
                           "--wrappermonitorurl=%s/b" % server.url)
    assert result.returncode == BAD_OPTION
    assert "--wrappermonitorurl: given more than once" in result.stderr


def test_missing_mkdir_is_reported_by_name(stage_one, path_without):
    result = stage_one.run(env={"PATH": path_without("mkdir")})
    assert result.returncode == 65
    assert error_lines(result.stderr) == ["wrapper.sh: error: missing required program(s): mkdir"]


def test_options_starting_with_h_reach_the_payload(stage_one):
    """Only a lone -h or --help is help: -hostname, -host=x, -hv and a value -h are the payload's."""
    passed = ["-hostname", "foo", "-host=x", "-hv", "--payloadopt", "-h", "--help"]
    result = stage_one.run("--wrapperplugin=trivial", *passed)
    assert result.returncode == 0, result.stderr
    assert "trivial: other options: " + " ".join(passed) + "\n" in result.stdout


def test_help_alone_prints_the_usage(stage_one):
    for arg in ("-h", "--help"):
        result = stage_one.run(arg, base=False)
        assert result.returncode == 0 and result.stdout.startswith("usage: wrapper.sh"), result.stderr


def test_a_full_disk_on_stdout_keeps_the_reported_exit_code(stage_one, server):
    """Python's own flush at exit would fail and turn the exit code into 120."""
    with open("/dev/full", "w") as full:
        result = stage_one.run("--wrapperplugin=trivial", "--wrappermonitorurl=%s/mon" % server.url, stdout=full)
    assert result.returncode == 0, result.stderr
    assert "WARNING: standard output lost: [Errno 28] No space left on device" in result.stderr
    assert "Exception ignored" not in result.stderr
    reported = [server.reports.get(timeout=10)[2] for _ in range(2)]
    assert reported[-1]["rc"] == 0


def test_a_chatty_leftover_does_not_keep_the_wrapper_alive(stage_one, pilot):
    url = pilot("chatty", '#!/bin/bash\n(for i in $(seq 200); do echo tick; sleep 0.1; done) &\n'
                          'echo $! > "$PIDFILE"\nexit 3\n')
    pidfile = stage_one.tmpdir.parent / "leftover.pid"
    result = stage_one.run("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, "--wrapperkillgrace=1",
                           "--wrappersilencetimeout=60", env={"PIDFILE": str(pidfile)}, timeout=30)
    assert result.returncode == 3, result.stderr
    assert result.stdout.count("tick") < 100  # not relayed until the child's own end
    assert "payload exited; stopping the processes it left behind" in result.stderr
    assert dead(int(pidfile.read_text()))


def dead(pid, timeout=5.0):
    """Waits (bounded) until pid is gone or a zombie: a signal is delivered asynchronously."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def survivors(*pids):
    """Those of pids still running (bounded wait), killed with their process group (the
    payload's) so that a failing test leaves nothing behind."""
    left = [pid for pid in pids if not dead(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    return left


# A payload with a child in its process group; it prints its pid, stage two's and the child's.
LASTING = '#!/bin/bash\n%s\nsleep 300 &\necho "$$ $PPID $!"\nwait\n'
GROUP_LEFT = "stage two is gone but its payload's process group %d is running: SIGTERM, SIGKILL after %ds"
GROUP_KILLED = "payload's process group %d still running %ds after SIGTERM: killing it"


@pytest.mark.parametrize("ignore", ["", "trap '' TERM"])
def test_the_payload_does_not_outlive_a_killed_stage_two(stage_one, pilot, ignore):
    """The OOM killer, or a batch system ending only the top process, kills stage two:
    stage one stops the payload's group as stage two would have, and exits 137."""
    url = pilot("lasting", LASTING % ignore)
    wrapper = stage_one.popen("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, "--wrapperkillgrace=1")
    pids, left = [], []
    try:
        pids = payload, stage_two, child = list(map(int, wrapper.stdout.readline().split()))
        os.kill(stage_two, signal.SIGKILL)
        err = wrapper.communicate(timeout=20)[1]
    finally:
        wrapper.kill()
        if pids:
            left = survivors(payload, child)
    assert not left, err
    assert wrapper.returncode == 128 + signal.SIGKILL, err
    assert GROUP_LEFT % (payload, 1) in err
    assert (GROUP_KILLED % (payload, 1) in err) == bool(ignore)
    assert not list(stage_one.tmpdir.iterdir())


def test_what_the_payload_left_does_not_outlive_a_killed_stage_two(stage_one, pilot):
    """The payload has exited and stage two is killed while giving what it left its second:
    the group, without its leader, is still stopped."""
    url = pilot("leaving", "#!/bin/bash\n(trap '' TERM; exec sleep 300) &\necho \"$$ $PPID $!\"\nexec sleep 300\n")
    wrapper = stage_one.popen("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, "--wrapperkillgrace=1")
    pids, left = [], []
    try:
        pids = payload, stage_two, child = list(map(int, wrapper.stdout.readline().split()))
        os.kill(payload, signal.SIGKILL)
        os.kill(stage_two, signal.SIGKILL)  # within the second stage two gives leftovers
        err = wrapper.communicate(timeout=20)[1]
    finally:
        wrapper.kill()
        if pids:
            left = survivors(child)
    assert not left, err
    assert wrapper.returncode == 128 + signal.SIGKILL, err
    assert GROUP_KILLED % (payload, 1) in err
    assert not list(stage_one.tmpdir.iterdir())


def test_a_signal_to_stage_one_reaches_the_payload_of_a_killed_stage_two(stage_one, pilot, tmp_path):
    """Stage one, stopping the payload of a killed stage two, forwards its own SIGTERM to
    the payload's group rather than exiting and leaving it; this payload exits on its second."""
    got = tmp_path / "got"
    url = pilot("counting", '#!/bin/bash\nn=0\ntrap \'n=$((n+1)); echo TERM >> "$GOT"; [ $n -lt 2 ] || exit 5\' TERM\n'
                            'echo "$$ $PPID"\nwhile :; do sleep 300 & wait $!; done\n')
    wrapper = stage_one.popen("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, "--wrapperkillgrace=60",
                              env={"GOT": str(got)})
    payload, left = None, []
    try:
        payload, stage_two = map(int, wrapper.stdout.readline().split())
        os.kill(stage_two, signal.SIGKILL)
        # Stage one's own SIGTERM handled first: two pending at once would be one.
        deadline = time.monotonic() + 15
        while not (got.exists() and got.read_text()):
            assert time.monotonic() < deadline, "stage one sent the payload no SIGTERM"
            time.sleep(0.01)
        wrapper.send_signal(signal.SIGTERM)
        err = wrapper.communicate(timeout=20)[1]
    finally:
        wrapper.kill()
        if payload is not None:
            left = survivors(payload)
    assert not left, err
    assert wrapper.returncode == 128 + signal.SIGKILL, err  # stage two's
    assert GROUP_LEFT % (payload, 60) in err
    assert "forwarding SIGTERM to the payload's process group %d" % payload in err, err
    assert got.read_text() == "TERM\nTERM\n"
    assert "killing it" not in err
    assert not list(stage_one.tmpdir.iterdir())


def test_a_normal_run_records_the_payloads_group_only_for_stage_one(stage_one, pilot):
    """Stage two records the group in the work directory while the payload runs (the
    payload waits for it, bounded), and keeps the file's name out of the payload's environment."""
    url = pilot("recorded", '#!/bin/bash\ngroup=$WRAPPER_WORKDIR/.payload.pgid\n'
                            'for _ in $(seq 100); do [ ! -f "$group" ] || break; sleep 0.05; done\n'
                            'read -r pgid _ < "$group"\n[ "$pgid" = $$ ] && echo "recorded ${WRAPPER_PAYLOAD_GROUP_FILE-}"\n'
                            'exit 3\n')
    result = stage_one.run("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "recorded \n"
    assert "process group" not in result.stderr
    assert not list(stage_one.tmpdir.iterdir())


@pytest.mark.parametrize("setup", ["set -e", "set -eu; IFS=:; shopt -s failglob nullglob"])
def test_a_grid_setup_files_shell_state_does_not_break_stage_one(stage_one, pilot, tmp_path, setup):
    """Under the file's set -e, the forwarded SIGTERM would end stage one at once (orphaning
    stage two); with its IFS=:, taking over the special command's environment failed."""
    (tmp_path / "setup.sh").write_text(setup + "\n")
    url = pilot("trapping", '#!/bin/bash\ntrap "echo got TERM; exit 7" TERM\necho "ready $SPECIAL_SET"\n'
                            'sleep 30 &\nwait $!\nexit 1\n')
    wrapper = stage_one.popen(*osg_args(stage_one), "--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url,
                              "--wrapperspecialcmd=export SPECIAL_SET=yes", base=False,
                              env={"OSG_GRID": str(tmp_path)})
    try:
        assert wrapper.stdout.readline() == "ready yes\n"
        wrapper.send_signal(signal.SIGTERM)
        out, err = wrapper.communicate(timeout=15)
    finally:
        wrapper.kill()
    assert wrapper.returncode == 7, err
    assert out == "got TERM\n"
    assert not list(stage_one.tmpdir.iterdir())


def test_sigterm_stops_the_special_command_and_what_it_started(stage_one, tmp_path):
    fifo = tmp_path / "pids"
    os.mkfifo(fifo)
    told = os.open(fifo, os.O_RDWR)  # never blocks; the special command writes to it
    try:
        wrapper = stage_one.popen("--wrapperspecialcmd=bash -c 'sleep 600 & echo $$ $! > \"$PIDS\"; wait'",
                                  env={"PIDS": str(fifo)})
        try:
            assert select.select([told], [], [], 15)[0], "the special command did not start"
            pids = [int(pid) for pid in os.read(told, 100).split()]
            wrapper.send_signal(signal.SIGTERM)
            wrapper.communicate(timeout=10)
        finally:
            wrapper.kill()
    finally:
        os.close(told)
    assert wrapper.returncode == 128 + signal.SIGTERM
    for pid in pids:
        assert dead(pid), "special command process %d left running" % pid


def test_a_secret_in_the_special_command_reaches_no_log_line(stage_one):
    result = stage_one.run("--wrapperplugin=trivial", "--wrapperloglevel=debug",
                           "--wrapperspecialcmd=true --password=SECRET5 --api-token SECRET6")
    assert result.returncode == 0, result.stderr
    assert "SECRET" not in result.stderr
    for line in ("wrapper.sh INFO: running special command:", "wrapper.sh DEBUG: stage two:",
                 "wrapper.py DEBUG: options:"):
        logged = [text for text in result.stderr.splitlines() if line in text]
        assert len(logged) == 1 and "true --password=<redacted> --api-token <redacted>" in logged[0], result.stderr


def test_query_strings_of_urls_reach_no_log_line(stage_one, server):
    with socket.socket() as unused:  # a monitor that refuses: its URL is in a warning
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    args = [arg.replace("/wrapper.tar.gz", "/missing.tar.gz?token=SECRET7,%s/wrapper.tar.gz?token=SECRET8"
                        % server.url) for arg in stage_one.args]
    result = stage_one.run(*args, "--wrapperplugin=trivial", "--wrapperloglevel=debug",
                           "--wrappermonitorurl=http://127.0.0.1:%d/mon?token=SECRET9" % port, base=False)
    assert result.returncode == 0, result.stderr
    assert "SECRET" not in result.stderr
    assert "mirror failed: %s/missing.tar.gz?<redacted>" % server.url in result.stderr
    assert "fetching %s/wrapper.tar.gz?<redacted>" % server.url in result.stderr
    assert "WARNING: monitor report 'running' to http://127.0.0.1:%d/mon?<redacted> failed" % port in result.stderr


def test_relative_paths_in_options_are_the_job_directorys(stage_one, tmp_path, fake_bin):
    """HTCondor transfers input files to the job directory stage one starts in, not to its
    private work directory."""
    job = tmp_path / "job"
    job.mkdir()
    (job / "my.conf").write_text("* * * * trivial -\n")
    (job / "pool.token").write_text("eyJhbGciOiJIUzI1NiJ9.e30.x\n")
    result = stage_one.run("--wrapperlookuptable=my.conf", cwd=job)
    assert result.returncode == 0, result.stderr
    assert "(from %s/my.conf line 1)" % job in result.stderr
    fake_bin("condor_master", '#!/bin/sh\ncat "$(dirname "$CONDOR_CONFIG")/tokens.d/pool.token"\n')
    startd = ["--wrapperplugin=condorstartd", "--wrappercollector=cm.example.org"]
    result = stage_one.run(*startd, "--wrappertokenfile=pool.token", cwd=job, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "eyJhbGciOiJIUzI1NiJ9.e30.x\n"
    result = stage_one.run(*startd, "--wrappertokenfile=missing.token", cwd=job)
    assert result.returncode == BAD_OPTION
    assert "ERROR: --wrappertokenfile: cannot read %s/missing.token: No such file or directory" % job in result.stderr


def test_a_relative_tmpdir_is_the_job_directorys(stage_one, tmp_path):
    job = tmp_path / "job"
    (job / "scratch").mkdir(parents=True)
    result = stage_one.run("--wrapperplugin=trivial", "--wrapperloglevel=debug", cwd=job, env={"TMPDIR": "scratch"})
    assert result.returncode == 0, result.stderr
    assert "work directory %s/scratch/wrapper." % job in result.stderr
    assert not list((job / "scratch").iterdir())


@pytest.mark.parametrize("name", ["fetch", "log", "die"])
def test_the_special_command_runs_site_programs_named_like_the_wrappers_functions(stage_one, tmp_path, name):
    site_bin = tmp_path / "site-bin"
    site_bin.mkdir()
    (site_bin / name).write_text('#!/bin/sh\necho "site %s ran: $*"\n' % name)
    (site_bin / name).chmod(0o755)
    result = stage_one.run("--wrapperplugin=trivial", "--wrapperspecialcmd=%s a b" % name,
                           env={"PATH": "%s:%s" % (site_bin, os.environ["PATH"])})
    assert result.returncode == 0, result.stderr
    assert "site %s ran: a b\n" % name in result.stdout


def test_wget_has_a_time_limit_per_try(stage_one, trickling, path_without):
    args = [arg.replace(stage_one.url + "/wrapper.tar.gz", trickling + "/wrapper.tar.gz") for arg in stage_one.args]
    started = time.monotonic()
    result = stage_one.run(*args, base=False, timeout=30, env={
        "PATH": path_without("curl"), "WRAPPER_DOWNLOAD_TIMEOUT": "1", "WRAPPER_DOWNLOAD_RETRIES": "1"})
    assert result.returncode == 70, result.stderr
    assert time.monotonic() - started < 10  # two tries of 1 s and a pause of 1 s


@pytest.mark.parametrize("status, retried", [(503, True), (500, True), (404, False)])
def test_wget_retries_server_errors_as_curl_does(stage_one, flaky, path_without, status, retried):
    mirror = flaky(status, 1)
    args = [arg.replace(stage_one.url, mirror.url) for arg in stage_one.args]
    result = stage_one.run(*args, "--wrapperplugin=trivial", base=False,
                           env={"PATH": path_without("curl"), "WRAPPER_DOWNLOAD_RETRIES": "2"})
    assert result.returncode == (0 if retried else 70), result.stderr
    assert mirror.hits == (2 if retried else 1)


def test_wget_needs_timeout_and_sleep(stage_one, path_without):
    result = stage_one.run(env={"PATH": path_without("curl", "timeout", "sleep")})
    assert result.returncode == 65
    assert error_lines(result.stderr) == ["wrapper.sh: error: missing required program(s): timeout, sleep"]


def test_read_only_directories_the_payload_leaves_are_removed(stage_one, pilot):
    # as Go's module cache, or a pilot tarball holding a 0555 directory; root removes them anyway
    url = pilot("readonly", "#!/bin/sh\nmkdir -p cache/mod && touch cache/mod/f && chmod -R a-w cache\n")
    scratch = tempfile.mkdtemp(prefix="wrapper-readonly-")  # not under pytest's 0700 root-only tmp_path
    try:
        os.chmod(scratch, 0o1777)
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.skip("needs setpriv to run stage one as nobody")
            nobody = pwd.getpwnam("nobody")
            stage_one.argv = ["setpriv", "--reuid=%d" % nobody.pw_uid, "--regid=%d" % nobody.pw_gid,
                              "--clear-groups"] + stage_one.argv
        result = stage_one.run("--wrapperplugin=generic", "--wrapperpilotcodeurl=" + url, cwd=scratch,
                               env={"TMPDIR": scratch})
        assert result.returncode == 0, result.stderr
        assert os.listdir(scratch) == []  # was the whole work directory, and rm's "Permission denied"
        assert "Permission denied" not in result.stderr
    finally:
        subprocess.run(["chmod", "-R", "u+w", scratch])
        shutil.rmtree(scratch)
