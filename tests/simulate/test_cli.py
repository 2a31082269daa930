"""``provisioner simulate`` on bad input: one line naming the file, line or option, exit 2,
and before the replay rather than after it."""
import pytest

from provisioner import cli
from provisioner.simulate.engine import Simulation

TRACE = "submit,runtime\n0,60\n"


def simulate(capsys, conf, trace, *args):
    """(exit code, stderr lines) of ``provisioner simulate``."""
    code = cli.main(["simulate", "--conf", str(conf), "--trace", str(trace), "--quiet", *args])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def never_replays(monkeypatch):
    """Bad input must be refused before a replay starts, not after the user has waited for it."""
    monkeypatch.setattr(Simulation, "run", lambda self: pytest.fail("replayed despite bad input"))


@pytest.fixture
def trace(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(TRACE)
    return path


@pytest.mark.parametrize("policy", [[], ["--policy", "apf"]])
@pytest.mark.parametrize("queue_conf,queues,error", [
    ("nothere.conf", None, "{dir}/nothere.conf: cannot read: No such file or directory"),
    ("queues.conf", "[A]\nthis is not an option line\n", "{dir}/queues.conf:2: not a 'key = value' line, "
                                                          "a [section] header or a comment"),
    (None, None, "{dir}/factory.conf: [Factory]: section is missing"),
])
def test_a_config_error_is_one_line_with_or_without_a_policy(tmp_path, capsys, trace, never_replays, policy,
                                                             queue_conf, queues, error):
    if queues:
        (tmp_path / "queues.conf").write_text(queues)
    factory = f"[Factory]\nfactoryId = sim\nqueueConf = {queue_conf}\n" if queue_conf else "[Simulate]\nseed = 1\n"
    (tmp_path / "factory.conf").write_text(factory)
    code, err = simulate(capsys, tmp_path / "factory.conf", trace, "--out", str(tmp_path / "out"), *policy)
    assert (code, err) == (2, ["error: " + error.format(dir=tmp_path)])


@pytest.mark.parametrize("policy", [[], ["--policy", "elastic"]])
def test_a_file_url_queue_conf_replays_with_or_without_a_policy(sim_conf, tmp_path, capsys, trace, policy):
    conf = tmp_path / "factory.conf"
    sim_conf("cloud")
    conf.write_text(conf.read_text().replace("queueConf = queues.conf", f"queueConf = file://{tmp_path}/queues.conf"))
    code, err = simulate(capsys, conf, trace, "--out", str(tmp_path / "out"), *policy)
    assert (code, err) == (0, [])


@pytest.mark.parametrize("out,error", [
    ("/proc", "/proc: No such file or directory"),  # not even root creates a file there
    ("{dir}/afile/sub", "{dir}/afile/sub: Not a directory"),
    ("{dir}/afile", "{dir}/afile: Not a directory"),
    ("{dir}/out", "{dir}/out/simulate.png: Is a directory"),
])
def test_an_unwritable_out_is_one_line_before_the_replay(sim_conf, tmp_path, capsys, trace, never_replays,
                                                         out, error):
    (tmp_path / "afile").write_text("")
    (tmp_path / "out" / "simulate.png").mkdir(parents=True)
    code, err = simulate(capsys, sim_conf("cloud"), trace, "--out", out.format(dir=tmp_path))
    assert (code, err) == (2, ["error: --out: cannot write to " + error.format(dir=tmp_path)])


# 1e-300: the stop rounded onto the start (a ZeroDivisionError in the progress)
@pytest.mark.parametrize("hours", ["nan", "inf", "-inf", "0", "-1", "1e-300"])
def test_hours_must_be_a_finite_number_of_at_least_a_second(sim_conf, tmp_path, capsys, trace, never_replays,
                                                            hours):
    code, err = simulate(capsys, sim_conf("cloud"), trace, "--out", str(tmp_path / "out"), f"--hours={hours}")
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --hours: must be a number of at least"), err


def test_no_enabled_queue_names_the_config(sim_conf, tmp_path, capsys, trace, never_replays):
    conf = sim_conf("[PILOT]\nenabled = False\nbatchsubmitplugin = CondorLocal\n")
    code, err = simulate(capsys, conf, trace, "--out", str(tmp_path / "out"))
    assert (code, err) == (2, [f"error: {conf}: no enabled queue to simulate"])


def test_an_error_in_the_last_policy_is_found_before_the_first_replays(sim_conf, tmp_path, capsys, trace,
                                                                       never_replays):
    code, err = simulate(capsys, sim_conf("pilot"), trace, "--out", str(tmp_path / "out"),
                         "--policy", "apf", "--policy", "vmdemand")
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'queues.conf'}: [PILOT] "), err


