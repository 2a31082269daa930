"""The libcloud target against moto through libcloud's EC2 driver over real HTTP."""
from provisioner.cloud import tags

from .conftest import AMI, instances, libcloud_queue

QUEUE = libcloud_queue("LC", "ec2", "{ami}", """\
    batchsubmit.libcloud.key = testing
    batchsubmit.libcloud.secret = testing-secret-key
    batchsubmit.libcloud.driver.region = us-east-1
    batchsubmit.libcloud.driver.host = 127.0.0.1
    batchsubmit.libcloud.driver.port = {port}
    batchsubmit.libcloud.driver.secure = False
    batchsubmit.libcloud.driver.signature_version = 4
    batchsubmit.libcloud.max_draining_percent = 100
    """)


def test_libcloud_launches_in_one_call_lists_by_tag_and_terminates(cloud_world, proxy, ec2):
    from provisioner.cloud.emulator import negotiate

    from .conftest import join_all

    proxy.namespace = True  # moto's xmlns lacks the trailing slash libcloud expects
    port = proxy.url.rsplit(":", 1)[1]
    world = cloud_world(QUEUE.format(port=port, ami=AMI))
    jobs = world.pool.schedd().add_jobs(20, RequestCpus=1, RequestMemory=2048)
    d = world.cycle()["LC"]
    assert d.action == "submit" and d.count == 3 and proxy.calls["RunInstances"] == 1
    found = instances(ec2, **{tags.QUEUE: "LC"})
    assert len(found) == 3
    assert world.cycle()["LC"].pilots.pending == 3
    join_all(world.pool, ec2, now=world.clock.now())
    negotiate(world.pool)
    world.pool.schedd().finish(jobs)
    negotiate(world.pool)
    d = world.cycle()["LC"]
    assert d.action == "retire" and d.count == 3
    world.cycle()
    assert instances(ec2) == []


def test_check_config_masks_libcloud_secret(write_conf, capsys):
    from provisioner.cli import main

    conf = write_conf(libcloud_queue("LC", "openstack", "img-1", """\
        batchsubmit.libcloud.key = pilots
        batchsubmit.libcloud.secret = testing-secret-key
        batchsubmit.libcloud.driver.ex_force_auth_token = gAAAA-tok
        batchsubmit.libcloud.driver.ex_tenant_name = physics
        """))
    assert main(["check-config", "--conf", conf]) == 0
    out = capsys.readouterr().out
    assert "testing-secret-key" not in out and "batchsubmit.libcloud.secret = ********" in out
    assert "gAAAA-tok" not in out and "batchsubmit.libcloud.driver.ex_force_auth_token = ********" in out
    assert "batchsubmit.libcloud.driver.ex_tenant_name = physics" in out  # a name, not a secret


def test_libcloud_ec2_under_a_vcpu_quota_launches_what_fits(cloud_world, proxy, ec2):
    proxy.namespace = True
    proxy.vcpu_quota = 16
    port = proxy.url.rsplit(":", 1)[1]
    world = cloud_world(QUEUE.format(port=port, ami=AMI))
    world.pool.schedd().add_jobs(40, RequestCpus=1, RequestMemory=2048)  # 5 VMs, 2 fit
    d = world.cycle()["LC"]
    assert d.action == "submit" and d.count == 2 and len(instances(ec2)) == 2
    assert proxy.sizes == [5, 2, 2, 1]


def test_libcloud_ec2_launches_in_the_zone_given(cloud_world, proxy, ec2):
    proxy.namespace = True
    port = proxy.url.rsplit(":", 1)[1]
    world = cloud_world(QUEUE.format(port=port, ami=AMI) + "batchsubmit.libcloud.zones = us-east-1c\n")
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["LC"].count == 1
    assert [i["Placement"]["AvailabilityZone"] for i in instances(ec2)] == ["us-east-1c"]


def test_libcloud_ec2_capacity_refused_with_a_500_falls_back_at_once(cloud_world, proxy, ec2):
    proxy.namespace = True
    port = proxy.url.rsplit(":", 1)[1]
    text = QUEUE.format(port=port, ami=AMI).replace("instance_types = m5.2xlarge", "instance_types = m5.2xlarge, "
                                                                                   "c5.2xlarge")
    world = cloud_world(text)
    proxy.fail("RunInstances", "InsufficientInstanceCapacity", 500, times=100, match={"InstanceType": "m5.2xlarge"})
    world.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=1024)
    d = world.cycle()["LC"]
    assert d.action == "submit" and d.count == 2
    assert {i["InstanceType"] for i in instances(ec2)} == {"c5.2xlarge"}
    assert proxy.calls["RunInstances"] == 2 and world.sleeps == []


def test_a_launch_answer_naming_no_vm_pauses_the_queue_instead_of_launching_again(cloud_world, proxy, ec2):
    # No namespace adaptation: libcloud cannot read moto's answers, so create_node returns no node
    # while moto starts the VMs. The quota (24 vCPUs: 3 VMs) bounds what a launch loop could start.
    proxy.vcpu_quota = 24
    port = proxy.url.rsplit(":", 1)[1]
    world = cloud_world(QUEUE.format(port=port, ami=AMI))
    world.pool.schedd().add_jobs(20, RequestCpus=1, RequestMemory=2048)
    d = world.cycle()["LC"]
    assert d.action == "failed" and "without naming any VM" in d.note
    assert proxy.sizes == [3]  # one call, not one more call after another
    assert len(instances(ec2, **{tags.LAUNCH: world.ledger.actions()[0]["launch_id"]})) == 3
    world.cycle()
    assert proxy.sizes == [3] and world.factory.queues[0].paused_until > world.clock.now()
