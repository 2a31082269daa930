"""cleanlogs.keepdays: the factory removes old <baseLogDir>/<day>/<queue> directories, and nothing else."""
import logging
import os
import shutil
import time

import pytest

from provisioner import config as configmod
from provisioner.errors import ConfigErrors

# 2023-11-14 22:13:20 UTC, the emulated fixture's start
START = 1_700_000_000.0
DAY = 86400

QUEUES = """
[DEFAULT]
wmsstatus.condor.queueattribute = TargetQueue
[A]
batchsubmitplugin = CondorLocal
{a}
[B]
batchsubmitplugin = CondorLocal
"""


def pilot_log(logs, day, queue, name="1.0.out"):
    d = logs / day / queue
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text("pilot output\n")
    return d


def days_ago(n):
    return time.strftime("%Y-%m-%d", time.gmtime(START - n * DAY))


def test_days_older_than_the_factory_default_of_14_are_removed_and_recent_ones_kept(write_conf, emulated, tmp_path):
    logs = tmp_path / "logs"
    old, edge, today = pilot_log(logs, days_ago(15), "A"), pilot_log(logs, days_ago(14), "A"), \
        pilot_log(logs, days_ago(0), "B")
    (logs / "ledger.sqlite").write_text("the ledger when statedir is unset")
    (logs / "A.user-data").write_text("CondorEC2's user-data")
    factory, *_ = emulated(write_conf(QUEUES.format(a="")))
    factory.cycle()
    assert not old.exists() and not old.parent.exists()  # its day directory, empty, goes too
    assert edge.exists() and today.exists()
    assert (logs / "ledger.sqlite").exists() and (logs / "A.user-data").exists()


def test_a_queue_keepdays_overrides_the_factory_default_and_an_unknown_queue_gets_the_default(
        write_conf, emulated, tmp_path):
    logs = tmp_path / "logs"
    a3, b3 = pilot_log(logs, days_ago(3), "A"), pilot_log(logs, days_ago(3), "B")
    gone11, gone9 = pilot_log(logs, days_ago(11), "GONE"), pilot_log(logs, days_ago(9), "GONE")
    factory, *_ = emulated(write_conf(QUEUES.format(a="cleanlogs.keepdays = 2"), "cleanlogs.keepdays = 10\n"))
    assert [q.keepdays for q in factory.config.queues] == [2, 10]
    factory.cycle()
    assert not a3.exists() and b3.exists()
    assert not gone11.exists() and gone9.exists()  # a queue no longer configured: the [Factory] value


def test_zero_keeps_forever(write_conf, emulated, tmp_path):
    logs = tmp_path / "logs"
    a, b = pilot_log(logs, days_ago(400), "A"), pilot_log(logs, days_ago(400), "B")
    factory, *_ = emulated(write_conf(QUEUES.format(a="cleanlogs.keepdays = 0")))
    factory.cycle()
    assert a.exists() and not b.exists()
    factory, *_ = emulated(write_conf(QUEUES.format(a=""), "cleanlogs.keepdays = 0\n"))
    pilot_log(logs, days_ago(400), "GONE")
    factory.cycle()
    assert a.exists() and (logs / days_ago(400) / "GONE").exists()


def test_symlinks_are_not_followed_and_other_entries_are_untouched(write_conf, emulated, tmp_path):
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    pilot_log(outside, "A", "x")
    logs.mkdir()
    old = days_ago(30)
    os.symlink(outside, logs / days_ago(31))  # a day directory that is a link
    pilot_log(logs, old, "B")
    os.symlink(outside / "A", logs / old / "A")  # a queue directory that is a link
    (logs / old / "notes.txt").write_text("an admin's file")
    for name in ("old-stuff", "2023-1-1", "2023-02-30", "2023-10-01.bak"):  # not the factory's day format
        pilot_log(logs, name, "B")
    factory, *_ = emulated(write_conf(QUEUES.format(a="")))
    factory.cycle()
    assert (outside / "A" / "x" / "1.0.out").exists()
    assert os.path.islink(logs / days_ago(31)) and os.path.islink(logs / old / "A")
    assert not (logs / old / "B").exists()
    assert (logs / old / "notes.txt").exists()  # a file in a day directory stays, and so does its day
    for name in ("old-stuff", "2023-1-1", "2023-02-30", "2023-10-01.bak"):
        assert (logs / name / "B" / "1.0.out").exists()


