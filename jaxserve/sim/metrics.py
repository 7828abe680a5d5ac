"""Metrics of docs/spec.md §4.

Per-request (numpy, from a rollout ledger) and aggregate (jnp, counters).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.sim.types import DROPPED, LATE, ON_TIME, OUTCOME_NAMES, REJECTED, Counters

DEFAULT_WINDOW_S = 10.0
TRACE_WINDOW_S = 60.0
PEAK_LEVELS = (0.96, 0.98)


def absolute_arrival_times(gap_s) -> np.ndarray:
    """Arrival times in float64 from float32 gaps (the precise clock used for metrics)."""
    return np.cumsum(np.asarray(gap_s, np.float64))


def windowed_normalized(arrival_s, utility, peak, window_s: float):
    """Normalised performance per window of `window_s` seconds (by arrival time).

    Returns (window start times, values); windows without arrivals are left out.
    """
    index = np.floor(np.asarray(arrival_s) / window_s).astype(np.int64)
    index -= index.min(initial=0)
    num = int(index.max(initial=-1)) + 1
    u = np.bincount(index, weights=utility, minlength=num)
    p = np.bincount(index, weights=peak, minlength=num)
    has = p > 0
    starts = (np.arange(num) + np.floor(arrival_s[0] / window_s)) * window_s
    return starts[has], u[has] / p[has]


def request_metrics(
    ledger: dict,
    arrival_s,
    tasks,
    quality,
    num_actions: int,
    window_s: float = DEFAULT_WINDOW_S,
    valid=None,
    task_peak=None,
) -> dict:
    """Every per-request docs/spec.md §4 metric of one run, as plain Python numbers and lists.

    Args:
      ledger: per-decision arrays from rollout.ledger_rollout (numpy).
      arrival_s: (N,) float64 absolute arrival times; tasks: (N,) int.
      quality: (T, K) quality table.
      task_peak: (T,) the best quality per task that normalises performance; default the
        table's (a model alone on equal hardware is normalised by the full zoo's peak).
    """
    valid = np.ones(len(tasks), bool) if valid is None else np.asarray(valid, bool)
    outcome = np.asarray(ledger["outcome"])[valid]
    reward = np.asarray(ledger["utility"], np.float64)[valid]
    utility = np.maximum(reward, 0.0)  # quality delivered: a miss's -penalty is reward only
    latency = np.asarray(ledger["latency_s"], np.float64)[valid]
    actions = np.asarray(ledger["action"])[valid]
    arrival_s, tasks = np.asarray(arrival_s)[valid], np.asarray(tasks)[valid]
    if np.any(outcome < 0):
        raise RuntimeError("a request has no outcome: the simulator lost a request")
    if task_peak is None:
        task_peak = np.max(np.asarray(quality, np.float64), axis=1)
    peak_each = np.asarray(task_peak, np.float64)[tasks]
    n = len(outcome)
    counts = np.bincount(outcome, minlength=4)
    completed = (outcome == ON_TIME) | (outcome == LATE)
    span_s = max(float(arrival_s[-1] - arrival_s[0]), 1e-9) if n > 1 else 1.0
    performance = float(utility.sum() / n)
    peak = float(peak_each.sum() / n)
    starts, series = windowed_normalized(arrival_s, utility, peak_each, window_s)
    lat = latency[completed]
    out = {
        "num_arrived": n,
        **{f"num_{name}": int(c) for name, c in zip(OUTCOME_NAMES, counts, strict=True)},
        "performance": performance,
        "reward": float(reward.sum() / n),
        "peak": peak,
        "normalized_performance": performance / peak if peak > 0 else 0.0,
        "availability": float(counts[ON_TIME] / n),
        "goodput": float(counts[ON_TIME] / span_s),
        "offered_rate": float((n - 1) / span_s) if n > 1 else 0.0,
        "latency_mean_s": float(lat.mean()) if lat.size else None,
        "latency_p50_s": float(np.percentile(lat, 50)) if lat.size else None,
        "latency_p99_s": float(np.percentile(lat, 99)) if lat.size else None,
        "routing_fraction": (np.bincount(actions, minlength=num_actions) / n).tolist(),
        "routing_fraction_per_task": _per_task_mix(actions, tasks, quality, num_actions),
        "window_s": window_s,
        "window_start_s": starts.tolist(),
        "windowed_normalized_performance": series.tolist(),
    }
    for level in PEAK_LEVELS:
        out[f"time_above_{round(level * 100)}"] = (
            float(np.mean(series >= level)) if series.size else 0.0
        )
    return out


def _per_task_mix(actions, tasks, quality, num_actions: int) -> list[list[float]]:
    """Routing fraction per task (rows) and action (columns)."""
    rows = []
    for t in range(np.asarray(quality).shape[0]):
        mine = actions[tasks == t]
        rows.append((np.bincount(mine, minlength=num_actions) / max(len(mine), 1)).tolist())
    return rows


def penalised_count(counters: Counters, hard: bool = True) -> jax.Array:
    """Requests that earned -miss_penalty: dropped, rejected, late (hard deadlines only)."""
    late = counters.num_outcome[..., LATE] if hard else 0
    return counters.num_outcome[..., DROPPED] + counters.num_outcome[..., REJECTED] + late


def counter_metrics(counters: Counters, miss_penalty=0.0, hard: bool = True) -> dict:
    """Aggregate metrics from running totals; works on batched counters (jnp, vmap-friendly).

    `performance` is quality delivered: the counters' utility sum with the miss penalty
    (`miss_penalty`, per lane or scalar; `hard` = hard deadlines) added back; `reward`
    keeps it (docs/policies.md, "Metrics").
    """
    arrived = jnp.maximum(counters.num_arrived, 1).astype(jnp.float32)
    completed = counters.num_outcome[..., ON_TIME] + counters.num_outcome[..., LATE]
    quality = counters.sum_utility + miss_penalty * penalised_count(counters, hard)
    performance = quality / arrived
    peak = counters.sum_peak / arrived
    return {
        "performance": performance,
        "reward": counters.sum_utility / arrived,
        "peak": peak,
        "normalized_performance": performance / jnp.maximum(peak, 1e-12),
        "availability": counters.num_outcome[..., ON_TIME] / arrived,
        "latency_mean_s": counters.sum_latency_s / jnp.maximum(completed, 1),
        "routing_fraction": counters.num_routed / arrived[..., None],
    }


def time_above_ratio(policy_fraction: float, baseline_fraction: float) -> float | None:
    """'N× more often' (docs/spec.md §4); None when the baseline is never above the level."""
    return policy_fraction / baseline_fraction if baseline_fraction > 0 else None


def max_sustainable_rate(rates, availability, level: float = 0.99) -> float | None:
    """Highest rate of a (geometric) grid at which availability >= level; None if none."""
    rates, availability = np.asarray(rates), np.asarray(availability)
    ok = availability >= level
    return float(rates[ok].max()) if ok.any() else None


def performance_per_gpu(performance: float, rate: float, num_replicas: int) -> float:
    """Utility delivered per second per replica (docs/spec.md §4 hardware-cost comparison)."""
    return performance * rate / num_replicas
