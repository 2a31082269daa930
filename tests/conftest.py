"""Fixtures shared by every test folder: config files, an emulated pool, missing prerequisites."""
import os
import textwrap

import pytest

from provisioner import config as configmod
from provisioner.clock import VirtualClock
from provisioner.condor.emulator import Pool
from provisioner.factory import Factory
from provisioner.ledger import Ledger
from provisioner.services import Services


@pytest.fixture
def write_conf(tmp_path):
    """write_conf(queues_text, factory_extra="") -> path of a factory.conf naming queues.conf."""

    def write(queues: str, factory_extra: str = "", factory_id: str = "test-factory"):
        text = textwrap.dedent(queues)
        # 60 s cycles unless a queue sets its own (APF's default, 360, would make tests wait)
        if "[DEFAULT]" in text:
            text = text.replace("[DEFAULT]\n", "[DEFAULT]\napfqueue.sleep = 60\n", 1)
        else:
            text = "[DEFAULT]\napfqueue.sleep = 60\n" + text
        (tmp_path / "queues.conf").write_text(text)
        fac = tmp_path / "factory.conf"
        fac.write_text(f"[Factory]\nfactoryId = {factory_id}\nqueueConf = queues.conf\nbaseLogDir = logs\n"
                       + textwrap.dedent(factory_extra))
        return str(fac)

    return write


@pytest.fixture
def emulated(tmp_path):
    """emulated(conf_path) -> (factory, pool, clock, ledger) on an emulated pool in virtual time;
    ``pool=`` a pool (and its clock) of an earlier factory, as a restart finds it."""

    def build(conf_path, start=1_700_000_000.0, pool=None):
        cfg = configmod.load(conf_path)
        clock = pool.clock if pool else VirtualClock(start)
        pool = pool or Pool(clock)
        services = Services(cfg.factory_id, clock, pool, log_dir=str(tmp_path / "logs"), log_url=cfg.log_url)
        ledger = Ledger(None, cfg.factory_id)
        return Factory(cfg, services, ledger), pool, clock, ledger

    return build


@pytest.fixture(scope="session")
def missing():
    """missing(message): a program from Debian is absent. Skip here; fail under CI, which installs it."""

    def report(message):
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)

    return report