def test_cleaning_runs_once_an_hour_not_every_cycle(write_conf, emulated, tmp_path):
    logs = tmp_path / "logs"
    factory, _, clock, _ = emulated(write_conf(QUEUES.format(a="")))
    factory.cycle()
    old = pilot_log(logs, days_ago(20), "A")
    clock.advance_to(START + 60)
    assert factory.cycle()  # the queues cycled, the logs were not looked at
    assert old.exists()
    clock.advance_to(START + 3600)
    factory.cycle()
    assert not old.exists()


def test_cleaning_waits_for_no_queue_to_be_due(write_conf, emulated, tmp_path):
    factory, _, clock, _ = emulated(write_conf(QUEUES.format(a="apfqueue.sleep = 86400").replace(
        "[B]\nbatchsubmitplugin = CondorLocal\n", "")))
    factory.cycle()
    old = pilot_log(tmp_path / "logs", days_ago(20), "A")
    clock.advance_to(START + 3600)  # a daemon with nothing due still wakes hourly
    assert factory.cycle() == [] and not old.exists()


def test_a_dry_run_deletes_nothing(write_conf, emulated, tmp_path):
    old = pilot_log(tmp_path / "logs", days_ago(20), "A")
    factory, *_ = emulated(write_conf(QUEUES.format(a="")))
    factory.cycle(dry_run=True)
    assert old.exists()


def test_a_directory_that_cannot_be_removed_is_one_warning_and_the_factory_goes_on(
        write_conf, emulated, tmp_path, monkeypatch, caplog):
    logs = tmp_path / "logs"
    stuck, other = pilot_log(logs, days_ago(20), "A"), pilot_log(logs, days_ago(21), "A")
    real = shutil.rmtree

    def rmtree(path, *args, **kw):
        if str(path) == str(stuck):  # as a root-owned file there would (tests run as root)
            raise PermissionError(13, "Permission denied", str(stuck / "1.0.out"))
        real(path, *args, **kw)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    factory, *_ = emulated(write_conf(QUEUES.format(a="")))
    with caplog.at_level(logging.INFO, "provisioner"):
        decisions = factory.cycle()
    assert len(decisions) == 2  # the queues cycled
    assert stuck.exists() and not other.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"cleanlogs: cannot clean 1 pilot log directory under {logs}: "
                        f"{stuck / '1.0.out'}: Permission denied"]


def test_a_missing_base_log_dir_is_no_error(write_conf, emulated, caplog):
    factory, *_ = emulated(write_conf(QUEUES.format(a="")))
    with caplog.at_level(logging.WARNING, "provisioner"):
        factory.cycle()
    assert not caplog.records


@pytest.mark.parametrize("where, line", [
    ("factory", "factory.conf: [Factory] cleanlogs.keepdays: expected an integer, got 'two weeks'"),
    ("queue", "queues.conf: [A] cleanlogs.keepdays: must be at least 0, got -1"),
    ("typo", "factory.conf: [Factory] cleanlogs.keepday: unknown option (did you mean 'cleanlogs.keepdays'?)"),
])
def test_a_bad_keepdays_is_one_line_naming_file_section_and_key(write_conf, where, line):
    factory = {"factory": "cleanlogs.keepdays = two weeks\n", "typo": "cleanlogs.keepday = 7\n"}.get(where, "")
    path = write_conf(QUEUES.format(a="cleanlogs.keepdays = -1" if where == "queue" else ""), factory)
    with pytest.raises(ConfigErrors) as info:
        configmod.load(path)
    (err,) = [str(e) for e in info.value.errors]
    assert err.endswith(line) and err.startswith(str(os.path.dirname(path)))
