"""The ec2 target and Cloud batchstatus against moto_server over real HTTP."""
import base64
import json
import re
import subprocess
import sys

import pytest

from provisioner.cloud import tags
from provisioner.cloud.emulator import negotiate

from .conftest import ec2_queue, instances, join_all


def test_burst_launches_packed_vms_in_one_call_tagged_with_volumes(cloud_world, proxy, ec2):
    world = cloud_world(ec2_queue(endpoint=proxy.url))
    world.pool.schedd().add_jobs(100, RequestCpus=1, RequestMemory=2048)
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 13  # 100 single-core jobs on 8-core VMs
    assert proxy.calls.get("RunInstances") == 1
    found = instances(ec2, **{tags.QUEUE: "CLOUD"})
    assert len(found) == 13
    t = {x["Key"]: x["Value"] for x in found[0]["Tags"]}
    assert t[tags.FACTORY] == "test-factory" and t[tags.LAUNCH].startswith("test-factory-")
    vols = ec2.describe_volumes(Filters=[{"Name": f"tag:{tags.QUEUE}", "Values": ["CLOUD"]}])["Volumes"]
    assert len(vols) == 13
    # A slow boot does not trigger a second launch: booting VMs count as supply.
    d = world.cycle()["CLOUD"]
    assert d.action == "none" and d.pilots.pending == 13
    assert proxy.calls.get("RunInstances") == 1


def test_vms_join_run_jobs_then_drain_and_terminate(cloud_world, moto, ec2):
    world = cloud_world(ec2_queue(endpoint=moto, extra="batchsubmit.ec2.max_draining_percent = 100\n"))
    jobs = world.pool.schedd().add_jobs(20, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["CLOUD"].count == 3
    join_all(world.pool, ec2, now=world.clock.now())
    assert negotiate(world.pool) == 20
    d = world.cycle()["CLOUD"]
    assert d.pilots.states == {"busy": 3} and d.action == "none"
    world.pool.schedd().finish(jobs[:18])  # two jobs still run on one VM
    negotiate(world.pool)
    d = world.cycle()["CLOUD"]
    assert d.action == "retire" and d.count == 2  # the busy VM is not touched
    busy = [ad for ad in world.pool.machines.values() if ad["Activity"] == "Busy"]
    assert len(busy) == 1 and not busy[0].get("Draining")
    world.cycle()  # drained VMs are terminated
    left = instances(ec2)
    assert [i["InstanceId"] for i in left] == [busy[0]["EC2InstanceId"]]
    acts = [(a["action"], a["note"]) for a in world.ledger.actions()]
    assert ("terminate", "drained") in acts


def test_capacity_failure_falls_back_to_next_type(cloud_world, proxy, ec2):
    world = cloud_world(ec2_queue(endpoint=proxy.url, types="m5.2xlarge, c5.2xlarge",
                                  extra="batchsubmit.ec2.market = spot\nbatchsubmit.ec2.spot_max_price = 0.2\n"))
    proxy.fail("RunInstances", "InsufficientInstanceCapacity", 500, match={"InstanceType": "m5.2xlarge"})
    world.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=1024)
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 2
    found = instances(ec2)
    assert {i["InstanceType"] for i in found} == {"c5.2xlarge"}
    assert proxy.calls["RunInstances"] == 2


def test_a_vcpu_quota_launches_what_fits_and_then_one_call_a_cycle(cloud_world, proxy, ec2):
    world = cloud_world(ec2_queue(endpoint=proxy.url))
    proxy.vcpu_quota = 64  # 8 VMs of 8 cores
    world.pool.schedd().add_jobs(100, RequestCpus=1, RequestMemory=2048)  # 13 VMs
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 8 and len(instances(ec2)) == 8
    assert sorted(json.loads(world.ledger.actions()[0]["ids"])) == sorted(i["InstanceId"] for i in instances(ec2))
    assert proxy.sizes == [13, 6, 6, 3, 1, 1, 1]  # halved while refused, the quota filled exactly
    d = world.cycle()["CLOUD"]  # the quota is full: one refused call, the queue is not paused
    assert d.action == "failed" and "quota reached after 0 (VcpuLimitExceeded" in d.note
    assert proxy.sizes[7:] == [1] and world.factory.queues[0].paused_until < world.clock.now()
    proxy.vcpu_quota = 104  # raised by AWS support: 5 more fit
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 5 and len(instances(ec2)) == 13
    assert proxy.sizes[8:] == [1, 2, 2]  # growing from where the quota last took


