"""The libcloud target through libcloud's real OpenStack driver, against a fake Nova over
HTTP (tests/cloud/nova.py): the requests it sends, zones, quotas, listing and terminate."""
import logging

from provisioner.cloud import tags
from provisioner.cloud.emulator import add_machine, negotiate

from .conftest import libcloud_queue


def openstack_queue(nova, extra=""):
    return libcloud_queue("OS", "openstack", "image-uuid", f"""\
        batchsubmit.libcloud.key = pilots
        batchsubmit.libcloud.secret = not-used-with-a-token
        batchsubmit.libcloud.driver.ex_force_auth_url = http://127.0.0.1:1/
        batchsubmit.libcloud.driver.ex_force_auth_version = 3.x_password
        batchsubmit.libcloud.driver.ex_force_auth_token = a-token
        batchsubmit.libcloud.driver.ex_force_base_url = {nova.url}
        batchsubmit.libcloud.driver.ex_tenant_name = pilots
        batchsubmit.libcloud.max_draining_percent = 100
        """ + extra)


def test_nodes_are_created_tagged_with_user_data_in_the_zone_listed_and_terminated(cloud_world, nova):
    world = cloud_world(openstack_queue(nova, "batchsubmit.libcloud.zones = az-2\n"))
    jobs = world.pool.schedd().add_jobs(20, RequestCpus=1, RequestMemory=2048)
    d = world.cycle()["OS"]
    assert d.action == "submit" and d.count == 3 and sorted(d.ids) == sorted(nova.servers)
    launch_id = world.ledger.actions()[0]["launch_id"]
    for sid, server in nova.servers.items():
        assert server["flavor"]["id"] == "m5.2xlarge" and server["image"]["id"] == "image-uuid"
        assert server["OS-EXT-AZ:availability_zone"] == "az-2"
        assert server["metadata"][tags.QUEUE] == "OS" and server["metadata"][tags.LAUNCH] == launch_id
        assert nova.user_data(sid).startswith("#cloud-config")
    assert world.cycle()["OS"].pilots.states == {"booting": 3}  # listed by their metadata
    for sid in nova.servers:
        add_machine(world.pool, sid, 8, 32768, 0, nova.servers[sid]["metadata"], world.clock.now())
    negotiate(world.pool)
    world.pool.schedd().finish(jobs)
    negotiate(world.pool)
    assert world.cycle()["OS"].action == "retire"
    world.cycle()
    assert nova.servers == {}
    assert sum(method == "DELETE" for method, _, _ in nova.requests) == 3


def test_servers_the_scheduler_puts_in_error_are_boot_failures_that_trip_the_guard(cloud_world, nova):
    nova.fault = "No valid host was found. There are not enough hosts available."
    world = cloud_world(openstack_queue(nova, "batchsubmit.libcloud.guard_failures = 3\n"))
    world.pool.schedd().add_jobs(16, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["OS"].count == 2
    d = world.cycle()["OS"]  # both in ERROR: failed at once, not after the boot timeout
    assert d.pilots.states == {"failed": 2} and d.count == 2 and nova.servers.keys() == set(d.ids)
    assert world.cycle()["OS"].pilots.states == {"failed": 2}
    d = world.cycle()["OS"]
    assert d.note.startswith("paused: black-hole guard: 4 boot failures") and nova.servers == {}
    notes = [a["note"] for a in world.ledger.actions() if a["action"] == "terminate"]
    assert notes == ["boot failure: the cloud put them in error"] * 2


def test_every_page_of_servers_is_listed(cloud_world, nova):
    nova.page_size = 2
    world = cloud_world(openstack_queue(nova))
    world.pool.schedd().add_jobs(40, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["OS"].count == 5
    before = len(nova.requests)
    assert world.cycle()["OS"].pilots.states == {"booting": 5}  # not the first page's 2, relaunching 3
    pages = [path for method, path, _ in nova.requests[before:] if "/servers/detail" in path]
    assert len(pages) == 3 and "marker=" in pages[-1]


def test_the_openstack_1_x_drivers_that_read_one_page_are_refused(write_conf, emulated, nova):
    import pytest

    from provisioner.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match=r"\[OS\] batchsubmit.libcloud.driver.api_version: libcloud's OpenStack "
                                           r"1.1 driver lists only Nova's first page of servers"):
        emulated(write_conf(openstack_queue(nova, "batchsubmit.libcloud.driver.api_version = 1.1\n")))


def test_a_nova_quota_launches_what_fits_and_does_not_pause_the_queue(cloud_world, nova, caplog):
    nova.quota = 3
    world = cloud_world(openstack_queue(nova))
    world.pool.schedd().add_jobs(40, RequestCpus=1, RequestMemory=2048)  # 5 VMs
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d = world.cycle()["OS"]
    assert d.action == "submit" and sorted(d.ids) == sorted(nova.servers) and len(nova.servers) == 3
    assert "launched 3 of 5" in caplog.text and "Quota exceeded for instances" in caplog.text
    posts = sum(method == "POST" for method, _, _ in nova.requests)
    d = world.cycle()["OS"]  # still full: one refused request, not a pause
    assert d.action == "failed" and "quota reached after 0" in d.note
    assert sum(method == "POST" for method, _, _ in nova.requests) == posts + 1
    assert world.factory.queues[0].paused_until < world.clock.now()
    nova.quota = 5
    d = world.cycle()["OS"]
    assert d.action == "submit" and d.count == 2 and len(nova.servers) == 5


def test_quota_refusals_are_told_from_other_refusals_by_their_text():
    from libcloud.common.exceptions import BaseHTTPError

    from provisioner.cloud.libcloudapi import LibcloudBackend

    backend = LibcloudBackend({"provider": "openstack", "key": None, "credentials_file": None}, None)
    for message, kind in [
        ("403 Forbidden Quota exceeded for cores: Requested 8, but already used 96 of 100 cores", "quota"),
        ("403 Forbidden Policy doesn't allow os_compute_api:servers:create to be performed.", "fatal"),
        ("409 Conflict", "fatal"),
    ]:
        assert backend.kind(BaseHTTPError(403, message)) == kind, message


def test_a_terminate_retried_after_a_503_does_not_pause_the_queue_on_the_servers_already_gone(cloud_world, nova):
    world = cloud_world(openstack_queue(nova).replace("schedplugin = VMDemand", "schedplugin = Elastic"))
    world.pool.schedd().add_jobs(20, RequestCpus=1, RequestMemory=2048)
    assert world.cycle()["OS"].count == 3
    world.pool.schedd().jobs.clear()  # no job waits: the booting servers are cancelled
    nova.fail("DELETE", 503, skip=1)  # the first is deleted, the second answered 503: retried
    d = world.cycle()["OS"]
    assert d.action == "retire" and d.count == 3 and nova.servers == {}, d.note
    assert world.factory.queues[0].paused_until < world.clock.now()


def test_a_server_created_but_answered_with_a_500_mid_launch_is_adopted_not_launched_again(cloud_world, nova):
    """Nova has no client token: a create whose answer is lost is found by its launch tag."""
    world = cloud_world(openstack_queue(nova))
    world.pool.schedd().add_jobs(20, RequestCpus=1, RequestMemory=2048)  # 3 VMs
    nova.fail("POST", 500, skip=1, done=True)  # the second server is made, its answer lost
    d = world.cycle()["OS"]
    assert d.action == "submit" and len(nova.servers) == 3 and sorted(d.ids) == sorted(nova.servers)
    assert world.cycle()["OS"].pilots.states == {"booting": 3}
