"""A reload that removes the last queue reading a cloud account: the factory keeps it,
launching nothing, until its VMs are drained and terminated (against moto over HTTP)."""
import json
import logging
import time

import pytest

from provisioner import config as configmod
from provisioner import daemon as daemon_mod
from provisioner.cli import main
from provisioner.clock import VirtualClock
from provisioner.cloud import tags
from provisioner.cloud.emulator import add_machine, negotiate
from provisioner.condor.emulator import RUNNING, Pool
from provisioner.errors import ConfigErrors
from provisioner.services import Services

from .conftest import CloudWorld, ec2_queue, instances, join_all

LOCAL = "\n[LOCAL]\nbatchsubmitplugin = CondorLocal\n"


def _daemon(world, conf):
    def make_services(cfg):
        return Services(cfg.factory_id, world.clock, world.pool, log_dir=str(world.tmp_path / "logs"),
                        extra=dict(world.services.extra))

    return daemon_mod.Daemon(conf, configmod.load(conf), make_services)


def _cycle(d, world):
    out = {x.queue: x for x in d.factory.cycle()}
    world.clock.advance_to(world.clock.now() + 60)
    for q in d.factory.queues:
        q.next_due = min(q.next_due, world.clock.now())
    return out


def test_removed_last_queue_of_an_account_drains_its_vms_then_goes(write_conf, tmp_path, moto, ec2, caplog):
    conf = write_conf(ec2_queue("OLD", endpoint=moto) + LOCAL)
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    d = _daemon(world, conf)
    schedd = world.pool.schedd()
    work = schedd.add_jobs(8, RequestCpus=1, RequestMemory=2048)
    assert _cycle(d, world)["OLD"].count == 1
    join_all(world.pool, ec2, now=world.clock.now())
    assert negotiate(world.pool) == 8
    busy = instances(ec2)[0]["InstanceId"]
    more = schedd.add_jobs(16, RequestCpus=1, RequestMemory=2048)
    assert _cycle(d, world)["OLD"].count == 2
    idle, booting = sorted(i["InstanceId"] for i in instances(ec2) if i["InstanceId"] != busy)
    add_machine(world.pool, idle, 8, 32768, 0, {tags.FACTORY: "test-factory", tags.QUEUE: "OLD"}, world.clock.now())
    for jid in more:  # the jobs go elsewhere: one VM idle, one still booting
        schedd.jobs.pop(jid)

    write_conf(LOCAL)  # OLD removed: no queue left reads its account
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d.reload()
    assert "queue=OLD removed from the configuration, but no queue left reads its cloud account" in caplog.text
    schedd.add_jobs(50, RequestCpus=1, RequestMemory=2048)  # work it must not launch for
    out = _cycle(d, world)
    assert out["OLD"].action == "none" and out["OLD"].reason.startswith(
        "winddown=0 (removed from the configuration: 3 VMs left")
    assert {i["InstanceId"] for i in instances(ec2)} == {busy, idle}  # the booting one cancelled at once
    negotiate(world.pool)  # the waiting jobs find no room: both VMs are draining
    assert [ad["JobStatus"] for ad in schedd.jobs.values()].count(RUNNING) == 8
    _cycle(d, world)
    assert {i["InstanceId"] for i in instances(ec2)} == {busy}  # its jobs still run
    assert all(schedd.jobs[j]["JobStatus"] == RUNNING for j in work)

    schedd.finish(work)
    negotiate(world.pool)  # the drain completes
    out = _cycle(d, world)
    assert instances(ec2) == [] and "OLD" in out
    out = _cycle(d, world)  # the listing shows none left: the queue goes
    assert out["OLD"].reason.startswith("winddown=0 (removed from the configuration: 0 VMs left")
    assert [q.name for q in d.factory.queues] == ["LOCAL"]
    assert "OLD" not in _cycle(d, world)
    ended = [json.loads(a["ids"]) for a in d.ledger.actions()
             if (a["queue"], a["action"]) == ("OLD", "terminate") and "orphaned" in a["note"]]
    assert sorted(i for ids in ended for i in ids) == sorted([busy, idle, booting])
    d.ledger.close()


