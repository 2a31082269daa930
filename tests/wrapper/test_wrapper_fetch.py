"""Pilot downloads (wrapperlib.fetch) with real curl/wget against loopback servers."""
import time

import pytest
from wrapperlib import fetch
from wrapperlib.errors import BAD_OPTION, DOWNLOAD, WrapperError


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


def test_wget_has_a_time_limit_per_try(trickling, path_without, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", path_without("curl"))
    monkeypatch.setenv("WRAPPER_DOWNLOAD_TIMEOUT", "1")
    monkeypatch.setenv("WRAPPER_DOWNLOAD_RETRIES", "1")
    started = time.monotonic()
    with pytest.raises(WrapperError) as error:
        fetch.fetch_tarball(trickling + "/pilot.tar.gz", str(tmp_path / "pilot"))
    assert time.monotonic() - started < 10  # two tries of 1 s and a pause of 1 s
    assert error.value.code == DOWNLOAD and "no complete answer within 1s" in error.value.message


@pytest.mark.parametrize("status, hits", [(503, 2), (429, 2), (404, 1)])
def test_wget_retries_server_errors_as_curl_does(pilot, flaky, path_without, tmp_path, monkeypatch, status, hits):
    pilot("pilot", "#!/bin/sh\n")
    mirror = flaky(status, 1)
    monkeypatch.setenv("PATH", path_without("curl"))
    if hits == 1:
        with pytest.raises(WrapperError, match="download of %s/pilot.tar.gz failed: HTTP %d" % (mirror.url, status)):
            fetch.fetch_tarball(mirror.url + "/pilot.tar.gz", str(tmp_path / "pilot"))
    else:
        fetch.fetch_tarball(mirror.url + "/pilot.tar.gz", str(tmp_path / "pilot"))
        assert (tmp_path / "pilot" / "run.sh").is_file()
    assert mirror.hits == hits
