"""A newcomer's mistakes in a VM queue: check-config says each in one line naming the file,
[section] and key, exits 2, shows no secret; a correct credentials file works against moto."""
import hashlib

import pytest

from provisioner.cli import main
from provisioner.cloud import tags

from .conftest import ec2_queue, instances, libcloud_queue

SECRET = "wJalrXUtnFEMI-do-not-show"


@pytest.fixture
def aws_files(tmp_path, monkeypatch):
    """No AWS files of the machine's own; a credentials file with a [burst] profile."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    creds = tmp_path / "aws-credentials"
    creds.write_text(f"[burst]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = {SECRET}\n")
    return tmp_path


def _wrapper(tmp_path):
    path = tmp_path / "wrapper.sh"
    path.write_text("#!/bin/sh\nexit 0\n")
    return path


CASES = {
    "region": ("batchsubmit.ec2.region = us-east1",
               "batchsubmit.ec2.region: 'us-east1' is not an EC2 region (did you mean 'us-east-1'?)"),
    "credentials missing": ("batchsubmit.ec2.profile = burst\nbatchsubmit.ec2.credentials_file = {tmp}/nope",
                            "batchsubmit.ec2.credentials_file: cannot read {tmp}/nope: No such file or directory"),
    "credentials a directory": ("batchsubmit.ec2.credentials_file = {tmp}",
                                "batchsubmit.ec2.credentials_file: cannot read {tmp}: Is a directory"),
    "credentials unparsable": ("batchsubmit.ec2.profile = burst\nbatchsubmit.ec2.credentials_file = {tmp}/garbled",
                               "batchsubmit.ec2.credentials_file: Unable to parse config file: {tmp}/garbled"),
    "profile typo": ("batchsubmit.ec2.profile = brust\nbatchsubmit.ec2.credentials_file = {tmp}/aws-credentials",
                     "batchsubmit.ec2.profile: no profile 'brust' in {tmp}/aws-credentials or the AWS config file"),
    "no default profile": ("batchsubmit.ec2.credentials_file = {tmp}/aws-credentials",
                           "batchsubmit.ec2.credentials_file: {tmp}/aws-credentials has no [default] profile: "
                           "set profile to one of its sections"),
    "token unreadable": ("batchsubmit.ec2.token_file = {tmp}",
                         "batchsubmit.ec2.token_file: cannot read {tmp}: Is a directory"),
    "template missing": ("batchsubmit.ec2.user_data_template = cloud/nope.j2",
                         "batchsubmit.ec2.user_data_template: no template 'cloud/nope.j2' under "),
    "checksum not sha256": ("batchsubmit.ec2.wrapper_url = https://example.org/w.sh\n"
                            "batchsubmit.ec2.wrapper_checksum = 0123abc",
                            "batchsubmit.ec2.wrapper_checksum: expected a sha256 (64 hex digits), got '0123abc'"),
    "checksum without wrapper": (f"batchsubmit.ec2.wrapper_checksum = {'0' * 64}",
                                 "batchsubmit.ec2.wrapper_checksum: set, but there is no wrapper to check"),
    "checksum of another wrapper": (f"executable = {{tmp}}/wrapper.sh\nbatchsubmit.ec2.wrapper_checksum = {'0' * 64}",
                                    "batchsubmit.ec2.wrapper_checksum: does not match executable {tmp}/wrapper.sh"),
    "executable missing": ("executable = {tmp}/nope.sh",
                           "batchsubmit.ec2.wrapper_url: not set, and executable {tmp}/nope.sh cannot be read here "
                           "to embed in the VMs' user-data: No such file or directory"),
    "arguments": (None, "executable.arguments: No closing quotation"),
    "condor_config on lines": ("batchsubmit.ec2.condor_config =\n    START = True\n    NUM_CPUS = 4",
                               "batchsubmit.ec2.condor_config: value 'START = True\\nNUM_CPUS = 4' contains a line "
                               "break"),
    # read after the factory's lines: every VM hidden from its queue's status, none ever joins
    "condor_config identity": ("batchsubmit.ec2.condor_config = STARTD.ProvisionerQueue = OTHER",
                               "batchsubmit.ec2.condor_config: STARTD.ProvisionerQueue is set by the factory"),
    "condor_config instance id": ("batchsubmit.ec2.condor_config = ec2instanceid = i-0",
                                  "batchsubmit.ec2.condor_config: ec2instanceid is set by the factory"),
    "condor_config attributes": ("batchsubmit.ec2.condor_config = STARTD_ATTRS = MyAttr",
                                 "batchsubmit.ec2.condor_config: STARTD_ATTRS must keep $(STARTD_ATTRS)"),
}


@pytest.mark.parametrize("case", CASES)
def test_check_config_names_file_section_and_key_of_each_mistake(case, write_conf, aws_files, capsys):
    tmp = aws_files
    (tmp / "garbled").write_text(f"aws_secret_access_key = {SECRET}\n[burst\n")
    _wrapper(tmp)
    extra, expected = (text and text.replace("{tmp}", str(tmp)) for text in CASES[case])
    queues = ec2_queue(extra=extra) if extra else ec2_queue().replace("--wrappergrid=cloud", "--wrappergrid='cloud")
    conf = write_conf(queues)
    assert main(["check-config", "--conf", conf]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and SECRET not in err
    assert err.startswith(f"error: {tmp}/queues.conf: [CLOUD] {expected}")


def test_a_wrapper_checksum_that_matches_the_embedded_executable_passes(write_conf, aws_files):
    digest = hashlib.sha256(_wrapper(aws_files).read_bytes()).hexdigest()
    conf = write_conf(ec2_queue(extra=f"executable = {aws_files}/wrapper.sh\n"
                                      f"batchsubmit.ec2.wrapper_checksum = {digest.upper()}\n"))
    assert main(["check-config", "--conf", conf]) == 0


def test_libcloud_credentials_file_error_names_the_file(write_conf, tmp_path, capsys):
    conf = write_conf(libcloud_queue("LC", "ec2", "ami-1", f"batchsubmit.libcloud.credentials_file = {tmp_path}/nope"))
    assert main(["check-config", "--conf", conf]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path}/queues.conf: [LC] batchsubmit.libcloud.credentials_file: "
                                       f"cannot read {tmp_path}/nope: No such file or directory\n")


def test_profile_from_a_credentials_file_launches_against_moto(cloud_world, moto, ec2, aws_files, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    creds = aws_files / "aws-credentials"
    world = cloud_world(ec2_queue(endpoint=moto, extra=f"batchsubmit.ec2.profile = burst\n"
                                                       f"batchsubmit.ec2.credentials_file = {creds}\n"))
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 1
    assert len(instances(ec2, **{tags.QUEUE: "CLOUD"})) == 1


@pytest.mark.parametrize("provider, extra, error", [
    ("ec2", "driver.regoin = eu-west-1", "driver.regoin: libcloud's ec2 driver takes no such option "
                                         "(did you mean 'region'?)"),
    ("ec2", "driver.key = AKIA", "driver.key: libcloud's ec2 driver gets it from the key option"),
    ("azure_arm", "key = tenant\nbatchsubmit.libcloud.secret = subscription",
     "provider: azure_arm is not supported: libcloud's azure_arm driver needs auth, ex_resource_group to create "
     "a node, which this target does not give"),
    ("rackspace", "key = user", "provider: rackspace is not supported: libcloud's rackspace driver lists only the "
                                "first page of servers (1,000 by default), so VMs past it would go unseen"),
    ("openstack", "driver.api_version = 1.1", "driver.api_version: libcloud's OpenStack 1.1 driver lists only "
     "Nova's first page of servers (1,000 by default), so VMs past it would go unseen; leave it unset for 2.2"),
    ("openstack", "driver.api_version = 2.3", "driver.api_version: libcloud has no OpenStack driver for API version "
                                              "2.3; leave it unset for 2.2"),
    ("gce", "key = sa@project.iam", "provider: gce is not supported: this target cannot give its VMs their user data "
                                    "through libcloud's gce driver"),
    ("digitalocean", "key = token", "provider: digitalocean is not supported: this target cannot give its VMs "
                                    "their user data through libcloud's digitalocean driver"),
])
def test_a_libcloud_driver_option_the_driver_would_drop_or_lacks_is_one_line(write_conf, tmp_path, capsys,
                                                                            provider, extra, error):
    # libcloud drivers ignore unknown keywords: a misspelt region would launch elsewhere
    conf = write_conf(libcloud_queue("LC", provider, "img-1", f"batchsubmit.libcloud.{extra}"))
    assert main(["check-config", "--conf", conf]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}/queues.conf: [LC] batchsubmit.libcloud.{error}\n"


def test_a_parameter_a_driver_requires_and_lacks_is_one_line():
    from provisioner.cloud.libcloudapi import check_driver_options
    from provisioner.errors import ProvisionerError

    class Driver:  # as a driver built Driver(key, secret, subscription_id)
        def __init__(self, key, secret, subscription_id, region="here"):
            pass

    with pytest.raises(ProvisionerError, match=r"^batchsubmit.libcloud.driver.subscription_id: required by "
                                               r"libcloud's x driver$"):
        check_driver_options(Driver, "x", {"region": "there"}, "batchsubmit.libcloud.")
    check_driver_options(Driver, "x", {"subscription_id": "s"}, "batchsubmit.libcloud.")


def test_the_driver_options_libcloud_drivers_take_pass(write_conf):
    ec2 = ("driver.region = eu-west-1\nbatchsubmit.libcloud.driver.host = 127.0.0.1\n"
           "batchsubmit.libcloud.driver.signature_version = 4\nbatchsubmit.libcloud.driver.timeout = 30")
    # openstack's driver becomes the subclass of its api_version, whose options count too
    openstack = ("driver.ex_force_auth_url = https://keystone.example.org:5000\n"
                 "batchsubmit.libcloud.driver.ex_force_network_url = https://neutron.example.org:9696\n"
                 "batchsubmit.libcloud.driver.ex_force_auth_version = 3.x_password\n"
                 "batchsubmit.libcloud.driver.ex_tenant_name = pilots")
    conf = write_conf(libcloud_queue("A", "ec2", "ami-1", f"batchsubmit.libcloud.{ec2}")
                      + libcloud_queue("B", "openstack", "img-1", f"batchsubmit.libcloud.{openstack}"))
    assert main(["check-config", "--conf", conf]) == 0


def test_a_vm_queue_without_batchstatusplugin_reads_its_vms_and_launches_once(cloud_world, moto, ec2):
    world = cloud_world(ec2_queue(endpoint=moto).replace("batchstatusplugin = Cloud\n", ""))
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["CLOUD"].count == 1
    d = world.cycle()["CLOUD"]  # batchstatus Condor would see no pilot and launch again, every cycle
    assert d.action == "none" and d.pilots.pending == 1 and len(instances(ec2)) == 1


def test_batchstatus_condor_inherited_by_a_vm_queue_is_one_line(write_conf, moto, capsys):
    queues = "[DEFAULT]\nbatchstatusplugin = Condor\n" + ec2_queue(endpoint=moto).replace(
        "batchstatusplugin = Cloud\n", "")
    conf = write_conf(queues)
    assert main(["check-config", "--conf", conf]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {conf.replace('factory.conf', 'queues.conf')}: [CLOUD] batchstatusplugin: Condor cannot see the "
        f"pilots of ec2, which are no HTCondor jobs: use Cloud"]


def test_an_endpoint_url_without_its_scheme_is_one_line_not_a_warning_every_cycle(write_conf, moto, capsys):
    conf = write_conf(ec2_queue(endpoint=moto.replace("http://", "")))
    assert main(["check-config", "--conf", conf]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {conf.replace('factory.conf', 'queues.conf')}: [CLOUD] batchsubmit.ec2.endpoint_url: not a URL "
        f"botocore takes (http:// or https://host[:port])"]
