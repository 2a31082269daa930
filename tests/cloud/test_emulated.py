"""Lifecycle, guard and error handling in virtual time against EmulatedEC2 (the simulator's contract)."""
import pytest

from provisioner.cloud import tags
from provisioner.cloud.emulator import EmulatedEC2, negotiate

from .conftest import CloudWorld, ec2_queue, libcloud_queue

GUARD = """batchsubmit.ec2.guard_failures = 3
batchsubmit.ec2.guard_window = 7200
batchsubmit.ec2.guard_backoff = 1800
"""


@pytest.fixture
def world(write_conf, tmp_path):
    def build(queues, **emu):
        holder = {}
        w = CloudWorld(write_conf(queues), tmp_path, {"ec2": lambda **kw: holder["ec2"](**kw)})
        emulated = EmulatedEC2(w.clock, w.pool, **emu)
        holder["ec2"] = emulated.client
        return w, emulated

    return build


def test_black_hole_guard_trips_backs_off_and_recovers(world):
    w, emu = world(ec2_queue(extra=GUARD), boot_time=120, boot_failure_rate=1.0)
    w.pool.schedd().add_jobs(24, RequestCpus=1, RequestMemory=2048)
    assert w.cycle(700)["CLOUD"].count == 3  # a broken image: none of them ever joins
    d = w.cycle()["CLOUD"]  # boot timeout: 3 boot failures trip the guard, the VMs are terminated
    assert d.action == "none" and d.note.startswith("paused: black-hole guard: 3 boot failures")
    assert "paused (black-hole guard" in d.reason  # what `provisioner status` shows
    assert emu.calls["run_instances"] == 1 and emu.calls["terminate_instances"] == 1
    for _ in range(20):  # 1800 s of back-off: no launch however many cycles
        assert w.cycle()["CLOUD"].action == "none"
    assert emu.calls["run_instances"] == 1
    w.clock.advance_to(w.clock.now() + 600)
    w.cycle(700)  # back-off over: the probe launch fails again -> twice the pause
    assert emu.calls["run_instances"] == 2
    d = w.cycle()["CLOUD"]
    assert "3600s (trip 2)" in d.note
    emu.boot_failure_rate = 0.0  # the image is fixed
    w.clock.advance_to(w.clock.now() + 3600)
    w.cycle(200)
    assert emu.calls["run_instances"] == 3
    w.cycle()
    tracker = w.services.extra["cloud.trackers"][("CLOUD", False)]
    assert tracker.guard.trips == 0
    assert any(a["action"] == "guard" for a in w.ledger.actions())


def test_guard_state_survives_a_restart(world):
    w, emu = world(ec2_queue(extra=GUARD), boot_time=120, boot_failure_rate=1.0)
    w.pool.schedd().add_jobs(24, RequestCpus=1, RequestMemory=2048)
    w.cycle(700)
    assert "trip 1" in w.cycle()["CLOUD"].note
    again = w.restart()
    d = again.cycle()["CLOUD"]
    assert d.note.startswith("paused: black-hole guard") and "trip 1" in d.note
    assert emu.calls["run_instances"] == 1  # the broken image is not launched again on restart
    again.clock.advance_to(again.clock.now() + 1800)
    again.cycle(700)
    assert emu.calls["run_instances"] == 2
    assert "3600s (trip 2)" in again.cycle()["CLOUD"].note  # the back-off doubles across the restart


def test_disruption_budget_and_youngest_idle_first(world):
    w, emu = world(ec2_queue(extra="batchsubmit.ec2.max_draining_percent = 50\n"), boot_time=60)
    jobs = w.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=2048)
    w.cycle(30)
    more = w.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=2048)
    w.cycle(100)  # two launches: 2 older VMs, 2 younger ones
    emu.advance()
    negotiate(w.pool)
    w.pool.schedd().finish(jobs + more)
    negotiate(w.pool)
    d = w.cycle()["CLOUD"]
    assert d.action == "retire" and d.count == 2  # 50% of 4 at once
    young = sorted(emu.instances.values(), key=lambda i: i.launched)[2:]
    assert set(d.ids) == {i.id for i in young}


