"""Real `provisioner run` processes against moto over HTTP, SIGKILLed at chosen points
(tests/cloud/crashfactory.py), restarted on a pool that outlived them."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest

from provisioner.batchstatus.cloud import SETTLE

from .conftest import ec2_queue, instances

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crashfactory.py")
RETIRE = "batchsubmit.ec2.max_draining_percent = 100\n"


class World:
    def __init__(self, tmp_path, conf, ec2):
        self.path, self.conf, self.ec2 = str(tmp_path / "world.json"), conf, ec2
        self.ledger = str(tmp_path / "state" / "ledger.sqlite")
        self.save({"jobs": [{"count": 20, "attrs": {"RequestCpus": 1}}], "machines": {}})

    def load(self):
        with open(self.path) as fh:
            return json.load(fh)

    def save(self, world):
        with open(self.path, "w") as fh:
            json.dump(world, fh)

    def run(self, crash=None, shift=0):
        env = {k: v for k, v in os.environ.items() if k != "PROVISIONER_CRASH_AT"}
        env["PROVISIONER_CLOCK_SHIFT"] = str(shift)
        if crash:
            env["PROVISIONER_CRASH_AT"] = crash
        p = subprocess.run([sys.executable, HARNESS, self.path, "run", "--once", "--conf", self.conf], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == (-9 if crash else 0), p.stderr
        return p

    def start(self, crash):
        """`provisioner run` as a daemon, to be killed at ``crash``; its log is read as it comes."""
        env = {**os.environ, "PROVISIONER_CRASH_AT": crash, "PROVISIONER_CLOCK_SHIFT": "0"}
        p = subprocess.Popen([sys.executable, HARNESS, self.path, "run", "--conf", self.conf], env=env,
                             stderr=subprocess.PIPE, text=True)
        timer = threading.Timer(120, p.kill)  # a daemon that never reaches its cue fails the test, not hangs it
        timer.daemon = True
        timer.start()
        return p

    def join(self, busy=0):
        """Every live VM's startd joins the pool; the first ``busy`` run a job."""
        world = self.load()
        for n, i in enumerate(instances(self.ec2)):
            tagset = {t["Key"]: t["Value"] for t in i["Tags"]}
            world["machines"][i["InstanceId"]] = {"tags": tagset, "busy": n < busy}
        self.save(world)
        return [iid for iid, m in world["machines"].items() if m["busy"]]

    def set(self, **changes):
        world = self.load()
        world.update(changes)
        self.save(world)

    def actions(self):
        db = sqlite3.connect(self.ledger)
        rows = db.execute("SELECT action, state, count, launch_id FROM actions ORDER BY id").fetchall()
        db.close()
        return rows

    def live(self):
        return {i["InstanceId"] for i in instances(self.ec2)}

    def check(self, busy=()):
        """Every live VM is this factory's and comes from a ledger launch; no busy VM ended;
        no launch started more VMs than it asked for; no intent left open."""
        live = instances(self.ec2)
        asked = {lid: count for action, _, count, lid in self.actions() if action == "submit"}
        per_launch = {}
        for i in live:
            tagset = {t["Key"]: t["Value"] for t in i["Tags"]}
            assert tagset["provisioner:factory"] == "test-factory" and tagset["provisioner:launch"] in asked
            per_launch[tagset["provisioner:launch"]] = per_launch.get(tagset["provisioner:launch"], 0) + 1
        assert all(n <= asked[lid] for lid, n in per_launch.items())
        assert set(busy) <= {i["InstanceId"] for i in live}
        assert all(state != "intent" for _, state, _, _ in self.actions())


@pytest.fixture
def world(write_conf, moto, ec2, tmp_path):
    def build(extra="", sched=None):
        text = ec2_queue(endpoint=moto, types="m5.2xlarge", extra=extra)
        if sched:
            text = text.replace("schedplugin = VMDemand, MaxPerCycle", f"schedplugin = {sched}")
        return World(tmp_path, write_conf(text, "statedir = state\n"), ec2)

    return build


