"""What a factory running for months keeps: bounded in memory, and in the ledger."""
import os
from provisioner import config as configmod
from provisioner.clock import VirtualClock
from provisioner.cloud.emulator import EmulatedEC2, negotiate
from provisioner.condor.emulator import Pool
from provisioner.factory import Factory
from provisioner import daemon as daemon_mod
from provisioner.ledger import KEEP_SECONDS, Ledger
from provisioner.services import Services

EC2 = """
[CLOUD]
wmsstatus.condor.queueattribute = TargetQueue
wmsqueue = CLOUD
batchstatusplugin = Cloud
schedplugin = Elastic, MaxPerCycle
sched.maxpercycle.maximum = 4
batchsubmitplugin = EC2
batchsubmit.ec2.ami_id = ami-12c6146b
batchsubmit.ec2.instance_types = m5.large
batchsubmit.ec2.collector = cm.example.org
batchsubmit.ec2.wrapper_url = https://example.org/wrapper.sh
batchsubmit.ec2.boot_timeout = 120
batchsubmit.ec2.guard_failures = 1000
executable.arguments = --wrappergrid=cloud
"""


def _cloud_factory(conf, tmp_path, ledger=None, **emu):
    cfg = configmod.load(conf)
    clock = VirtualClock(1_700_000_000.0)
    pool = Pool(clock)
    ec2 = EmulatedEC2(clock, pool, boot_time=60, seed=3, **emu)
    services = Services(cfg.factory_id, clock, pool, log_dir=str(tmp_path / "logs"),
                        extra={"ec2": ec2.client, "sleep": lambda s: clock.advance_to(clock.now() + s)})
    return Factory(cfg, services, ledger or Ledger(None, cfg.factory_id)), pool, clock, ec2


def test_a_vm_queue_forgets_the_vms_it_no_longer_lists(write_conf, tmp_path):
    """Months of VMs launched, failed, drained and terminated: the queue's tracker keeps only
    those the cloud still lists, not every VM it ever had."""
    factory, pool, clock, ec2 = _cloud_factory(write_conf(EC2), tmp_path, boot_failure_rate=0.3)
    schedd = pool.schedd()
    listed_max = kept_max = 0
    for cycle in range(300):
        if cycle % 20 == 0:  # a burst of short jobs, then a lull: VMs come and go
            schedd.add_jobs(6, TargetQueue="CLOUD", RequestCpus=1, RequestMemory=1024)
        running = [j for j, ad in schedd.jobs.items() if ad.get("JobStatus") == 2]
        schedd.finish(running)
        negotiate(pool)
        factory.cycle()
        listed_max = max(listed_max, sum(i.state != "terminated" for i in ec2.instances.values()))
        clock.advance_to(clock.now() + 60)
        for q in factory.queues:
            q.next_due = min(q.next_due, clock.now())
        tracker = factory.services.extra["cloud.trackers"][("CLOUD", False)]
        kept_max = max(kept_max, *(len(k) for k in (tracker.failed, tracker.terminated_by_us, tracker.lost_since,
                                                      tracker.joined)))
    actions = factory.ledger.actions(limit=10_000)
    launched = sum(a["count"] for a in actions if a["action"] == "submit")
    assert launched > 5 * listed_max  # many VMs have come and gone for good, some never joined
    assert any(a["note"].startswith("boot timeout") for a in actions)
    assert any(a["note"] == "drained" for a in actions)
    assert kept_max <= listed_max


def test_a_libcloud_account_forgets_the_launch_times_of_nodes_gone(write_conf, tmp_path):
    from provisioner.cloud import emulator_libcloud

    class NoCreatedAt(emulator_libcloud.EmulatedDriver):  # as some libcloud drivers' nodes
        def _node(self, desc):
            node = super()._node(desc)
            node.created_at = None
            return node

    queue = EC2.replace("batchsubmit.ec2.", "batchsubmit.libcloud.").replace("= EC2", "= Libcloud")
    queue = queue.replace("libcloud.ami_id = ami-12c6146b", "libcloud.provider = openstack\nbatchsubmit.libcloud.image = img")
    holder = {}
    factory, pool, clock, ec2 = _cloud_factory(write_conf(queue), tmp_path, boot_failure_rate=1.0)
    factory.services.extra["libcloud"] = lambda provider, *a, **k: holder["driver"]
    holder["driver"] = NoCreatedAt(ec2, "openstack")
    pool.schedd().add_jobs(6, TargetQueue="CLOUD", RequestCpus=1, RequestMemory=1024)
    listed_max = 0
    for _ in range(200):  # an image that never joins: launched, timed out, terminated, again
        factory.cycle()
        listed_max = max(listed_max, sum(i.state != "terminated" for i in ec2.instances.values()))
        clock.advance_to(clock.now() + 60)
    (source,) = [s for s in factory.sources.values() if hasattr(s, "backend")]
    launched = sum(a["count"] for a in factory.ledger.actions(limit=10_000) if a["action"] == "submit")
    assert launched > 5 * listed_max
    assert len(source.backend._launched) <= listed_max


FOUR_HOURLY = """
[A]
apfqueue.sleep = 14400
batchsubmitplugin = CondorLocal
schedplugin = Fixed
sched.fixed.pilotspercycle = 1
[B]
apfqueue.sleep = 14400
batchsubmitplugin = CondorLocal
"""


def test_the_ledger_keeps_a_month_of_history_and_what_status_and_launch_ids_need(write_conf, tmp_path):
    conf = write_conf(FOUR_HOURLY, factory_extra="statedir = state\n")
    clock = VirtualClock(1_700_000_000.0)
    pool = Pool(clock)

    def make_services(cfg):
        return Services(cfg.factory_id, clock, pool, log_dir=str(tmp_path / "logs"))

    d = daemon_mod.Daemon(conf, configmod.load(conf), make_services)
    ledger, path = d.ledger, daemon_mod.ledger_path(d.cfg)
    (tmp_path / "queues.conf").write_text(FOUR_HOURLY.replace("[B]", "[C]"))  # B goes
    for day in range(90):
        if day == 1:
            d.reload()
        for _ in range(6):
            d.factory.cycle()
            clock.advance_to(d.factory.next_wake())
        pool.schedd().jobs.clear()  # the pilots ran
        if day == 59:
            size = os.path.getsize(path)
    count = {t: ledger.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("decisions", "actions")}
    month = KEEP_SECONDS / 14400 + 2  # cycles in a month
    assert count["decisions"] <= 2 * month + 1 and count["actions"] <= month  # not 90 days of them
    assert set(ledger.last_decisions()) == {"A", "B", "C"}  # B's last decision, 89 days old, stays
    assert os.path.getsize(path) <= 1.1 * size  # the freed pages are used again
    # every launch id is new, also once all but the newest action are gone
    ledger.prune(clock.now() + KEEP_SECONDS + 7200)
    assert ledger.db.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == 1
    newest = ledger.actions(limit=1)[0]["launch_id"]
    assert ledger.intent(clock.now(), "A", "condorlocal", "submit", 1) != newest
    ledger.close()
