"""Calibrating a knob router: its availability at each (Poisson rate, knob), in one sweep.

The table goes into the checkpoint's metadata (`knob_calibration`); `--availability-target`
reads it (jaxserve/rl/knob.py, docs/knob.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxserve import checkpoint
from jaxserve.errors import InputError
from jaxserve.evaluation.grid import run_sweep
from jaxserve.progress import no_progress
from jaxserve.rl.config import config_from_json
from jaxserve.rl.envs import reference_capacity
from jaxserve.rl.knob import KnobTable, knob_range
from jaxserve.rl.policy import load_checkpoint_scenario, load_learned_policy
from jaxserve.sim.scenarios import with_miss_penalty

CALIBRATION_RATES = 12
CALIBRATION_KNOBS = 8


def knob_grid(low: float, high: float, num: int) -> np.ndarray:
    """`num` knobs from low to high, evenly spaced in log(1 + P) (as training draws them)."""
    return np.expm1(np.linspace(np.log1p(low), np.log1p(high), num)).astype(np.float32)


def calibration_rates(meta: dict, scenario, num: int) -> np.ndarray:
    """Geometric rates over the router's training range (docs/knob.md)."""
    config = config_from_json(meta["dqn_config"])
    scale = reference_capacity(scenario)
    return np.geomspace(scale * config.min_rate_factor, scale * config.max_rate_factor, num)


def knob_policy(path: str | Path, scenario, member=None):
    """A knob router told the penalty of each run's params (a sweep's knob axis sets them).

    Loaded with the scenario's penalty moved into the trained range, so a checkpoint whose
    stored scenario has a penalty outside it still loads for calibration.
    """
    low, high = knob_range(checkpoint.read_metadata(path))
    inside = with_miss_penalty(scenario, min(max(scenario.miss_penalty, low), high))
    return load_learned_policy(path, inside, member)


def calibrate_knob(
    path: str | Path,
    num_rates: int = CALIBRATION_RATES,
    num_knobs: int = CALIBRATION_KNOBS,
    seeds: int = 4,
    num_requests: int = 2000,
    on_chunk=no_progress,
) -> KnobTable:
    """Measure a knob router's availability table and store it in its checkpoint."""
    meta = checkpoint.read_metadata(path)
    trained = knob_range(meta)
    if trained is None:
        raise InputError(f"checkpoint {path}: not a knob router (no knob_range)")
    scenario = load_checkpoint_scenario(path)
    rates = calibration_rates(meta, scenario, num_rates)
    knobs = knob_grid(*trained, num_knobs)
    result = run_sweep(
        scenario,
        ["knob"],
        rates,
        num_requests=num_requests,
        seeds=seeds,
        policies=[knob_policy(path, scenario)],
        miss_penalties=knobs,
        on_chunk=on_chunk,
    )
    avail = np.asarray(result["availability"])[0, :, 0, 0, :]  # (R, N)
    table = KnobTable(
        rates=tuple(float(r) for r in rates),
        knobs=tuple(float(k) for k in knobs),
        availability=tuple(tuple(float(a) for a in row) for row in avail),
        seeds=seeds,
        num_requests=num_requests,
    )
    checkpoint.update_metadata(path, {"knob_calibration": table.to_json()})
    return table