def test_a_removed_queue_winding_down_stays_on_the_status_page_with_its_counters(write_conf, tmp_path, moto, ec2):
    from prometheus_client import generate_latest

    from provisioner.monitor.web import WebMonitor

    conf = write_conf(ec2_queue("OLD", endpoint=moto) + LOCAL)
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    d = _daemon(world, conf)
    web = WebMonitor("test-factory", str(tmp_path))
    d.monitors.append(web)  # the list the daemon hands every factory it builds
    d.factory.monitors.append(web)
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    assert _cycle(d, world)["OLD"].action == "submit"
    write_conf(LOCAL)
    d.reload()
    # kept until its VMs are gone: it did not leave the page to come back with its counters at 0
    assert "OLD" in web.status()
    assert b'provisioner_actions_total{action="submit",queue="OLD"} 1.0' in generate_latest(web.metrics.registry)
    assert _cycle(d, world)["OLD"].reason.startswith("winddown=0")
    assert web.status()["OLD"]["reason"].startswith("winddown=0")
    d.ledger.close()


def test_a_removed_queue_whose_account_another_queue_reads_is_not_kept(write_conf, tmp_path, moto, ec2):
    conf = write_conf(ec2_queue("OLD", endpoint=moto) + ec2_queue("KEPT", endpoint=moto))
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    d = _daemon(world, conf)
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    _cycle(d, world)
    write_conf(ec2_queue("KEPT", endpoint=moto))
    d.reload()
    assert [q.name for q in d.factory.queues] == ["KEPT"]  # KEPT finds OLD's VMs as orphans
    assert len(instances(ec2, **{tags.QUEUE: "OLD"})) == 1
    d.ledger.close()


