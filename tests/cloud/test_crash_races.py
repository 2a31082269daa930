"""Crash and race points of the VM lifecycle against moto over HTTP, synchronised on what the
test observes (a back-off the fault proxy caused, a call it holds), never on fixed sleeps."""
from provisioner.cloud.emulator import negotiate
from provisioner.condor.emulator import RUNNING

from .conftest import CloudWorld, ec2_queue, instances, join_all


def test_an_orphan_that_joins_and_takes_a_job_while_its_terminate_backs_off_is_kept(write_conf, tmp_path, proxy,
                                                                                      ec2):
    """A removed queue's booting VM is cancelled at once; the TerminateInstances is throttled,
    and during the back-off the VM joins and a job starts on it: it must not be terminated."""
    kept = ec2_queue("KEPT", endpoint=proxy.url, extra="wmsqueue = KEPT\nwmsstatus.condor.queueattribute = TargetQueue\n")
    conf = write_conf(ec2_queue("OLD", endpoint=proxy.url) + kept)
    joined = []

    def sleep(seconds):  # the back-off: the VM boots meanwhile and a job lands on it
        world.clock.advance_to(world.clock.now() + seconds)
        if not joined:
            join_all(world.pool, ec2, now=world.clock.now())
            joined.extend(world.pool.schedd().add_jobs(1, RequestCpus=1, RequestMemory=1024))
            assert negotiate(world.pool) == 1

    world = CloudWorld(conf, tmp_path, {"sleep": sleep})
    world.pool.schedd().add_jobs(8, RequestCpus=1, RequestMemory=2048)  # OLD's work only
    assert world.cycle()["OLD"].count == 1
    world.pool.schedd().jobs.clear()
    write_conf(kept)  # OLD removed while the factory was stopped
    world = world.restart()
    proxy.fail("TerminateInstances", "RequestLimitExceeded", 503)
    world.cycle()
    assert joined and world.pool.schedd().jobs[joined[0]]["JobStatus"] == RUNNING
    assert len(instances(ec2)) == 1  # the busy VM runs on
