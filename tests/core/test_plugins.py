"""Third-party plugins load through entry points, found by the real importlib.metadata."""
import logging
import sys

from provisioner import cli
from provisioner import config as configmod
from provisioner import daemon
from provisioner import plugins


def test_entry_point_sched_step_is_used_by_name(tmp_path, write_conf, emulated, monkeypatch):
    dist = tmp_path / "site" / "site_policy-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: site-policy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[provisioner.sched]\nHalf = site_policy:Half\n")
    (tmp_path / "site" / "site_policy.py").write_text(
        "from provisioner.options import Option\n"
        "from provisioner.sched.base import Step\n"
        "class Half(Step):\n"
        "    name = 'half'\n"
        "    options = {'floor': Option('int', 0)}\n"
        "    def __call__(self, n, ctx):\n"
        "        return max(self.opts['floor'], n // 2), 'halved'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert "half" in plugins.names("sched")
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready, Half\nsched.half.floor = 1\n"
                      "sched.half.flor = 2\n")
    errs = []
    try:
        configmod.load(conf)
    except Exception as exc:
        errs = str(exc).splitlines()
    assert errs and "sched.half.flor: not an option of half (did you mean 'sched.half.floor'?)" in errs[0]
    conf = write_conf("[Q]\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready, Half\n")
    factory, pool, *_ = emulated(conf)
    pool.schedd().add_jobs(9)
    (d,) = factory.cycle()
    assert [(s.step, s.n) for s in d.steps] == [("ready", 9), ("half", 4)] and d.count == 4
    sys.modules.pop("site_policy", None)


def test_an_entry_point_that_fails_to_import_is_one_line_and_a_refused_reload(tmp_path, write_conf, monkeypatch,
                                                                             capsys, caplog):
    dist = tmp_path / "site" / "site_policy-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: site-policy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[provisioner.sched]\nmystep = site_policy_gone.mod:Step\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    good = "[Q]\nbatchsubmitplugin = CondorLocal\n"
    conf = write_conf(good)
    d = daemon.Daemon(conf, configmod.load(conf), cli.service_maker(emulate=True))
    write_conf(good + "schedplugin = Ready, MyStep\n")
    why = ("[Q] schedplugin: sched plugin 'MyStep': entry point mystep = site_policy_gone.mod:Step of site-policy 1.0"
           " fails to load: ModuleNotFoundError: No module named 'site_policy_gone'")
    assert cli.main(["check-config", "--conf", conf]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {conf.replace('factory.conf', 'queues.conf')}: {why}"]
    with caplog.at_level(logging.ERROR, logger="provisioner"):
        d.reload()
    assert f"reload refused, keeping the running configuration: {tmp_path}/queues.conf: {why}" in caplog.text
    assert [name for name, _ in d.factory.queues[0].steps] == ["ready"]  # the running chain
    d.ledger.close()


def test_an_entry_point_naming_no_plugin_class_is_one_line(tmp_path, write_conf, monkeypatch, capsys):
    # a slip in entry_points.txt: the module, or a function, instead of the plugin class
    dist = tmp_path / "site" / "site_policy-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: site-policy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[provisioner.sched]\nhalf = site_policy_mod\n"
                                           "submitter = provisioner.batchsubmit.condorlocal:PLUGIN\n")
    (tmp_path / "site" / "site_policy_mod.py").write_text("def half(n, ctx):\n    return n // 2, 'halved'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    queues = str(tmp_path / "queues.conf")
    for step, what in (("Half", "half = site_policy_mod"),
                       ("Submitter", "submitter = provisioner.batchsubmit.condorlocal:PLUGIN")):
        conf = write_conf(f"[Q]\nbatchsubmitplugin = CondorLocal\nschedplugin = Ready, {step}\n")
        assert cli.main(["check-config", "--conf", conf]) == 2
        err = capsys.readouterr().err.splitlines()
        assert err == [f"error: {queues}: [Q] schedplugin: sched plugin {step!r}: entry point {what} of "
                       "site-policy 1.0 is not a sched plugin class"], err
    sys.modules.pop("site_policy_mod", None)
