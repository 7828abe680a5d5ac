"""Evaluate routers as records: a checkpoint against the baselines, or trained members.

Both run one vmapped sweep over (policy, Poisson rate, seed) with common random numbers:
every policy sees the same arrivals for a given seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    from jaxserve.evaluation.bounds import nominal_curve
    from jaxserve.policies.baselines import baseline_names
    from jaxserve.rl.envs import poisson_rates
    from jaxserve.rl.policy import load_checkpoint_scenario, load_learned_policy

    scenario = load_checkpoint_scenario(path) if scenario is None else resolve_scenario(scenario)
    rates = [float(r) for r in (poisson_rates(scenario) if rates is None else rates)]
    others = baseline_names(scenario.model_names) if baselines else []
    config = SweepConfig(scenario, [ROUTER, *others], rates, None, (1.0,), num_requests, seeds)
    router = load_learned_policy(path, scenario)
    result, _ = run_sweep_grid(config, [router, *build_policies(others, scenario)])
    bound = dict(zip(rates, nominal_curve(scenario, rates), strict=True))
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


def select_best_member(
    out_dir: str | Path, scenario: Scenario, num_requests: int = 2000, seeds: int = 2
) -> dict:
    """Evaluate every member on held-out Poisson episodes; record the best in the checkpoint.

    Held out: the episodes come from the sweep's own keys, not the learners' keys, over the
    evaluation grid of rates (light load to 3x the best model's capacity).
    """
    from jaxserve import checkpoint, multihost
    from jaxserve.evaluation.grid import run_sweep
    from jaxserve.io_utils import write_json_atomic
    from jaxserve.rl.envs import poisson_rates
    from jaxserve.rl.policy import load_learned_policy

    meta = checkpoint.read_metadata(out_dir)
    size = int(meta["population_size"])
    policies = [load_learned_policy(out_dir, scenario, member=m) for m in range(size)]
    names = [f"member:{m}" for m in range(size)]
    sweep = run_sweep(
        scenario, names, poisson_rates(scenario), None, (1.0,), num_requests, seeds, policies
    )
    score = np.asarray(sweep["normalized_performance"])[:, :, 0, 0].mean(axis=1)
    best = int(np.argmax(score))
    meta.update(best_member=best, held_out_score=score.tolist())
    if multihost.is_primary():
        write_json_atomic(Path(out_dir) / checkpoint.META_FILE, meta)
    multihost.barrier("jaxserve best member")
    return {"best_member": best, "held_out_score": score.tolist()}
