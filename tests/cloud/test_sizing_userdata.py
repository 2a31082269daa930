"""Sizing by packing, and the rendered user-data."""
import hashlib
import os
import subprocess
import sys

import classad2
import pytest
import yaml
from hypothesis import given, strategies as st

from provisioner import config as configmod
from provisioner.cloud import sizing
from provisioner.cloud.userdata import UserDataError, render_user_data
from provisioner.services import Services

from .conftest import ec2_queue


def test_hundred_single_core_jobs_on_8_core_vms():
    jobs = [classad2.ClassAd({"RequestCpus": 1, "RequestMemory": 2048}) for _ in range(100)]
    assert sizing.pack(jobs, sizing.resolve(["m5.2xlarge"], {})).vms == {"m5.2xlarge": 13}


def test_a_jobs_shape_reads_literals_and_evaluates_expressions():
    # the schedd's ads hold both: literals read without evaluating (8x faster), an expression
    # evaluated, and one that needs a match (MemoryUsage unset) or is not a number the default
    ad = classad2.ClassAd({"RequestCpus": 4, "RequestMemory": 1500.5})
    assert sizing.shape(ad) == (4, 1501, 0)
    ad["RequestMemory"] = classad2.ExprTree("2 * 1024")
    ad["RequestGpus"] = classad2.ExprTree("MaxGpus - 1")
    ad["MaxGpus"] = 2
    assert sizing.shape(ad) == (4, 2048, 1)
    ad["RequestCpus"] = classad2.ExprTree('"four"')
    ad["RequestMemory"] = classad2.ExprTree("MemoryUsage * 2")
    assert sizing.shape(ad) == (1, 1, 1)
    assert sizing.shape({"RequestCpus": 2}) == (2, 1, 0)


def test_big_job_never_counts_toward_small_type_and_unfit_is_reported():
    types = sizing.resolve(["c5.large", "big"], {"big": "cpus=4 memory=20000 gpus=1"})
    p = sizing.pack_shapes({(1, 16000, 0): 1, (1, 1000, 0): 2, (1, 100, 2): 3}, types)
    assert p.vms == {"big": 1} and p.unfit == 3  # the small jobs fill the big VM's room


def test_open_vms_take_the_jobs_that_fit_them_first_and_the_plan_follows_the_packing():
    c5, r5 = types = sizing.resolve(["c5.2xlarge", "r5.2xlarge"], {})
    shapes = {(4, 30000, 0): 1, (1, 2048, 0): 10}
    p = sizing.pack_shapes(shapes, types, open_vms=[c5, c5])
    # the big job opens an r5; the small ones go to the open c5s first
    assert p.vms == {"r5.2xlarge": 1} and (p.used, p.unused) == (2, 0) and p.net == 1
    assert p.shapes == {"r5.2xlarge": {(4, 30000, 0)}}
    assert (p.fit_jobs, p.fit_cpus) == (11, 14)
    assert sizing.pack_shapes({(1, 2048, 0): 2}, types, open_vms=[c5, c5]).net == -1
    fresh = sizing.pack_shapes(shapes, types)  # the r5 takes 4 small jobs too, a c5 the rest
    assert fresh.vms == {"c5.2xlarge": 1, "r5.2xlarge": 1}
    assert fresh.shapes == {"r5.2xlarge": {(4, 30000, 0), (1, 2048, 0)}, "c5.2xlarge": {(1, 2048, 0)}}
    # the type only its jobs fit goes first (a cap may cut the plan); launches beyond the
    # packing (ahead of jobs to come) are of the first type
    assert sizing.launch_plan(1, fresh, types) == [(r5, 1)]
    assert sizing.launch_plan(4, fresh, types) == [(r5, 1), (c5, 3)]


@given(st.dictionaries(st.tuples(st.integers(1, 8), st.integers(1, 40000), st.integers(0, 1)),
                       st.integers(1, 50), max_size=5))
def test_packing_never_overfills_and_counts_every_job(shapes):
    types = sizing.resolve(["m5.2xlarge", "p3.2xlarge"], {})
    p = sizing.pack_shapes(shapes, types)
    fits = sum(c for s, c in shapes.items() if any(t.fits(s) for t in types))
    assert p.unfit == sum(shapes.values()) - fits
    # never overfilled: the VMs asked for hold every fitting job's cores, memory and gpus
    size = {t.name: (t.cpus, t.memory, t.gpus) for t in types}
    for i in range(3):
        need = sum(s[i] * c for s, c in shapes.items() if any(t.fits(s) for t in types))
        assert sum(size[name][i] * k for name, k in p.vms.items()) >= need
    assert p.total <= fits  # and never more VMs than jobs