def test_killed_before_the_launch_call_the_restart_launches_each_vm_once(world):
    w = world()
    w.run("launch.before")  # the intent is written; the crash after the call is test_restart's
    w.run()  # its VMs may yet be listed: held back, not launched twice
    assert w.live() == set()
    w.run(shift=SETTLE)
    w.run(shift=SETTLE)
    assert len(w.live()) == 3  # 20 one-core jobs on 8-core VMs
    w.check()


def test_killed_between_the_chunks_of_a_launch_the_restart_launches_only_the_rest(world):
    w = world("batchsubmit.ec2.max_per_call = 1\n")
    w.run("launch.after@2")  # two of the three VMs started, one call each, none in the ledger
    assert len(w.live()) == 2
    w.run()
    w.run()
    assert len(w.live()) == 3
    w.check()


# (the cycle killed, where): the retire drains the two idle VMs (drain.after: between them),
# tags them draining and records it; the next cycle's upkeep terminates them
@pytest.mark.parametrize("crash", [(0, "drain.after"), (0, "drain.after@2"), (0, "tag.after"),
                                   (0, "complete.before"), (1, "terminate.before"), (1, "terminate.after")])
def test_killed_while_retiring_the_restart_finishes_and_spares_the_busy_vm(world, crash):
    cycle, point = crash
    w = world(RETIRE)
    w.run()
    busy = w.join(busy=1)
    w.set(jobs=[])
    for _ in range(cycle):
        w.run()
    w.run(point)
    w.run()
    w.run()
    assert w.live() == set(busy)
    w.check(busy)


def test_killed_while_cancelling_booting_vms_the_restart_cancels_them(world):
    w = world(sched="Elastic, MaxPerCycle")
    w.run()
    w.set(jobs=[])
    w.run("terminate.before")
    w.run()
    assert w.live() == set()
    w.check()


def test_a_restart_while_the_collector_has_lost_the_startds_terminates_no_joined_vm(world):
    """The factory's host reboots with the collector: the startds advertise again only
    minutes later. VMs that had joined are lost, not boot failures terminated at once."""
    w = world()
    w.run()
    busy = w.join(busy=1)
    joined = w.live()
    w.run()  # sees them join
    w.set(machines={})
    w.run(shift=700)  # past boot_timeout (600 s) since their launch
    assert joined <= w.live()  # (the VM the second cycle added never joined: a boot failure)
    w.check(busy)