def test_a_queue_removed_while_the_factory_was_stopped_is_wound_down_after_the_restart(
        write_conf, tmp_path, moto, ec2, caplog, capsys):
    conf = write_conf("[DEFAULT]\nbatchsubmit.ec2.idle_shutdown = 900\n" + ec2_queue("OLD", endpoint=moto) + LOCAL)
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    d = _daemon(world, conf)
    schedd = world.pool.schedd()
    work = schedd.add_jobs(8, RequestCpus=1, RequestMemory=2048)
    _cycle(d, world)
    join_all(world.pool, ec2, now=world.clock.now())
    assert negotiate(world.pool) == 8
    d.ledger.close()  # the factory stops; OLD is removed before it starts again

    write_conf(LOCAL)
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d = _daemon(world, conf)
    assert "queue=OLD removed from the configuration, but no queue left reads its cloud account" in caplog.text
    old = next(q for q in d.factory.queues if q.name == "OLD")
    assert old.target.opts["idle_shutdown"] == 900  # its options as they were, [DEFAULT]'s included
    assert _cycle(d, world)["OLD"].pilots.states == {"busy": 1}  # as read, before it is drained
    assert [ad.get("Draining") for ad in world.pool.machines.values()] == [True]
    assert _cycle(d, world)["OLD"].pilots.states == {"draining": 1}
    assert main(["status", "--conf", conf]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "removed from the configuration: 1 VMs left" in rows["OLD"] and "LOCAL" in rows
    schedd.finish(work)
    negotiate(world.pool)
    _cycle(d, world)
    assert instances(ec2) == []
    _cycle(d, world)
    assert [q.name for q in d.factory.queues] == ["LOCAL"] and d.ledger.states("winddown/") == {}
    d.ledger.close()
    assert main(["status", "--conf", conf]) == 0
    assert "OLD" not in capsys.readouterr().out
    d = _daemon(world, conf)  # nothing is left to wind down
    assert [q.name for q in d.factory.queues] == ["LOCAL"]
    d.ledger.close()


def test_only_the_options_a_queue_reads_are_kept(write_conf, tmp_path, moto):
    conf = write_conf("[DEFAULT]\nos_password = TOPSECRET-1\nbatchsubmit.libcloud.secret = TOPSECRET-2\n"
                      "batchsubmit.ec2.idle_shutdown = 900\n" + ec2_queue("EC", endpoint=moto)
                      + LOCAL + "batchsubmit.condorlocal.environ = OS_PASSWORD=%(os_password)s\n")
    world = CloudWorld(conf, tmp_path)
    kept = world.ledger.get_state("winddown/EC")["options"]
    world.ledger.close()
    assert kept["batchsubmit.ec2.idle_shutdown"] == "900" and kept["batchsubmitplugin"] == "EC2"
    assert not [k for k in kept if k in ("os_password", "batchsubmit.libcloud.secret")]
    assert b"TOPSECRET" not in (tmp_path / "ledger.sqlite").read_bytes()


def test_options_holding_secrets_stay_out_of_the_ledger_and_the_restart_says_so(write_conf, tmp_path, caplog):
    from .test_libcloud_moto import QUEUE as LIBCLOUD

    conf = write_conf(LIBCLOUD.format(port=5000, ami="ami-12345678") + LOCAL)
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    _daemon(world, conf).ledger.close()
    assert b"testing-secret-key" not in (tmp_path / "logs" / "ledger.sqlite").read_bytes()
    write_conf(LOCAL)
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d = _daemon(world, conf)
    assert [q.name for q in d.factory.queues] == ["LOCAL"]
    assert ("queue=LC was removed from " + str(tmp_path / "queues.conf") + " while the factory was stopped; its "
            "VMs cannot be wound down, since its options held secrets (batchsubmit.libcloud.key, "
            "batchsubmit.libcloud.secret)") in caplog.text
    assert "testing-secret-key" not in caplog.text
    d.ledger.close()


def test_a_queue_moved_to_another_account_while_its_vms_remain_is_refused_until_renamed(
        write_conf, tmp_path, moto, ec2, caplog):
    conf = write_conf(ec2_queue("Q", endpoint=moto) + LOCAL)
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    d = _daemon(world, conf)
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    _cycle(d, world)
    (vm,) = [i["InstanceId"] for i in instances(ec2)]
    west = "batchsubmit.ec2.region = us-west-2\n"
    write_conf(ec2_queue("Q", endpoint=moto, extra=west) + LOCAL)
    with caplog.at_level(logging.ERROR, logger="provisioner"):
        d.reload()  # refused: the running configuration stays
    assert ("[Q]: its cloud account or collector changed while 1 of its VMs are on the previous one, where they "
            "would go unmanaged: give the queue a new name") in caplog.text
    d.ledger.close()
    with pytest.raises(ConfigErrors, match=r"\[Q\]: its cloud account or collector changed while 1 of its VMs"):
        _daemon(world, conf)  # a restart is refused too

    world.pool.schedd().jobs.clear()  # no work: Q2 launches nothing on us-west-2
    write_conf(ec2_queue("Q2", endpoint=moto, extra=west) + LOCAL)  # renamed: Q winds its VM down
    d = _daemon(world, conf)
    assert sorted(q.name for q in d.factory.queues) == ["LOCAL", "Q", "Q2"]
    _cycle(d, world)
    _cycle(d, world)
    assert instances(ec2) == [] and ("terminate", [vm]) in [(a["action"], json.loads(a["ids"]))
                                                            for a in d.ledger.actions("Q")]
    d.ledger.close()
    write_conf(ec2_queue("Q2", endpoint=moto) + LOCAL)  # moved back: nothing of it is left on us-west-2
    _daemon(world, conf).ledger.close()


def _one_vm(world, conf, queue_text, ec2):
    write_conf_text(world, queue_text)
    d = _daemon(world, conf)
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    _cycle(d, world)
    world.pool.schedd().jobs.clear()
    assert len(instances(ec2)) == 1
    d.ledger.close()


def write_conf_text(world, queue_text):
    (world.tmp_path / "queues.conf").write_text("[DEFAULT]\napfqueue.sleep = 60\n" + queue_text)


def test_a_changed_option_that_names_the_same_account_is_no_move(write_conf, tmp_path, moto, ec2):
    conf = write_conf(LOCAL)
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    _one_vm(world, conf, ec2_queue("Q", endpoint=moto) + LOCAL, ec2)
    write_conf_text(world, ec2_queue("Q", endpoint=moto.replace("127.0.0.1", "localhost")) + LOCAL)
    _daemon(world, conf).ledger.close()  # another endpoint URL, the same VMs listed: accepted
    write_conf_text(world, ec2_queue("Q", endpoint=moto, extra="batchsubmit.ec2.collectorhost = cm2.example.org\n")
                    + LOCAL)
    with pytest.raises(ConfigErrors, match=r"\[Q\]: its cloud account or collector changed while 1 of its VMs"):
        _daemon(world, conf)  # its VMs joined the other collector


def test_a_move_that_cannot_be_told_is_checked_again_at_the_next_start(write_conf, tmp_path, proxy, ec2, caplog):
    conf = write_conf(LOCAL)
    world = CloudWorld(conf, tmp_path)
    world.ledger.close()
    _one_vm(world, conf, ec2_queue("Q", endpoint=proxy.url) + LOCAL, ec2)
    write_conf_text(world, ec2_queue("Q", endpoint=proxy.url, extra="batchsubmit.ec2.region = us-west-2\n") + LOCAL)
    proxy.fail("DescribeInstances", "Unavailable", 503, times=1000)
    with caplog.at_level(logging.WARNING, logger="provisioner"):
        d = _daemon(world, conf)  # the previous account cannot be listed: started, with a warning
    assert "queue=Q: whether its options now name another cloud account" in caplog.text
    kept = d.ledger.get_state("winddown/Q")  # the current options (a removal winds down the new account)
    assert kept["options"]["batchsubmit.ec2.region"] == "us-west-2"
    assert "batchsubmit.ec2.region" not in kept["previous"]["options"]  # and those the next check tells from
    d.ledger.close()
    proxy.faults.clear()
    with pytest.raises(ConfigErrors, match=r"\[Q\]: its cloud account or collector changed while 1 of its VMs"):
        _daemon(world, conf)


class _TwoCollectors(Pool):
    """The emulated pool answers for collector cmA; cmB is a second pool with startds of its own."""

    def __init__(self, clock):
        super().__init__(clock)
        self.other = Pool(clock)

    def collector(self, pool=None):
        return self.other.collector() if pool == "cmB" else super().collector(pool)


def test_a_queue_reading_another_collector_leaves_a_removed_queues_busy_vm_alone(write_conf, tmp_path, moto, ec2):
    """Two pools fed from one account: the queue left on cmB does not see the startds of cmA,
    where the removed queue's VM runs jobs; that queue, kept to wind down, drains it."""
    a, b = "batchsubmit.ec2.collectorhost = cmA\n", "batchsubmit.ec2.collectorhost = cmB\n"
    conf = write_conf(ec2_queue("OLD", endpoint=moto, extra=a) + ec2_queue("KEPT", endpoint=moto, extra=b))
    clock = VirtualClock(time.time())
    world = CloudWorld(conf, tmp_path, clock=clock, pool=_TwoCollectors(clock))
    world.ledger.close()
    d = _daemon(world, conf)
    work = world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)
    _cycle(d, world)
    (vm,) = [i["InstanceId"] for i in instances(ec2, **{tags.QUEUE: "OLD"})]
    add_machine(world.pool, vm, 8, 32768, 0, {tags.FACTORY: "test-factory", tags.QUEUE: "OLD"}, clock.now())
    assert negotiate(world.pool) == 8  # it joined cmA (since OLD's last look) and runs the jobs
    write_conf(ec2_queue("KEPT", endpoint=moto, extra=b))
    d.reload()
    assert sorted(q.name for q in d.factory.queues) == ["KEPT", "OLD"]  # no queue left reads cmA
    _cycle(d, world)
    assert vm in {i["InstanceId"] for i in instances(ec2)}
    assert [ad.get("Draining") for ad in world.pool.machines.values()] == [True]
    world.pool.schedd().finish(work)
    negotiate(world.pool)
    _cycle(d, world)
    assert vm not in {i["InstanceId"] for i in instances(ec2)}
    d.ledger.close()
