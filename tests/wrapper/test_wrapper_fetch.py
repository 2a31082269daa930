"""Pilot downloads (wrapperlib.fetch) with real curl/wget against loopback servers."""
import pytest
from wrapperlib import fetch
from wrapperlib.errors import BAD_OPTION, WrapperError


@pytest.mark.parametrize("timeout, retries, expected", [
    (None, None, (120, 2)),
    ("", "", (120, 2)),
    ("08", "09", (8, 9)),
])
def test_download_settings_are_decimal(monkeypatch, timeout, retries, expected):
    for name, value in (("WRAPPER_DOWNLOAD_TIMEOUT", timeout), ("WRAPPER_DOWNLOAD_RETRIES", retries)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    argv = fetch.command("http://a.example/x", "x")
    assert (int(argv[argv.index("--max-time") + 1]), int(argv[argv.index("--retry") + 1])) == expected


@pytest.mark.parametrize("name, value", [
    ("WRAPPER_DOWNLOAD_TIMEOUT", "0"),
    ("WRAPPER_DOWNLOAD_TIMEOUT", "²"),
    ("WRAPPER_DOWNLOAD_RETRIES", "-1"),
    ("WRAPPER_DOWNLOAD_RETRIES", "99999999999999999999"),
])
def test_bad_download_settings(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(WrapperError) as error:
        fetch.command("http://a.example/x", "x")
    assert error.value.code == BAD_OPTION and name in error.value.message


@pytest.mark.parametrize("downloader", ["curl", "wget"])
def test_a_refused_connection_is_retried(pilot, late_server, path_without, tmp_path, monkeypatch, downloader):
    pilot("late", "#!/bin/sh\n")
    if downloader == "wget":
        monkeypatch.setenv("PATH", path_without("curl"))
    fetch.fetch_tarball(late_server + "/late.tar.gz", str(tmp_path / "late"))
    assert (tmp_path / "late" / "run.sh").is_file()
