"""Small simulator configs in tmp_path: one EC2 queue (the emulated cloud) or one
HTCondor pilot queue (the emulated pilot site).

Both use the plainest policy for their kind (VMDemand, Ready), whose decisions
follow from the state alone, so the engine tests can predict every launch.
"""
import pytest

from provisioner import config as configmod
from provisioner.simulate import backends, scenario
from provisioner.simulate.engine import Simulation

CLOUD = """\
[CLOUD]
wmsqueue = CLOUD
wmsstatusplugin = Condor
batchstatusplugin = Cloud
schedplugin = VMDemand
batchsubmitplugin = EC2
batchsubmit.ec2.region = us-east-1
batchsubmit.ec2.ami_id = ami-0123456789abcdef0
batchsubmit.ec2.instance_types = c5.2xlarge
batchsubmit.ec2.collector = cm.example.org
batchsubmit.ec2.wrapper_url = https://example.org/wrapper.sh
batchsubmit.ec2.idle_shutdown = 1200
executable.arguments = --wrappergrid=cloud --wrapperqueue=CLOUD \
--wrappertarballurl=https://example.org/pilot.tar.gz \
--wrappertarballchecksum=0000000000000000000000000000000000000000000000000000000000000000
"""

PILOT = """\
[PILOT]
wmsqueue = PILOT
batchsubmitplugin = CondorLocal
schedplugin = Ready
"""
QUEUES = {"cloud": CLOUD, "pilot": PILOT}


@pytest.fixture
def sim_conf(tmp_path):
    """sim_conf(queues="cloud", sleep=60, **simulate) -> path of a factory.conf whose [Simulate]
    section holds ``simulate`` (seed 1 and boot_time 180 unless given); ``queues`` is "cloud",
    "pilot" or the text of a queues.conf."""

    def write(queues="cloud", sleep=60, **simulate):
        options = {"seed": 1, "boot_time": 180, **simulate}
        text = QUEUES.get(queues, queues)
        every = f"[DEFAULT]\napfqueue.sleep = {sleep}\n"
        text = text.replace("[DEFAULT]\n", every, 1) if "[DEFAULT]" in text else every + text
        (tmp_path / "queues.conf").write_text(text)
        fac = tmp_path / "factory.conf"
        fac.write_text(f"[Factory]\nfactoryId = sim\nqueueConf = queues.conf\n"
                       f"baseLogDir = {tmp_path / 'logs'}\nstatedir = {tmp_path / 'state'}\n\n[Simulate]\n"
                       + "".join(f"{k} = {v}\n" for k, v in options.items()))
        return str(fac)

    return write


@pytest.fixture
def simulate():
    """simulate(conf, jobs, backend=None) -> the finished Simulation (its back end chosen as replay does)."""

    def run(conf, jobs, backend=None):
        cfg = configmod.load(conf)
        return Simulation(cfg, jobs, scenario.load(conf), backend or backends.for_config(cfg)).run()

    return run


@pytest.fixture
def queue_texts():
    """The queues.conf texts sim_conf knows by name, to combine."""
    return dict(QUEUES)
