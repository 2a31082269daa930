"""SSHSlurm options: validated at start-up, secrets masked, status reuses the target's endpoint."""
import pytest

from provisioner import config as configmod
from provisioner.errors import ConfigErrors, ProvisionerError
from provisioner.remote import slurm

BASE = """
[SL]
executable = /opt/pilot/wrapper.sh
batchsubmitplugin = SSHSlurm
batchstatusplugin = SSHSlurm
batchsubmit.sshslurm.host = login.example.org
batchsubmit.sshslurm.user = pilots
batchsubmit.sshslurm.key = {key}
batchsubmit.sshslurm.known_hosts = {known_hosts}
"""


@pytest.fixture
def base(keys, tmp_path):
    """BASE with a real key and a known_hosts file pinning login.example.org."""
    with open(keys["host"] + ".pub") as fh:
        kind, blob = fh.read().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"login.example.org {kind} {blob}\n")
    return BASE.format(key=keys["client"], known_hosts=known)


def test_status_takes_the_targets_endpoint_and_the_key_is_masked(write_conf, emulated, base, keys):
    factory, *_ = emulated(write_conf(base + "batchstatus.sshslurm.port = 2200\n"))
    q = factory.queues[0]
    assert q.batch.source_key() == ("sshslurm", "login.example.org", 2200, "pilots")
    assert q.batch.endpoint.key == keys["client"]
    described = configmod.describe(factory.config)
    assert "batchsubmit.sshslurm.key = ********" in described
    # check-config shows what the status uses, not None for what it takes from the target
    for line in ("batchstatus.sshslurm.host = login.example.org", "batchstatus.sshslurm.port = 2200",
                 "batchstatus.sshslurm.key = ********", "batchstatus.sshslurm.timeout = 30"):
        assert f"  {line}\n" in described


@pytest.mark.parametrize("extra, message", [
    ("batchsubmit.sshslurm.sbatch_args = --time=10, --comment=mine\n", "'--comment=mine' is set by the factory"),
    ("batchsubmit.sshslurm.sbatch_args = -Jname\n", "'-Jname' is set by the factory"),
    # sbatch takes unambiguous prefixes of long options
    ("batchsubmit.sshslurm.sbatch_args = --comm=mine\n", "'--comm=mine' is set by the factory"),
    ("batchsubmit.sshslurm.sbatch_args = --arr=0-999\n", "'--arr=0-999' is set by the factory"),
    ("batchsubmit.sshslurm.sbatch_args = /tmp/other.sh\n", "'/tmp/other.sh' is not an option"),
    # each item is one word to sbatch, which refuses these at every submission
    ("batchsubmit.sshslurm.sbatch_args = --time 48:00:00\n", "'--time 48:00:00' is one word to sbatch: write "
                                                              "--name=value or -xVALUE"),
    ("batchsubmit.sshslurm.sbatch_args = --mem=2G, -p pilots\n", "'-p pilots' is one word to sbatch"),
    ("executable.arguments = 'unclosed\n", "executable.arguments: No closing quotation"),
    ("batchsubmit.sshslurm.port = 70000\n", "batchsubmit.sshslurm.port: must be a port, 1 to 65535, got 70000"),
    ("batchstatus.sshslurm.port = 0\n", "batchstatus.sshslurm.port: must be a port, 1 to 65535, got 0"),
])
def test_bad_values_are_one_line_errors_naming_queue_and_option(write_conf, emulated, base, extra, message):
    with pytest.raises(ConfigErrors) as info:
        emulated(write_conf(base + extra))
    text = str(info.value)
    assert "[SL]" in text and message in text and "\n" not in text


def test_key_and_known_hosts_are_checked_without_connecting(write_conf, emulated, base, keys, tmp_path):
    known = str(tmp_path / "known_hosts")  # written by base, pinning login.example.org on port 22
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not it\n")
    for conf, message in [
        (BASE.format(key="/nonexistent", known_hosts=known), "batchsubmit.sshslurm.key: cannot load /nonexistent"),
        (BASE.format(key=keys["client"], known_hosts="/nonexistent"), "batchsubmit.sshslurm.known_hosts: cannot read"),
        (base + "batchsubmit.sshslurm.port = 2222\n",
         f"batchsubmit.sshslurm.known_hosts: no key for [login.example.org]:2222 in {known}"),
        (base + "batchstatus.sshslurm.key = /nonexistent\n", "batchstatus.sshslurm.key: cannot load /nonexistent"),
        (BASE.format(key=keys["locked"]["rsa"], known_hosts=known),
         f"batchsubmit.sshslurm.key: cannot load {keys['locked']['rsa']}: it is passphrase-protected (set "
         "passphrase_file)"),
        (BASE.format(key=keys["locked"]["rsa"], known_hosts=known) + "batchsubmit.sshslurm.passphrase_file = /none\n",
         "batchsubmit.sshslurm.passphrase_file: cannot read /none"),
        (base + f"batchstatus.sshslurm.key = {keys['locked']['ed25519']}\n"
                f"batchstatus.sshslurm.passphrase_file = {wrong}\n",
         f"batchstatus.sshslurm.passphrase_file: the passphrase in {wrong} does not open"),
    ]:
        with pytest.raises(ConfigErrors) as info:
            emulated(write_conf(conf))
        assert "[SL] " + message in str(info.value) and "\n" not in str(info.value)


def test_the_passphrase_file_is_taken_by_the_status_too_and_masked(write_conf, emulated, base, keys, tmp_path):
    from tests.remote.conftest import LOCKED_PASSPHRASE

    passphrase = tmp_path / "passphrase"
    passphrase.write_text(LOCKED_PASSPHRASE)
    conf = base.replace(keys["client"], keys["locked"]["ed25519"])
    factory, *_ = emulated(write_conf(conf + f"batchsubmit.sshslurm.passphrase_file = {passphrase}\n"))
    q = factory.queues[0]
    assert q.batch.endpoint.passphrase_file == str(passphrase)
    assert "batchsubmit.sshslurm.passphrase_file = ********" in configmod.describe(factory.config)


def test_missing_endpoint_options_are_reported(write_conf, emulated, base):
    with pytest.raises(ConfigErrors, match=r"\[SL\] batchsubmit.sshslurm.host: a value is required"):
        emulated(write_conf(base.replace("batchsubmit.sshslurm.host = login.example.org\n", "")))
    with_condor = "\n".join(line for line in base.replace("= SSHSlurm\nbatchstatus", "= CondorLocal\nbatchstatus")
                            .splitlines() if not line.startswith("batchsubmit.sshslurm."))
    with pytest.raises(ProvisionerError, match=r"\[SL\] batchstatus.sshslurm.host: a value is required"):
        emulated(write_conf(with_condor))


def test_pilot_script_quotes_every_value():
    script = slurm.pilot_script("/opt/w rapper", ["$(id)", "it's"], {"PROVISIONER_QUEUE": "q;`id`"})
    assert script == ("#!/bin/sh\nPROVISIONER_QUEUE='q;`id`'; export PROVISIONER_QUEUE\n"
                      'APFCID="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; export APFCID\n'
                      "exec '/opt/w rapper' '$(id)' 'it'\"'\"'s'\n")
