"""condorstartd: the configuration it writes, the token's permissions, no token in logs."""
import os
import stat
import time
from types import SimpleNamespace

import pytest
from plugins.condorstartd import CondorStartd
from wrapperlib.errors import BAD_OPTION, MIDDLEWARE, WrapperError
from wrapperlib.log import Log
from wrapperlib.lookup import Picker

TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token-payload.signature"
# Stands in for condor_master: keeps what it was started with, as HTCondor would read it.
FAKE_MASTER = """#!/bin/sh
cp "$CONDOR_CONFIG" "$WRAPPER_WORKDIR/../seen_config"
stat -c %a "$(dirname "$CONDOR_CONFIG")/tokens.d/pool.token" > "$WRAPPER_WORKDIR/../seen_token_mode"
stat -c %a "$(dirname "$CONDOR_CONFIG")/tokens.d" > "$WRAPPER_WORKDIR/../seen_tokens_dir_mode"
cp "$(dirname "$CONDOR_CONFIG")/tokens.d/pool.token" "$WRAPPER_WORKDIR/../seen_token"
echo "master args: $*"
"""


def plugin(workdir, **options):
    values = dict(site="S", queue="Q", grid="cloud", vo=None, serverurl=None, monitorurl=None,
                  monitormethod="POST", collector="cm.example.org:9618", token=TOKEN, tokenfile=None,
                  idletimeout=1200, lifetime=86400, condorconfig=None)
    values.update(options)
    return CondorStartd(SimpleNamespace(**values), [], None, Log(), Picker())


def config_lines(path):
    return dict(line.split(" = ", 1) for line in open(path).read().splitlines() if " = " in line)


def test_configuration_content(workdir):
    startd = plugin(workdir, idletimeout=600, lifetime=3600)
    startd.validate()
    config = config_lines(startd.write_config())
    base = str(workdir / "condor")
    assert config["COLLECTOR_HOST"] == config["CONDOR_HOST"] == "cm.example.org:9618"
    assert config["DAEMON_LIST"] == "MASTER, STARTD"
    assert config["LOCAL_DIR"] == base
    assert config["SEC_TOKEN_DIRECTORY"] == "$(LOCAL_DIR)/tokens.d"
    assert config["SEC_DEFAULT_AUTHENTICATION_METHODS"] == "IDTOKENS"
    assert config["STARTD_NOCLAIM_SHUTDOWN"] == "600"
    assert config["MASTER.DAEMON_SHUTDOWN"] == "STARTD_StartTime =?= 0"
    assert abs(int(config["WRAPPER_END_TIME"]) - (time.time() + 3600)) < 60
    assert config["STARTD.DAEMON_SHUTDOWN"] == "time() > $(WRAPPER_END_TIME)"
    assert config["START"] == "time() < $(WRAPPER_END_TIME)"
    assert config["WrapperSite"] == '"S"' and "WrapperQueue" in config["STARTD_ATTRS"]
    assert TOKEN not in open(base + "/condor_config").read()


def test_unlimited_lifetime(workdir):
    startd = plugin(workdir, lifetime=0)
    startd.validate()
    config = config_lines(startd.write_config())
    assert "WRAPPER_END_TIME" not in config and "START" not in config


def test_token_file_is_private(workdir):
    os.umask(0o022)
    startd = plugin(workdir)
    startd.validate()
    startd.write_config()
    token = workdir / "condor" / "tokens.d" / "pool.token"
    assert token.read_text() == TOKEN + "\n"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    startd.cleanup()
    assert not token.exists()


def test_token_from_a_file(workdir, tmp_path):
    source = tmp_path / "token"
    source.write_text(TOKEN + "\n")
    startd = plugin(workdir, token=None, tokenfile=str(source))
    startd.validate()
    startd.write_config()
    assert (workdir / "condor" / "tokens.d" / "pool.token").read_text() == TOKEN + "\n"


@pytest.mark.parametrize("options, message", [
    ({"collector": None}, "--wrappercollector"),
    ({"collector": "cm.example.org:9618\nSTART = True"}, "--wrappercollector"),
    ({"token": None}, "one of --wrappertoken"),
    ({"tokenfile": "/nonexistent"}, "one of --wrappertoken"),
    ({"token": None, "tokenfile": "/nonexistent/token"}, "--wrappertokenfile"),
    ({"token": TOKEN + "\nSEC_DEFAULT_AUTHENTICATION = NEVER"}, "token: not a single line"),
    ({"idletimeout": -1}, "--wrapperidletimeout"),
    ({"condorconfig": "/nonexistent/condor_config"}, "--wrappercondorconfig"),
])
def test_invalid_options(workdir, options, message):
    with pytest.raises(WrapperError) as error:
        plugin(workdir, **options).validate()
    assert error.value.code == BAD_OPTION and message in error.value.message
    assert "secret-token-payload" not in error.value.message


def test_full_run_with_a_stand_in_master(stage_two, fake_bin, workdir, base_args, capfd):
    fake_bin("condor_master", FAKE_MASTER)
    args = base_args + ["--wrappergrid=cloud", "--wrappercollector=cm.example.org:9618",
                        "--wrappertoken=" + TOKEN, "--wrapperidletimeout=300", "--wrapperloglevel=debug"]
    assert stage_two.main(args) == 0
    seen = workdir.parent
    assert config_lines(seen / "seen_config")["STARTD_NOCLAIM_SHUTDOWN"] == "300"
    assert (seen / "seen_token_mode").read_text().strip() == "600"
    assert (seen / "seen_tokens_dir_mode").read_text().strip() == "700"
    assert (seen / "seen_token").read_text().strip() == TOKEN
    out, err = capfd.readouterr()
    assert "master args: -f" in out
    assert "plugin=condorstartd" in err
    assert "secret-token-payload" not in out + err
    assert not (workdir / "condor").exists()  # cleanup removed the token


def test_missing_condor_master(stage_two, workdir, base_args, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    args = base_args + ["--wrapperplugin=condorstartd", "--wrappercollector=cm.example.org",
                        "--wrappertoken=" + TOKEN]
    assert stage_two.main(args) == MIDDLEWARE
    assert "missing required program(s): condor_master" in capsys.readouterr().err


def test_a_cloud_vm_runs_its_own_configuration_and_needs_no_collector_or_token(stage_two, fake_bin, workdir,
                                                                               base_args, capfd, tmp_path):
    fake_bin("condor_master", '#!/bin/sh\necho "config: $CONDOR_CONFIG"\n')
    vm_config = tmp_path / "50-provisioner.conf"  # what the user-data wrote
    vm_config.write_text("CONDOR_HOST = cm.example.org\nProvisionerQueue = \"CLOUD\"\n")
    args = base_args + ["--wrappergrid=cloud", f"--wrappercondorconfig={vm_config}"]
    assert stage_two.main(args) == 0
    out, err = capfd.readouterr()
    assert f"config: {vm_config}" in out and "plugin=condorstartd" in err
    assert not (workdir / "condor").exists()  # nothing of its own written
