"""One replay: a config (optionally rewritten to a named policy), a trace, a result."""
import tempfile
from dataclasses import dataclass
from typing import Callable, List, Optional

from provisioner import config as configmod
from provisioner.simulate import backends, metrics, policies, scenario
from provisioner.simulate.engine import Simulation


@dataclass
class Result:
    label: str
    sim: Simulation
    summaries: List[metrics.Summary]

    @property
    def overall(self) -> metrics.Summary:
        return self.summaries[-1]


def replay(conf_path: str, jobs, policy: Optional[str] = None, seed: Optional[int] = None,
           on_cycle: Optional[Callable] = None, on_progress: Optional[Callable] = None,
           until: Optional[float] = None) -> Result:
    sc = scenario.load(conf_path)
    if seed is not None:
        sc.seed = seed
    with tempfile.TemporaryDirectory(prefix="provisioner-policy-") as workdir:
        path = policies.apply(conf_path, policy, sc.boot_time, workdir) if policy else conf_path
        cfg = configmod.load(path)
    sim = Simulation(cfg, jobs, sc, backends.for_config(cfg), on_cycle=on_cycle, on_progress=on_progress,
                     until=until).run()
    return Result(policy or "as configured", sim, metrics.summarise(sim))