def test_emulated_api_shapes_and_faults(world):
    w, emu = world(ec2_queue(), boot_time=lambda rng, t: 30 + rng.random() * 30, capacity={"m5.2xlarge": 1})
    c = emu.client(region_name="us-east-1")
    tagspec = [{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}]
    first = c.run_instances(ImageId="ami-1", InstanceType="m5.2xlarge", MinCount=1, MaxCount=1, ClientToken="t",
                            TagSpecifications=tagspec)
    assert c.run_instances(ImageId="ami-1", InstanceType="m5.2xlarge", MinCount=1, MaxCount=1,
                           ClientToken="t") == first  # idempotent
    with pytest.raises(Exception, match="InsufficientInstanceCapacity"):
        c.run_instances(ImageId="ami-1", InstanceType="m5.2xlarge", MinCount=1, MaxCount=1)
    emu.fail_next("describe_instances", "RequestLimitExceeded", status=503)
    with pytest.raises(Exception, match="RequestLimitExceeded"):
        c.describe_instances()
    page = c.describe_instances(Filters=[{"Name": "tag:k", "Values": ["v"]}], MaxResults=5)
    assert page["Reservations"][0]["Instances"][0]["State"]["Name"] == "pending"
    w.clock.advance_to(w.clock.now() + 61)
    c.describe_instances()
    assert len(w.pool.machines) == 1


def test_vmdemand_counts_booting_and_reports_unfit(world):
    w, emu = world(ec2_queue(types="c5.large"), boot_time=300)
    w.pool.schedd().add_jobs(4, RequestCpus=1, RequestMemory=2048)
    w.pool.schedd().add_jobs(2, RequestCpus=1, RequestMemory=16000)  # never counts toward a 4 GB type
    d = w.cycle()["CLOUD"]
    assert d.count == 2 and "unfit=2" in d.reason
    assert w.cycle()["CLOUD"].n == 0


def test_queues_listed_by_different_sources_never_take_each_other_for_orphans(world):
    # different collectors: two status sources over one account, each listing both queues' VMs
    w, emulated = world(ec2_queue("A", extra="batchsubmit.ec2.collectorhost = cm-a.example.org\n")
                        + ec2_queue("B", extra="batchsubmit.ec2.collectorhost = cm-b.example.org\n"))
    w.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=2048)
    w.cycle()
    launched = {i.id for i in emulated.instances.values()}
    assert len(launched) == 4  # 2 per queue: each queue's constraint selects all 16 jobs
    for _ in range(3):
        w.cycle(30)
    assert {i.id for i in emulated.instances.values() if i.state in ("pending", "running")} == launched
    assert not [a for a in w.ledger.actions() if "orphaned" in (a["note"] or "")]


def test_a_vm_a_job_took_after_the_status_read_is_not_drained(world):
    w, emu = world(ec2_queue(), boot_time=60)
    jobs = w.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    w.cycle(100)
    emu.advance()
    negotiate(w.pool)
    w.pool.schedd().finish(jobs)
    negotiate(w.pool)  # the one VM is idle at the next status read
    (queue,) = w.factory.queues
    retire = queue.target.retire

    def a_job_matches_first(n, ctx):
        late = w.pool.schedd().add_jobs(1, RequestCpus=1, RequestMemory=2048)
        negotiate(w.pool)
        assert w.pool.schedd().jobs[late[0]].get("RemoteHost")
        return retire(n, ctx)

    queue.target.retire = a_job_matches_first
    d = w.cycle()["CLOUD"]
    assert d.action == "retire" and d.count == 0  # the startd refused: the VM runs the job on
    assert not any(ad.get("Draining") for ad in w.pool.machines.values())
    assert [i.state for i in emu.instances.values()] == ["running"]


def test_the_emulated_startd_refuses_a_drain_its_check_expression_fails(world):
    w, emu = world(ec2_queue(), boot_time=60)
    w.pool.schedd().add_jobs(1, RequestCpus=1, RequestMemory=2048)
    w.cycle(100)
    emu.advance()
    (name,) = w.pool.machines
    w.pool.drain(name, check_expr='State == "Unclaimed"')  # idle: drains
    assert w.pool.machines[name]["Draining"] is True
    w.pool.machines[name]["State"] = "Claimed"
    with pytest.raises(Exception, match="refused"):
        w.pool.drain(name, check_expr='State == "Unclaimed"')