def test_user_data_has_safety_net_and_no_cloud_secrets(write_conf, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    cfg = configmod.load(write_conf(ec2_queue(extra="batchsubmit.ec2.idle_shutdown = 600\n"
                                                    "batchsubmit.ec2.max_lifetime = 720\n")))
    q = cfg.queues[0]
    text = render_user_data(q, Services("fac", None, None), "fac-7", q.batchsubmit.opts)
    doc = yaml.safe_load(text)
    conf = doc["write_files"][0]["content"]
    assert "STARTD_NOCLAIM_SHUTDOWN = 600" in conf and 'ProvisionerLaunch = "fac-7"' in conf
    assert "MAXJOBRETIREMENTTIME = 43200" in conf  # a graceful drain lets jobs run to the VM's end
    assert any("shutdown -P +720" in " ".join(c) for c in doc["runcmd"])
    assert "do-not-leak" not in text and "testing" not in text


def test_condor_config_lines_reach_the_vm_as_htcondor_configuration(write_conf, tmp_path):
    cfg = configmod.load(write_conf(ec2_queue(extra="batchsubmit.ec2.condor_config = NUM_CPUS = $(VM_CORES), "
                                                    "START = $(START) && Owner == \"atlas\"\n")))
    q = cfg.queues[0]
    conf = yaml.safe_load(render_user_data(q, Services("fac", None, None), "fac-7",
                                           q.batchsubmit.opts))["write_files"][0]["content"]
    path = tmp_path / "condor_config"
    path.write_text("VM_CORES = 6\nSTART = True\n" + conf)
    # read back by HTCondor's own configuration parser, as the VM's startd will
    read = subprocess.run([sys.executable, "-c", "import htcondor2; p = htcondor2.param; "
                           "print(p['NUM_CPUS']); print(p['START'])"],
                          env={**os.environ, "CONDOR_CONFIG": str(path)}, capture_output=True, text=True)
    assert read.stdout.splitlines() == ["6", 'True && Owner == "atlas"'], read.stderr


@pytest.mark.parametrize("good", [True, False])
def test_the_vm_starts_the_wrapper_only_if_its_checksum_matches(write_conf, tmp_path, good):
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/ran\n')
    wrapper.chmod(0o755)
    digest = hashlib.sha256(wrapper.read_bytes()).hexdigest() if good else "0" * 64
    cfg = configmod.load(write_conf(ec2_queue(extra="batchsubmit.ec2.wrapper_url = https://example.org/w.sh\n"
                                                    f"batchsubmit.ec2.wrapper_checksum = {digest}\n")))
    q = cfg.queues[0]
    runcmd = yaml.safe_load(render_user_data(q, Services("fac", None, None), "fac-7", q.batchsubmit.opts))["runcmd"]
    (launch,) = [c[2] for c in runcmd if "nohup" in c[2]]
    assert not any("systemctl enable" in c[2] for c in runcmd)  # the wrapper starts the one startd
    # run the launch line itself, on the local copy, in the foreground
    line = launch.replace("/opt/provisioner/wrapper.sh", str(wrapper)).replace(" 2>&1 &", " 2>&1")
    line = line.replace("/var/log/provisioner-wrapper.log", str(tmp_path / "log"))
    subprocess.run(["sh", "-c", line], check=False, timeout=30)
    ran = tmp_path / "ran"
    assert ran.exists() == good
    if good:
        assert "--wrappercondorconfig=/etc/condor/condor_config" in ran.read_text()


@pytest.mark.parametrize("option", ["collector", "condor_config"])
@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029", "\x86"])
def test_a_yaml_line_break_in_a_configuration_line_is_refused(write_conf, option, brk):
    # cloud-init's YAML ends a line at NEL, U+2028 and U+2029 (and refuses other C1 controls):
    # the rest of this one would be a root cron file written by cloud-init
    evil = brk.join(["cm.example.org", "  - path: /etc/cron.d/evil",
                     "    content: '* * * * * root touch /tmp/pwned'", "    x: |"])
    queue = ec2_queue()
    queue = queue.replace("collector = cm.example.org", f"collector = {evil}") if option == "collector" \
        else queue + f"batchsubmit.ec2.condor_config = {evil}\n"
    cfg = configmod.load(write_conf(queue))
    q = cfg.queues[0]
    with pytest.raises(UserDataError, match=f"^{option}: .*line break or control character"):
        render_user_data(q, Services("fac", None, None), "fac-7", q.batchsubmit.opts)


def test_configuration_lines_keeping_the_vms_identity_are_taken(write_conf):
    # what the factory's own lines set may still be extended or read
    cfg = configmod.load(write_conf(ec2_queue() + "batchsubmit.ec2.condor_config = STARTD_ATTRS = $(STARTD_ATTRS) "
                                    "MyAttr, MyAttr = 1, START = ProvisionerQueue =!= undefined\n"))
    q = cfg.queues[0]
    text = render_user_data(q, Services("fac", None, None), "fac-7", q.batchsubmit.opts)
    assert "STARTD_ATTRS = $(STARTD_ATTRS) MyAttr" in text and "MyAttr = 1" in text
