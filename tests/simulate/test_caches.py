"""The emulators' query caches (collector projections, schedd projections and constraint
results, EC2 descriptions): a query after any change sees the change."""
import pytest

from provisioner.clock import VirtualClock
from provisioner.cloud import emulator as ec2emulator
from provisioner.condor import emulator
from provisioner.condor.emulator import IDLE, RUNNING
from provisioner.simulate.pool import make_pool

PROJECTION = ["Name", "State", "Cpus", "Draining"]
MINE = 'ProvisionerFactory =?= "f"'


def _machine(name, **attrs):
    return emulator.StartdAd({"Name": name, "State": "Unclaimed", "Cpus": 8, "ProvisionerFactory": "f", **attrs})


def _names(ads):
    return sorted(ad["Name"] for ad in ads)


def test_the_collector_sees_every_change_to_a_startd_ad():
    pool = emulator.Pool(VirtualClock(0))
    pool.machines["a"], pool.machines["b"] = _machine("a"), _machine("b")
    coll = pool.collector()
    assert _names(coll.query(None, MINE, PROJECTION)) == ["a", "b"]
    first = coll.query(None, MINE, PROJECTION)

    pool.machines["a"]["State"] = "Claimed"
    pool.machines["a"]["Cpus"] = 3
    ads = {ad["Name"]: ad for ad in coll.query(None, MINE, PROJECTION)}
    assert (ads["a"]["State"], ads["a"]["Cpus"], ads["b"]["State"]) == ("Claimed", 3, "Unclaimed")
    assert first[0]["State"] == "Unclaimed"  # an earlier answer is not changed under its holder

    pool.drain("a")
    assert coll.query(None, MINE, PROJECTION)[0].get("Draining") is True
    del pool.machines["a"]["Draining"]
    assert all(ad.get("Draining") is None for ad in coll.query(None, MINE, PROJECTION))

    pool.machines["b"]["ProvisionerFactory"] = "other"  # stops matching the constraint
    assert _names(coll.query(None, MINE, PROJECTION)) == ["a"]
    pool.machines["b"].update({"ProvisionerFactory": "f"})
    assert _names(coll.query(None, MINE, PROJECTION)) == ["a", "b"]

    pool.machines["c"] = _machine("c")  # a startd advertises, another leaves
    del pool.machines["a"]
    assert _names(coll.query(None, MINE, PROJECTION)) == ["b", "c"]
    assert _names(coll.query(None, MINE, ["Name"])) == ["b", "c"]  # another projection
    assert _names(coll.query(None, 'State == "Claimed"', PROJECTION)) == []


def test_a_shared_query_answer_is_read_only_and_reads_its_changed_ad_afresh():
    pool = emulator.Pool(VirtualClock(0))
    ad = pool.machines["a"] = _machine("a")
    (answer,) = pool.collector().query(None, MINE, PROJECTION)
    with pytest.raises(TypeError):
        answer["State"] = "Claimed"
    assert ad.get("State") == "Unclaimed" and ad.get("Missing", 1) == 1
    ad["State"] = "Claimed"
    ad["Missing"] = 2
    assert (ad.get("State"), ad["Missing"], "Missing" in ad) == ("Claimed", 2, True)


def test_a_constraint_with_a_function_call_is_evaluated_at_every_query():
    assert emulator.is_pure('ProvisionerFactory =?= "f(x)" && (Cpus > 1 || State == "a")')
    assert not emulator.is_pure("time() > EnteredCurrentState + 60")
    assert not emulator.is_pure('regexp("^slot1", Name)')


def test_the_simulators_schedd_sees_every_job_change():
    pool = make_pool(VirtualClock(100))
    schedd = pool.schedd()
    ids = schedd.add_jobs(3, TargetQueue="A")
    idle = "JobStatus == 1"
    projection = ["ClusterId", "ProcId", "JobStatus", "TargetQueue"]
    assert len(schedd.query(idle, projection)) == 3

    schedd.set_status([ids[0]], RUNNING)
    assert len(schedd.query(idle, projection)) == 2
    assert [ad["JobStatus"] for ad in schedd.query("JobStatus == 2", projection)] == [RUNNING]

    schedd.edit(ids[1], "TargetQueue", '"B"')
    assert sorted(ad["TargetQueue"] for ad in schedd.query(idle, projection)) == ["A", "B"]

    schedd.act(emulator.htcondor2.JobAction.Remove, [ids[2]])
    assert len(schedd.query(idle, projection)) == 1
    schedd.finish([ids[0]])
    assert schedd.query("JobStatus == 2", projection) == []
    schedd.set_status([ids[1]], IDLE)
    new = schedd.add_jobs(1)
    assert sorted(f"{ad['ClusterId']}.{ad['ProcId']}" for ad in schedd.query(idle, projection)) == [ids[1], *new]


def test_an_ec2_description_follows_its_instance():
    clock = VirtualClock(0)
    ec2 = ec2emulator.EmulatedEC2(clock, boot_time=10)
    (iid,) = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-1", InstanceType="c5.large")["Instances"]]

    def described():
        (res,) = ec2.describe_instances()["Reservations"]
        return res["Instances"][0]

    assert described()["State"]["Name"] == "pending"
    clock.advance_to(20)
    assert described()["State"]["Name"] == "running"
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "k", "Value": "v"}])
    assert described()["Tags"] == [{"Key": "k", "Value": "v"}]
    ec2.instances[iid].tags["k"] = "w"  # changed behind the API's back
    assert described()["Tags"] == [{"Key": "k", "Value": "w"}]
    ec2.terminate_instances(InstanceIds=[iid])
    assert described()["State"]["Name"] == "terminated"  # a call advances shutting-down to terminated
