"""The shipped tables scenarios are built from: OPT quality (lm-eval) and latency profiles."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxserve.data import data_path
from jaxserve.errors import InputError
from jaxserve.sim import roofline
from jaxserve.sim.scenario_spec import QUALITY_CSV, check_latency_profile, check_len, fail_field


def read_quality_csv(path: Path | None = None) -> dict[str, dict[str, float]]:
    """quality[task][model] from the shipped lm-eval accuracy CSV (jaxserve/data/quality/)."""
    path = path or data_path(QUALITY_CSV)
    if not path.is_file():
        fail_field("quality csv", str(path), "an existing CSV file")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    skip = ("task", "metric")
    return {r["task"]: {m: float(v) for m, v in r.items() if m not in skip} for r in rows}


def opt_quality(
    task_names: Sequence[str], model_names: Sequence[str], path: Path | None = None
) -> tuple[tuple[float, ...], ...]:
    """quality[t][k]: measured where the CSV has it, else interpolated in log(params)."""
    table = read_quality_csv(path)
    rows = []
    for task in task_names:
        if task not in table:
            fail_field("task", task, f"one of the quality csv tasks {sorted(table)}")
        rows.append(tuple(_quality_for(table[task], m) for m in model_names))
    return tuple(rows)


def _quality_for(measured: dict[str, float], model: str) -> float:
    """Measured accuracy, or linear in log10(params) through the measured sizes, clipped."""
    if model in measured:
        return measured[model]
    sizes = sorted(measured, key=lambda m: roofline.opt_num_params(roofline.get_opt_dims(m)))
    x = np.log10([roofline.opt_num_params(roofline.get_opt_dims(m)) for m in sizes])
    y = np.asarray([measured[m] for m in sizes])
    x0 = np.log10(roofline.opt_num_params(roofline.get_opt_dims(model)))
    i = int(np.clip(np.searchsorted(x, x0) - 1, 0, len(x) - 2))  # segment (extrapolate at ends)
    value = y[i] + (y[i + 1] - y[i]) * (x0 - x[i]) / (x[i + 1] - x[i])
    return round(float(np.clip(value, 0.0, 1.0)), 4)  # the CSV's precision


def load_latency_profile(path: str | Path) -> tuple[float, ...]:
    """latency_s for b = 1..max from a profile JSON {model, latency_s, batch_sizes?}.

    With `batch_sizes` (strictly increasing, starting at 1), missing sizes are linearly
    interpolated, which keeps the profile non-decreasing.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        msg = f"latency_profile = '{path}': expected a readable JSON file ({e})"
        raise InputError(msg) from None
    if not isinstance(data, dict) or "latency_s" not in data:
        fail_field(f"{path}: latency_s", None, "a list of seconds per batch size")
    latency = check_latency_profile(f"{path}: latency_s", data["latency_s"])
    sizes = data.get("batch_sizes") or list(range(1, len(latency) + 1))
    check_len(f"{path}: batch_sizes", sizes, len(latency), "one per latency_s entry")
    if (
        any(not isinstance(b, int) or isinstance(b, bool) for b in sizes)
        or sizes[0] != 1
        or any(b2 <= b1 for b1, b2 in zip(sizes, sizes[1:], strict=False))
    ):
        fail_field(f"{path}: batch_sizes", sizes, "strictly increasing integers starting at 1")
    grid = np.arange(1, sizes[-1] + 1)
    return tuple(float(x) for x in np.interp(grid, sizes, latency))


# --- built-in scenarios ---------------------------------------------------------------------
