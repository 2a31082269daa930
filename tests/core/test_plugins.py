"""Third-party plugins load through entry points, found by the real importlib.metadata."""
import sys

from provisioner import config as configmod
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
