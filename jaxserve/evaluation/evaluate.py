"""Evaluate routers as records: a checkpoint against the baselines, or trained members.

Both run one vmapped sweep over (policy, Poisson rate, seed) with common random numbers:
every policy sees the same arrivals for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jaxserve.evaluation.records import Records
from jaxserve.evaluation.sweep import (
    SweepConfig,
    build_policies,
    resolve_scenario,
    run_sweep_grid,
    sweep_records,
)
from jaxserve.evaluation.train import TrainResult
from jaxserve.rl.config import HPARAM_NAMES
from jaxserve.sim.scenarios import Scenario

ROUTER = "router"


def evaluate_checkpoint(
    path: str | Path,
    scenario: str | Scenario | None = None,
    rates: Sequence[float] | None = None,
    num_requests: int = 4000,
    seeds: int = 4,
    baselines: bool = True,
) -> Records:
    """A router checkpoint (its best member) and every baseline on a Poisson rate grid.

    One row per policy, rate and seed, with the fluid bound at that rate. `scenario`: the
    checkpoint's own by default; `rates`: 1/30 .. 3x the best model's capacity, 10 points.
    """
    from jaxserve.policies.baselines import baseline_names
    from jaxserve.rl.envs import poisson_rates
    from jaxserve.rl.policy import load_checkpoint_scenario, load_learned_policy
    from jaxserve.sim.sweep import fluid_curve

    scenario = load_checkpoint_scenario(path) if scenario is None else resolve_scenario(scenario)
    rates = [float(r) for r in (poisson_rates(scenario) if rates is None else rates)]
    others = baseline_names(scenario.model_names) if baselines else []
    config = SweepConfig(scenario, [ROUTER, *others], rates, None, (1.0,), num_requests, seeds)
    router = load_learned_policy(path, scenario)
    result, _ = run_sweep_grid(config, [router, *build_policies(others, scenario)])
    bound = dict(zip(rates, fluid_curve(scenario, rates), strict=True))
    return Records(
        {"checkpoint": str(path), **row, "fluid_upper_bound_normalized": bound[row["rate"]]}
        for row in sweep_records(result, scenario)
    )


def evaluate_members(
    result: TrainResult,
    rates: Sequence[float] | None = None,
    num_requests: int = 2000,
    seeds: int = 2,
) -> Records:
    """Every trained member on held-out Poisson episodes (the sweep's keys, not the learners').

    One row per member, rate and seed, with the member's hyperparameters.
    """
    from jaxserve.rl.envs import poisson_rates

    scenario = result.scenario
    rates = [float(r) for r in (poisson_rates(scenario) if rates is None else rates)]
    members = list(result.trained_members)
    names = [f"member:{m}" for m in members]
    config = SweepConfig(scenario, names, rates, None, (1.0,), num_requests, seeds)
    sweep, _ = run_sweep_grid(config, [result.policy(m) for m in members])
    table = {row["member"]: row for row in result.members}
    hp_columns = ("member", "point", "replicate", *HPARAM_NAMES)
    rows = []
    for row in sweep_records(sweep, scenario):
        member = members[names.index(row["policy"])]
        rows.append({k: table[member][k] for k in hp_columns} | row)
    return Records(rows)
