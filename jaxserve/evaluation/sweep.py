"""Sweeps as records: a `SweepConfig` in, one row per (policy, rate, mix, deadline, seed) out.

The grid runs as ONE jitted, vmapped call (`jaxserve.evaluation.grid.run_sweep`); this module only
resolves the config and lays the result out in long format.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from jaxserve.evaluation.grid import CHUNK_LANES
from jaxserve.evaluation.records import Records, flatten_row
from jaxserve.progress import no_progress
from jaxserve.sim.scenarios import Scenario, get_scenario
from jaxserve.sim.workloads import WorkloadSpec

# Keys of a `run_sweep` result that describe the grid rather than hold a metric.
GRID_KEYS = ("policies", "rates", "mixes", "deadline_scales", "seeds", "num_requests", "wall_s")


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A policy x rate x task-mix x deadline-scale x seed grid on one scenario.

    `policies`: baseline names (`greedy`, `static:2`, ...) or router checkpoint directories;
    None = every baseline. `rates`: arrivals/s; None = 1/30 .. 3x the scenario's on-time
    capacity, 16 points. `mixes`: task-mix probabilities; None = the scenario's own (or
    the workload's mix schedule). `workload`: a `WorkloadSpec` or a CLI string such as
    `unpredictable` or `trace:name=azure_llm_2023_code`; None = Poisson. For every kind a
    grid rate is the workload's long-run mean rate (others keep their shape over time).
    """

    scenario: str | Scenario = "opt-a100x4"
    policies: Sequence[str] | None = None
    rates: Sequence[float] | None = None
    mixes: Sequence[Sequence[float]] | None = None
    deadline_scales: Sequence[float] = (1.0,)
    num_requests: int = 4000
    seeds: int = 4
    workload: str | WorkloadSpec | None = None
    chunk_lanes: int = CHUNK_LANES  # runs per compiled call (memory and progress granularity)

    @property
    def num_runs(self) -> int:
        """Grid points x seeds (policies and rates must be given)."""
        mixes = len(self.mixes) if self.mixes else 1
        return len(self.policies) * len(self.rates) * mixes * len(self.deadline_scales) * self.seeds


def resolve_workload(workload: str | WorkloadSpec | None, scenario: Scenario) -> WorkloadSpec:
    """A WorkloadSpec from a spec, a CLI string (on the scenario's workload) or None (Poisson)."""
    from jaxserve.sim.parse import parse_workload

    if workload is None:
        return WorkloadSpec(kind="poisson")
    return (
        workload
        if isinstance(workload, WorkloadSpec)
        else parse_workload(workload, scenario.workload)
    )


def resolve_scenario(scenario: str | Scenario) -> Scenario:
    """A Scenario, by value or by name/path (`get_scenario`)."""
    return scenario if isinstance(scenario, Scenario) else get_scenario(scenario)


def run_sweep_grid(
    config: SweepConfig, policies: list | None = None, on_chunk: Callable[[int], None] = no_progress
) -> tuple[dict, Scenario]:
    """The raw per-seed `jaxserve.evaluation.grid.run_sweep` result of a config; its scenario.

    `policies`: already built policy functions, one per name in `config.policies`.
    """
    from jaxserve.evaluation import grid as sim_sweep
    from jaxserve.policies.baselines import baseline_names

    scenario = resolve_scenario(config.scenario)
    names = list(config.policies or baseline_names(scenario.model_names))
    if policies is None:
        policies = build_policies(names, scenario)
    rates = sim_sweep.default_rates(scenario) if config.rates is None else config.rates
    result = sim_sweep.run_sweep(
        scenario,
        names,
        np.asarray(rates, np.float64),
        config.mixes,
        tuple(config.deadline_scales),
        config.num_requests,
        config.seeds,
        policies,
        per_seed=True,
        workload=resolve_workload(config.workload, scenario),
        chunk_lanes=config.chunk_lanes,
        on_chunk=on_chunk,
    )
    result["scenario"] = scenario.name
    return result, scenario


def sweep(config: SweepConfig) -> Records:
    """Run the grid in one call; one row per grid point and seed (every axis, every metric)."""
    result, scenario = run_sweep_grid(config)
    return sweep_records(result, scenario)


def sweep_records(result: dict, scenario: Scenario) -> Records:
    """Long format of a per-seed `run_sweep` result: axis columns, then metric columns.

    Vector metrics get one column per entry: `routing_fraction_<model>` (and `_reject` where
    the scenario lets the router reject).
    """
    metrics = {k: np.asarray(v) for k, v in result.items() if k not in GRID_KEYS and _is_grid(v)}
    actions = [*scenario.model_names, "reject"][: scenario.sim_config().num_actions]
    labels = {"routing_fraction": actions}
    rows = []
    index = itertools.product(
        enumerate(result["policies"]),
        enumerate(result["rates"]),
        enumerate(result["mixes"]),
        enumerate(result["deadline_scales"]),
        range(result["seeds"]),
    )
    for (p, policy), (r, rate), (m, mix), (d, scale), seed in index:
        row = {
            "scenario": scenario.name,
            "policy": policy,
            "rate": float(rate),
            **{f"mix_{t}": float(x) for t, x in zip(scenario.task_names, mix, strict=True)},
            "deadline_scale": float(scale),
            "seed": seed,
            "num_requests": result["num_requests"],
        }
        row.update({k: v[p, r, m, d, seed] for k, v in metrics.items()})
        rows.append(flatten_row(row, labels))
    return Records(rows)


def seed_means(result: dict) -> dict:
    """A per-seed `run_sweep` result with every metric averaged over seeds (its JSON form)."""
    return {
        k: np.asarray(v).mean(axis=4).tolist() if k not in GRID_KEYS and _is_grid(v) else v
        for k, v in result.items()
    }


def _is_grid(value) -> bool:
    return isinstance(value, np.ndarray | list) and np.ndim(value) >= 5


def build_policies(names: list[str], scenario: Scenario) -> list:
    """Policy functions for baseline names or router checkpoint directories."""
    from jaxserve.evaluation.simulate import resolve_policy
    from jaxserve.sim.counter_env import make_env

    env = make_env(dataclasses.replace(scenario.sim_config(), emit_records=False))
    return [resolve_policy(n, env, scenario) for n in names]