def test_a_booting_vm_cancelled_after_it_joined_and_took_a_job_is_kept(world):
    queue_text = ec2_queue().replace("schedplugin = VMDemand, MaxPerCycle", "schedplugin = Elastic, MaxPerCycle")
    w, emu = world(queue_text + "sched.elastic.boot_time = 120\n", boot_time=45)
    schedd = w.pool.schedd()
    jobs = schedd.add_jobs(8, RequestCpus=1, RequestMemory=2048)
    assert w.cycle(30)["CLOUD"].action == "submit"
    schedd.finish(jobs)  # the work went elsewhere while the VM boots: Elastic cancels it
    (queue,) = w.factory.queues
    retire = queue.target.retire

    def it_joins_and_takes_a_job_first(n, ctx):
        w.clock.advance_to(w.clock.now() + 30)
        emu.advance()
        schedd.add_jobs(1, RequestCpus=1, RequestMemory=2048)
        negotiate(w.pool)
        return retire(n, ctx)

    queue.target.retire = it_joins_and_takes_a_job_first
    d = w.cycle()["CLOUD"]
    assert d.action == "retire" and "cancel-booting=1" in d.steps[0].reason and d.count == 0
    assert [i.state for i in emu.instances.values()] == ["running"]
    assert any(ad.get("State") == "Claimed" for ad in w.pool.machines.values())


@pytest.mark.parametrize("types, launched", [("m5.2xlarge, c5.2xlarge", {"m5.2xlarge": 2, "c5.2xlarge": 2}),
                                             ("m5.2xlarge", {"m5.2xlarge": 2})])
def test_a_fallback_after_some_chunks_started_launches_only_the_rest_and_records_all(world, types, launched):
    w, emu = world(ec2_queue(types=types, extra="batchsubmit.ec2.max_per_call = 2\n"), boot_time=300,
                   capacity={"m5.2xlarge": 3})
    w.pool.schedd().add_jobs(32, RequestCpus=1, RequestMemory=2048)  # 4 VMs; the second chunk of 2 finds 1 left
    d = w.cycle()["CLOUD"]
    live = [i for i in emu.instances.values() if i.state in ("pending", "running")]
    assert {t: sum(1 for i in live if i.type == t) for t in launched} == launched
    assert d.action == "submit" and sorted(d.ids) == sorted(i.id for i in live)  # the ledger knows every VM


def test_a_libcloud_node_without_a_creation_time_still_reaches_its_boot_timeout(write_conf, tmp_path):
    from provisioner.cloud import emulator_libcloud

    class NoCreatedAt(emulator_libcloud.EmulatedDriver):  # as some libcloud drivers' nodes
        def _node(self, desc):
            node = super()._node(desc)
            node.created_at = None
            return node

    holder = {}
    w = CloudWorld(write_conf(libcloud_queue("OS", "openstack", "img", "batchsubmit.libcloud.boot_timeout = 600\n")),
                   tmp_path, {"libcloud": lambda provider, *a, **k: holder["driver"]})
    emulated = EmulatedEC2(w.clock, w.pool, boot_time=60, boot_failure_rate=1.0)  # an image that never joins
    holder["driver"] = NoCreatedAt(emulated, "openstack")
    w.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    w.cycle(300)
    (first,) = emulated.instances
    for _ in range(3):
        w.cycle(300)
    assert emulated.instances[first].state in ("shutting-down", "terminated")
    assert any("boot timeout" in (a["note"] or "") for a in w.ledger.actions())


def test_libcloud_accounts_named_by_credentials_files_are_listed_apart():
    from provisioner.cloud.libcloudapi import LibcloudBackend

    def key(path):
        return LibcloudBackend({"provider": "ec2", "key": None, "credentials_file": path}, None).key

    assert key("/etc/a.cred") != key("/etc/b.cred") and key("/etc/a.cred") == key("/etc/a.cred")


def test_a_removed_queues_cancelled_vms_never_count_against_its_guard(world, tmp_path):
    w, emulated = world(ec2_queue("OLD") + ec2_queue("KEPT"))
    w.pool.schedd().add_jobs(40, RequestCpus=1, RequestMemory=2048)
    w.cycle(30)
    old = {i.id for i in emulated.instances.values() if i.tags.get(tags.QUEUE) == "OLD"}
    assert len(old) >= 5  # enough to trip a guard, were they counted as boot failures
    (tmp_path / "queues.conf").write_text(ec2_queue("KEPT"))
    w.pool.schedd().jobs.clear()
    again = w.restart()  # OLD removed while its VMs boot: they are orphans, terminated at once
    again.cycle(30)
    assert all(emulated.instances[i].state in ("shutting-down", "terminated") for i in old)
    saved = again.ledger.get_state("cloud.guard/OLD")
    assert not (saved and saved["events"])  # OLD, back by a reload, starts with a clean guard