def test_a_corrupt_ledger_is_one_line_not_a_launch(write_conf, moto, ec2, tmp_path):
    conf = write_conf(ec2_queue(endpoint=moto), "statedir = state\n")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "ledger.sqlite").write_bytes(b"not a database " * 100)
    p = subprocess.run([sys.executable, "-m", "provisioner", "run", "--emulate", "--once", "--conf", conf],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert p.stderr.startswith("error: ledger ") and "file is not a database; move it aside" in p.stderr
    assert instances(ec2) == []


def test_a_removed_queues_busy_vm_whose_startd_is_missing_after_the_restart_is_not_terminated(world, moto):
    w = world(ec2_queue("OLD", endpoint=moto, types="m5.2xlarge"))
    queues = w.conf.replace("factory.conf", "queues.conf")
    w.run()
    busy = w.join(busy=6)  # every VM of both queues runs a job
    w.set(jobs=[])
    w.run()  # sees them join
    old = {i["InstanceId"] for i in instances(w.ec2, **{"provisioner:queue": "OLD"})}
    machines = w.load()["machines"]
    with open(queues) as fh:
        kept = fh.read().split("\n[OLD]")[0]
    with open(queues, "w") as fh:
        fh.write(kept)
    w.set(machines={})  # restarted with OLD removed while the collector has lost the startds
    w.run()
    assert set(busy) <= w.live()
    w.set(machines=machines)  # they advertise again: OLD's are drained gracefully ...
    w.run()
    assert set(busy) <= w.live() and all(w.load()["machines"][iid].get("draining") for iid in old)
    w.set(machines={iid: {**m, "busy": False} for iid, m in w.load()["machines"].items()})
    w.run()  # ... and terminated once their jobs end
    assert not old & w.live()
    w.check()


def test_killed_between_the_servers_of_an_openstack_launch_the_restart_launches_only_the_rest(write_conf, nova,
                                                                                               tmp_path):
    """Nova takes no client token and makes one server a request: those made before the kill
    carry the launch tag and are counted by the restart."""
    from .test_libcloud_openstack import openstack_queue

    w = World(tmp_path, write_conf(openstack_queue(nova), "statedir = state\n"), None)
    w.run("create_node.after")
    assert len(nova.servers) == 1
    w.run()
    w.run()
    assert len(nova.servers) == 3  # 20 one-core jobs on 8-core VMs
    asked = {lid for action, _, _, lid in w.actions() if action == "submit"}
    assert {s["metadata"]["provisioner:launch"] for s in nova.servers.values()} <= asked
    assert all(state != "intent" for _, state, _, _ in w.actions())


def _logged(p, text):
    for line in p.stderr:  # ends with the process
        if text in line:
            return
    raise AssertionError(f"{text!r} never logged")


@pytest.mark.parametrize("point", ["terminate.after", "drain.after"])
def test_killed_while_a_queue_removed_by_a_reload_winds_down_the_restart_finishes_it(world, moto, point):
    """A reload removes the last queue of the account while its VMs are busy, idle and booting:
    it cancels the booting one, drains the others; killed anywhere there, the restart (the queue
    still removed) goes on, and the busy VM is terminated only once its job has ended."""
    local = "\n[LOCAL]\nbatchsubmitplugin = CondorLocal\nwmsqueue = LOCAL\nwmsstatus.condor.queueattribute = TargetQueue\n"
    w = world(local)
    queues = w.conf.replace("factory.conf", "queues.conf")
    w.run()
    busy, idle, booting = sorted(w.live())
    tagset = {t["Key"]: t["Value"] for t in instances(w.ec2)[0]["Tags"]}
    w.set(machines={busy: {"tags": tagset, "busy": True}, idle: {"tags": tagset}})
    p = w.start(point)
    _logged(p, "queue=CLOUD ")  # its first cycle: nothing to do
    with open(queues) as fh:
        kept = fh.read().split("\n[CLOUD]")[0] + local
    with open(queues, "w") as fh:
        fh.write(kept)
    p.send_signal(signal.SIGHUP)
    _logged(p, "queue=CLOUD removed from the configuration, but no queue left reads its cloud account")
    assert p.wait(60) == -9
    w.run()
    w.run()
    assert w.live() == {busy} and w.load()["machines"][busy].get("draining")
    w.set(machines={iid: {**m, "busy": False} for iid, m in w.load()["machines"].items()})
    w.run()  # its job ended: terminated
    assert w.live() == set()
    assert "queue=CLOUD wound down" in w.run().stderr  # none left: the removed queue goes
    db = sqlite3.connect(w.ledger)
    assert db.execute("SELECT key FROM state WHERE key LIKE 'winddown/%'").fetchall() == []
    db.close()
    w.check()


@pytest.mark.parametrize("restart_first", [False, True])
def test_killed_while_the_cloud_carries_out_its_launch_the_restart_adopts_what_it_started(write_conf, proxy, ec2,
                                                                                           tmp_path, restart_first):
    """The RunInstances has reached the cloud, which answers only after the factory was killed;
    restart_first: a fast restart (systemd's) reads the listing before the cloud has carried it out."""
    w = World(tmp_path, write_conf(ec2_queue(endpoint=proxy.url), "statedir = state\n"), ec2)
    held = proxy.hold("RunInstances")
    p = subprocess.Popen([sys.executable, HARNESS, w.path, "run", "--once", "--conf", w.conf],
                         stderr=subprocess.DEVNULL)
    try:
        assert held["arrived"].wait(60)
    finally:
        p.kill()
    assert p.wait(60) == -9
    if restart_first:
        assert "was interrupted by a stop and lists no VM yet" in w.run().stderr
        assert w.live() == set() and [a[:2] for a in w.actions()] == [("submit", "interrupted")]
    held["release"].set()
    assert held["done"].wait(60)
    assert len(w.live()) == 3
    w.run()
    assert len(w.live()) == 3 and proxy.calls["RunInstances"] == 1
    w.check()