def test_throttling_and_lost_answer_back_off_without_duplicates(cloud_world, proxy, ec2):
    world = cloud_world(ec2_queue(endpoint=proxy.url))
    proxy.fail("RunInstances", "RequestLimitExceeded", 503, times=2)
    proxy.fail("RunInstances", "InternalError", 500, after=True)  # moto launched, the answer is lost
    world.pool.schedd().add_jobs(40, RequestCpus=1, RequestMemory=2048)
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 5
    assert len(instances(ec2)) == 5  # adopted by launch tag, not launched twice
    assert proxy.calls["RunInstances"] == 3 and len(world.sleeps) == 3


def test_throttling_beyond_budget_gives_up_for_the_cycle(cloud_world, proxy, ec2):
    world = cloud_world(ec2_queue(endpoint=proxy.url, extra="batchsubmit.ec2.retry_budget = 2\n"))
    proxy.fail("RunInstances", "RequestLimitExceeded", 503, times=100)
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    d = world.cycle()["CLOUD"]
    assert d.action == "failed" and "RequestLimitExceeded" in d.note
    assert world.factory.queues[0].paused_until < world.clock.now()  # not paused: next cycle tries again
    assert world.ledger.actions()[0]["state"] == "failed"


def test_config_error_pauses_only_that_queue(cloud_world, proxy, ec2):
    world = cloud_world(ec2_queue("BAD", endpoint=proxy.url, ami="ami-00000000")
                        + ec2_queue("GOOD", endpoint=proxy.url))
    proxy.fail("RunInstances", "InvalidAMIID.NotFound", 400, match={"ImageId": "ami-00000000"})
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    out = world.cycle()
    assert out["BAD"].action == "failed" and "InvalidAMIID.NotFound" in out["BAD"].note
    assert out["GOOD"].action == "submit"
    out = world.cycle()
    assert out["BAD"].note.startswith("paused: ec2 launch: InvalidAMIID.NotFound")


def test_orphans_of_a_removed_queue_are_drained_terminated_and_reported(cloud_world, moto, ec2):
    world = cloud_world(ec2_queue("OLD", endpoint=moto) + ec2_queue("KEPT", endpoint=moto))
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    world.cycle()
    assert len(instances(ec2, **{tags.QUEUE: "OLD"})) == 1
    join_all(world.pool, ec2, now=world.clock.now())
    world.pool.schedd().jobs.clear()
    again = cloud_world(ec2_queue("KEPT", endpoint=moto))
    again.pool.machines.update(world.pool.machines)
    again.clock.advance_to(world.clock.now())
    again.cycle()
    again.cycle()
    assert instances(ec2, **{tags.QUEUE: "OLD"}) == []
    notes = [a["note"] for a in again.ledger.actions() if a["queue"] == "KEPT"]
    assert any("orphaned" in n for n in notes)


def test_a_vm_stopped_before_its_startd_was_seen_is_terminated_not_a_crash(cloud_world, moto, ec2):
    world = cloud_world(ec2_queue(endpoint=moto))
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["CLOUD"].count == 1
    ec2.stop_instances(InstanceIds=[i["InstanceId"] for i in instances(ec2)])  # powered off, e.g. idle shutdown
    d = world.cycle()["CLOUD"]
    assert d.pilots.states == {"drained": 1}
    assert ("terminate", "drained") in [(a["action"], a["note"]) for a in world.ledger.actions()]


def test_each_instance_type_is_launched_for_the_jobs_packed_into_it(cloud_world, moto, ec2):
    world = cloud_world(ec2_queue(endpoint=moto, types="c5.2xlarge, r5.2xlarge"))
    schedd = world.pool.schedd()
    schedd.add_jobs(1, RequestCpus=4, RequestMemory=30000)  # fits r5 (64 GB), not c5 (16 GB)
    schedd.add_jobs(10, RequestCpus=1, RequestMemory=2048)  # 4 share the r5, 6 need a c5
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 2
    assert sorted(i["InstanceType"] for i in instances(ec2)) == ["c5.2xlarge", "r5.2xlarge"]
    assert world.cycle()["CLOUD"].action == "none"  # each booting VM is counted for its own jobs


