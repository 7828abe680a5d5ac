"""Sweeps as records: a `SweepConfig` in, one row per (policy, rate, mix, deadline, seed) out.

The grid runs as ONE jitted, vmapped call (`jaxserve.evaluation.grid.run_sweep`); this module only
resolves the config and lays the result out in long format.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from jaxserve.errors import InputError
from jaxserve.evaluation.grid import CHUNK_LANES
from jaxserve.evaluation.records import Records, flatten_row
from jaxserve.progress import no_progress
from jaxserve.sim.scenarios import Scenario, get_scenario
from jaxserve.sim.workloads import WorkloadSpec

# Keys of a `run_sweep` result that describe the grid rather than hold a metric.
GRID_KEYS = (
    "policies",
    "rates",
    "mixes",
    "deadline_scales",
    "miss_penalties",
    "seeds",
    "num_requests",
    "wall_s",
)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A policy x rate x task-mix x deadline-scale x seed grid on one scenario.

    `policies`: baseline names (`greedy`, `static:2`, ...) or router checkpoint directories;
    None = every baseline. `rates`: arrivals/s; None = 1/30 .. 3x the scenario's on-time
    capacity, 16 points. `mixes`: task-mix probabilities; None = the scenario's own (or
    the workload's mix schedule). `workload`: a `WorkloadSpec` or a CLI string such as
    `unpredictable` or `trace:name=azure_llm_2023_code`; None = Poisson. For every kind a
    grid rate is the workload's long-run mean rate (others keep their shape over time).
    `miss_penalties`: an extra axis (a knob router's knob, and the `reward` metric's
    penalty; docs/knob.md); None = the scenario's.
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
    miss_penalties: Sequence[float] | None = None
    availability_target: float | None = None  # steers knob routers (docs/knob.md)

    @property
    def num_runs(self) -> int:
        """Grid points x seeds (policies and rates must be given)."""
        mixes = len(self.mixes) if self.mixes else 1
        knobs = len(self.miss_penalties) if self.miss_penalties else 1
        points = len(self.policies) * len(self.rates) * mixes * len(self.deadline_scales)
        return points * knobs * self.seeds


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
        policies = build_policies(
            names, scenario, config.availability_target, config.miss_penalties
        )
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
        miss_penalties=config.miss_penalties,
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
    knobs = result.get("miss_penalties")
    if knobs is None:  # no knob axis: one column of the scenario's penalty, same layout
        metrics = {k: v[:, :, :, :, None] for k, v in metrics.items()}
    rows = []
    index = itertools.product(
        enumerate(result["policies"]),
        enumerate(result["rates"]),
        enumerate(result["mixes"]),
        enumerate(result["deadline_scales"]),
        enumerate(knobs or [scenario.miss_penalty]),
        range(result["seeds"]),
    )
    for (p, policy), (r, rate), (m, mix), (d, scale), (n, knob), seed in index:
        row = {
            "scenario": scenario.name,
            "policy": policy,
            "rate": float(rate),
            **{f"mix_{t}": float(x) for t, x in zip(scenario.task_names, mix, strict=True)},
            "deadline_scale": float(scale),
            "miss_penalty": float(knob),
            "seed": seed,
            "num_requests": result["num_requests"],
        }
        row.update({k: v[p, r, m, d, n, seed] for k, v in metrics.items()})
        rows.append(flatten_row(row, labels))
    return Records(rows)


def seed_means(result: dict) -> dict:
    """A per-seed `run_sweep` result with every metric averaged over seeds (its JSON form)."""
    seed_axis = 5 if "miss_penalties" in result else 4
    return {
        k: np.asarray(v).mean(axis=seed_axis).tolist() if k not in GRID_KEYS and _is_grid(v) else v
        for k, v in result.items()
    }


def knob_slices(result: dict) -> list[tuple[float, dict]]:
    """(penalty, the seed-mean result at that penalty) for each entry of the knob axis."""
    if "miss_penalties" not in result:
        return [(None, result)]
    out = []
    for n, knob in enumerate(result["miss_penalties"]):
        part = {k: v for k, v in result.items() if k != "miss_penalties"}
        for k, v in result.items():
            if k not in GRID_KEYS and _is_grid(v):
                part[k] = np.asarray(v)[:, :, :, :, n].tolist()
        out.append((knob, {**part, "miss_penalty": knob}))
    return out


def _is_grid(value) -> bool:
    return isinstance(value, np.ndarray | list) and np.ndim(value) >= 5


def build_policies(
    names: list[str],
    scenario: Scenario,
    availability_target: float | None = None,
    miss_penalties=None,
) -> list:
    """Policy functions for baseline names or router checkpoint directories.

    `availability_target` steers every knob router among them (docs/knob.md);
    `miss_penalties` (a sweep's knob axis) must lie in every knob router's trained range.
    """
    from pathlib import Path

    from jaxserve.evaluation.simulate import resolve_policy
    from jaxserve.rl.policy import check_router_knobs
    from jaxserve.sim.counter_env import make_env

    routers = {n for n in names if Path(n).is_dir()}
    if availability_target is not None and not routers:
        raise InputError(
            "--availability-target: no router checkpoint among the policies; the target "
            "steers a knob router (a checkpoint trained with --knob-range)"
        )
    for name in routers if miss_penalties is not None else ():
        check_router_knobs(name, miss_penalties, "--miss-penalties value")
    env = make_env(dataclasses.replace(scenario.sim_config(), emit_records=False))
    target = lambda n: availability_target if n in routers else None
    return [resolve_policy(n, env, scenario, None, target(n)) for n in names]
