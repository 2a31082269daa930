"""The product's HTCondor calls against the real htcondor2 bindings, not the emulator.

No HTCondor daemon can run here, so every daemon is located at a port where nothing
listens: each call must get as far as the connection, failing with HTCondor's own error,
never with a wrong argument or name (which the emulator, taking the same calls, would
not notice).
"""
import classad2
import htcondor2
import pytest

from provisioner import config as configmod
from provisioner.clock import VirtualClock
from provisioner.cloud import lifecycle
from provisioner.condor.adapter import HTCondor
from provisioner.errors import TargetError
from provisioner.factory import Factory
from provisioner.ledger import Ledger
from provisioner.sched.base import Context
from provisioner.services import Services
from provisioner.status import Pilots, Work

NOWHERE = "<127.0.0.1:9>"  # the discard port: refused at once

QUEUE = """
[REMOTE]
wmsqueue = R
wmsstatus.condor.queueattribute = TargetQueue
wmsstatus.condor.scheddhost = schedd.example.org
batchstatus.condor.scheddhost = schedd.example.org
batchsubmitplugin = CondorLocal
executable = /bin/true
"""


@pytest.fixture
def factory(write_conf, monkeypatch, tmp_path):
    # Located by name through a collector, as a remote schedd or a VM's startd is: found nowhere.
    def locate(self, daemon_type, name=None):
        return classad2.ClassAd({"MyAddress": NOWHERE, "Name": name or "local", "MyType": daemon_type.name,
                                 "CondorVersion": htcondor2.version()})

    monkeypatch.setattr(htcondor2.Collector, "locate", locate)
    cfg = configmod.load(write_conf(QUEUE))
    services = Services(cfg.factory_id, VirtualClock(1_700_000_000.0), HTCondor(), log_dir=str(tmp_path / "logs"))
    return Factory(cfg, services, Ledger(None, cfg.factory_id))


def ctx(factory, records=()):
    return Context("REMOTE", factory.services.clock.now(), Work(idle=1), Pilots(pending=len(records),
                                                                               records=list(records)))


def test_the_status_queries_reach_the_schedd(factory):
    (d,) = factory.cycle()
    assert d.action == "skip" and "Failed to fetch ads from schedd" in d.note, d.note


def test_submit_reaches_the_schedd(factory):
    with pytest.raises(TargetError, match="^submit to schedd failed: Failed to connect to schedd"):
        factory.queues[0].target.submit(2, ctx(factory), "launch-1")


def test_retire_reaches_the_schedd(factory):
    idle = classad2.ClassAd({"ClusterId": 7, "ProcId": 0, "JobStatus": 1, "QDate": 1})
    with pytest.raises(TargetError, match="^remove failed: Error when performing action on the schedd"):
        factory.queues[0].target.retire(1, ctx(factory, [idle]))


def test_the_startd_query_reaches_the_collector(factory):
    with pytest.raises(htcondor2.HTCondorException, match="Failed communication with collector"):
        lifecycle.startds(factory.services, "127.0.0.1:9", ["Name", "EC2InstanceId"])


def test_drain_reaches_the_startd(factory):
    with pytest.raises(htcondor2.HTCondorException, match="Startd failed to start draining jobs"):
        factory.services.condor.drain("slot1@vm.example.org", "127.0.0.1:9", reason="retired by provisioner",
                                      check_expr="true")


def test_max_jobs_per_submission_is_read_from_the_configuration(factory):
    assert factory.services.condor.max_jobs_per_submission() == int(htcondor2.param.get("MAX_JOBS_PER_SUBMISSION",
                                                                                       20000))