def test_an_idle_vm_the_waiting_job_does_not_fit_holds_back_no_launch(cloud_world, moto, ec2):
    world = cloud_world(ec2_queue(endpoint=moto, types="c5.2xlarge, r5.2xlarge"))
    schedd = world.pool.schedd()
    small = schedd.add_jobs(1, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["CLOUD"].count == 1
    join_all(world.pool, ec2, cpus=8, memory=16384, now=world.clock.now())
    schedd.finish(small)  # the c5 is idle when a job only an r5 holds arrives
    schedd.add_jobs(1, RequestCpus=2, RequestMemory=30000)
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 1, d.reason
    assert sorted(i["InstanceType"] for i in instances(ec2)) == ["c5.2xlarge", "r5.2xlarge"]
    d = world.cycle()["CLOUD"]  # the r5 boots for the job; the idle c5 is surplus
    assert d.action == "retire" and d.count == 1


def test_a_draining_busy_orphan_whose_startd_is_missing_is_lost_not_terminated(cloud_world, moto, ec2):
    """A removed queue's busy VM is drained gracefully (tagged draining); the collector then
    loses its startd for a while (a collector restart): its job still runs, so it must stay."""
    world = cloud_world(ec2_queue("OLD", endpoint=moto))
    jobs = world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    world.cycle()
    join_all(world.pool, ec2, now=world.clock.now())
    assert negotiate(world.pool) == 8
    world.cycle()  # sees it join
    (vm,) = [i["InstanceId"] for i in instances(ec2)]
    again = cloud_world(ec2_queue("KEPT", endpoint=moto))  # OLD removed: KEPT drains its VM
    again.pool.machines.update(world.pool.machines)
    again.pool.schedd().jobs.update(world.pool.schedd().jobs)
    again.clock.advance_to(world.clock.now())
    again.cycle()
    assert [ad.get("Draining") for ad in again.pool.machines.values()] == [True]
    machines = dict(again.pool.machines)
    again.pool.machines.clear()  # the collector restarts: the startd advertises again later
    again.cycle()
    assert [i["InstanceId"] for i in instances(ec2)] == [vm]
    again.pool.machines.update(machines)
    again.cycle()
    assert [i["InstanceId"] for i in instances(ec2)] == [vm]
    again.pool.schedd().finish(jobs)
    negotiate(again.pool)
    again.cycle()  # drained once its jobs ended: terminated
    assert instances(ec2) == []


def test_a_capacity_refusal_answered_with_a_500_falls_back_at_once(cloud_world, proxy, ec2):
    """AWS answers InsufficientCapacity and InsufficientHostCapacity with HTTP 500, like
    InsufficientInstanceCapacity: an answer, not a fault to retry within the budget."""
    world = cloud_world(ec2_queue(endpoint=proxy.url, types="m5.2xlarge, c5.2xlarge"))
    for code in ("InsufficientCapacity", "InsufficientHostCapacity"):
        proxy.fail("RunInstances", code, 500, times=100, match={"InstanceType": "m5.2xlarge"})
    world.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=1024)
    d = world.cycle()["CLOUD"]
    assert d.action == "submit" and d.count == 2
    assert {i["InstanceType"] for i in instances(ec2)} == {"c5.2xlarge"}
    assert proxy.calls["RunInstances"] == 2 and world.sleeps == []


@pytest.mark.parametrize("line, message", [
    ("batchsubmit.ec2.token_file = {path}", "batchsubmit.ec2.token_file: cannot read {path}"),
    # VMs launched without it would boot without the pilot wrapper
    ("executable = {path}", "batchsubmit.ec2.wrapper_url: not set, and executable {path} cannot be read"),
])
def test_a_file_gone_while_running_is_a_one_line_launch_failure(cloud_world, moto, ec2, tmp_path, caplog, line,
                                                                message):
    import logging

    path = tmp_path / "read-at-launch"
    path.write_text("eyJhbGciOiJIUzI1NiJ9.secret-token\n")
    world = cloud_world(ec2_queue(endpoint=moto, extra=line.format(path=path) + "\n"))
    path.unlink()  # removed (or made unreadable) after the start-up checks
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d = world.cycle()["CLOUD"]
    assert d.action == "failed" and message.format(path=path) in d.note, d.note
    assert "Traceback" not in caplog.text and not any(r.exc_info for r in caplog.records)
    assert world.ledger.actions()[0]["state"] == "failed" and instances(ec2) == []


def test_debug_logging_shows_no_pool_token(write_conf, moto, ec2, tmp_path):
    token = tmp_path / "pool.token"
    token.write_text("eyJhbGciOiJIUzI1NiJ9.pool-secret\n")
    conf = write_conf(ec2_queue(endpoint=moto, extra=f"batchsubmit.ec2.token_file = {token}\n"))
    p = subprocess.run([sys.executable, "-m", "provisioner", "--log-level", "debug", "run", "--emulate", "--once",
                        "--conf", conf], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and instances(ec2), p.stderr
    # botocore's debug lines hold each request's body: RunInstances' user-data, the token in it
    blobs = [base64.b64decode(b + "=" * (-len(b) % 4), validate=False)
             for b in re.findall(r"[A-Za-z0-9+/]{40,}", p.stderr)]
    assert "pool-secret" not in p.stderr and not any(b"pool-secret" in b for b in blobs)
    assert "queue=CLOUD" in p.stderr  # the factory's own lines are still there