@pytest.mark.parametrize("start,error", [("-1", "must be at least 0, got -1.0"),
                                         ("9e18", "must be at most 4294967296, got 9e+18"),
                                         ("1e19", "must be at most 4294967296, got 1e+19")])
def test_a_start_no_virtual_clock_can_keep_is_one_line(sim_conf, tmp_path, capsys, trace, never_replays, start,
                                                       error):
    # 9e18 used to replay for ever (60 s added to it is lost in rounding), 1e19 to end in a SystemError
    conf = sim_conf("pilot", start=start)
    code, err = simulate(capsys, conf, trace, "--out", str(tmp_path / "out"))
    assert (code, err) == (2, [f"error: {conf}: [Simulate] start: {error}"])


@pytest.mark.parametrize("key", ["boot_failure_rate", "boot_failure_rate.c5.2xlarge"])
def test_a_boot_failure_rate_over_1_is_one_line(sim_conf, tmp_path, capsys, trace, never_replays, key):
    conf = sim_conf("cloud", **{key: "2"})  # was accepted: every VM failed, as at 1
    code, err = simulate(capsys, conf, trace, "--out", str(tmp_path / "out"))
    assert (code, err) == (2, [f"error: {conf}: [Simulate] {key}: must be at most 1, got 2"])


@pytest.mark.parametrize("key", ["boot_time.c5.2xlarge", "boot_failure_rate.c5.2xlarge"])
def test_a_per_type_override_of_none_is_no_override(sim_conf, tmp_path, capsys, caplog, trace, key):
    # None reached the replay's arithmetic: a TypeError traceback, or every launch failing on it
    conf = sim_conf("cloud", **{key: "None"})
    code, err = simulate(capsys, conf, trace, "--out", str(tmp_path / "out"))
    assert code == 0 and "TypeError" not in caplog.text, err


def test_a_job_no_queue_selects_is_a_warning_not_a_silent_wait(sim_conf, tmp_path, capsys, queue_texts):
    # the queues' constraints leave a gap (8 to 16 GB): the job in it is no queue's work, no VM is
    # launched for it though one would hold it, and it waits to the end; the user is told why,
    # not left with an unexplained wait
    small = queue_texts["cloud"] + "wmsstatus.condor.constraint = RequestMemory <= 8000\n"
    big = (queue_texts["cloud"].replace("[CLOUD]", "[HIMEM]").replace("wmsqueue = CLOUD", "wmsqueue = HIMEM")
           .replace("c5.2xlarge", "r5.2xlarge") + "wmsstatus.condor.constraint = RequestMemory > 16000\n")
    conf = sim_conf(small + "\n" + big, stall=3600)
    trace = tmp_path / "gap.csv"
    trace.write_text("submit,runtime,memory\n0,60,12000\n")
    code, err = simulate(capsys, conf, trace, "--out", str(tmp_path / "out"))
    assert (code, err) == (0, ["warning: 1 job(s) of queue CLOUD are not selected by its "
                               "wmsstatus.condor.constraint: no VM or pilot was launched for them and they never "
                               "ran; they count in the waits as waiting to the end"])
    assert "1 not selected by queue CLOUD" in (tmp_path / "out" / "simulate.html").read_text()
