"""One replay: a config (optionally rewritten to a named policy), a trace, a result."""
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


def prepare(conf_path: str, jobs, policy: Optional[str] = None, seed: Optional[int] = None,
            on_cycle: Optional[Callable] = None, on_progress: Optional[Callable] = None,
            until: Optional[float] = None) -> Simulation:
    """The replay set up, not yet run: every configuration or trace error is raised here."""
    sc = scenario.load(conf_path)
    if seed is not None:
        sc.seed = seed
    cfg = configmod.load(conf_path)
    if policy:
        cfg = policies.apply(cfg, policy, sc.boot_time)
    return Simulation(cfg, jobs, sc, backends.for_config(cfg), on_cycle=on_cycle, on_progress=on_progress,
                      until=until)


def result(sim: Simulation, policy: Optional[str] = None) -> Result:
    """What a finished replay measured."""
    return Result(policy or "as configured", sim, metrics.summarise(sim))


def replay(conf_path: str, jobs, policy: Optional[str] = None, seed: Optional[int] = None,
           on_cycle: Optional[Callable] = None, on_progress: Optional[Callable] = None,
           until: Optional[float] = None) -> Result:
    return result(prepare(conf_path, jobs, policy, seed, on_cycle, on_progress, until).run(), policy)
