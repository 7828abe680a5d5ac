"""The fluid upper bound (docs/spec.md §4) and the routing table of the `lp` policy.

For arrival rate λ and task mix p, route a fraction x[t, k] of task-t requests to model k:

    maximise   Σ_t p_t Σ_k x_tk (q_tk + penalty) - penalty
    subject to Σ_k x_tk ≤ 1 (per task),  x ≥ 0,  Σ_t λ p_t x_tk ≤ μ_k (per model),

where μ_k is model k's on-time throughput (`Scenario.capacity_per_model`) and the
unrouted fraction 1 - Σ_k x_tk earns -penalty (= -miss_penalty, 0 by default). The value
is utility per arrived request, the unit of docs/spec.md's "performance"; with penalty 0 it is the
brief's Σ_t p_t Σ_k x_tk q_tk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize

from jaxserve.errors import InputError
from jaxserve.sim.scenarios import Scenario

# Tie-break: among optimal routings prefer serving more requests (matters when q_tk = 0),
# small enough not to change the optimum beyond solver tolerance.
SERVE_BONUS = 1e-9


def _check_rate(rate: float) -> float:
    """A finite rate ≥ 0 (arrivals/s)."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise InputError(f"rate = {rate!r}: expected a finite number ≥ 0 (arrivals/s)")
    if rate < 0:
        raise InputError(f"rate = {rate!r}: expected a finite number ≥ 0 (arrivals/s)")
    return float(rate)


def _problem(source, task_mix) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(quality (T,K), capacity (K,), mix (T,), penalty) from a Scenario or arrays."""
    if isinstance(source, Scenario):
        quality, capacity = np.asarray(source.quality), source.capacity_per_model()
        penalty = source.miss_penalty
        default_mix = source.task_mix()
    else:
        quality, capacity = (np.asarray(a, np.float64) for a in source[:2])
        penalty = float(source[2]) if len(source) > 2 else 0.0
        default_mix = np.full(quality.shape[0], 1.0 / quality.shape[0])
    mix = default_mix if task_mix is None else np.asarray(task_mix, np.float64)
    _check_arrays(quality, capacity, mix)
    return quality, capacity, mix / mix.sum(), penalty


def _check_arrays(quality: np.ndarray, capacity: np.ndarray, mix: np.ndarray):
    """Shapes agree, quality in [0, 1], capacity ≥ 0, mix a non-zero distribution."""
    if quality.ndim != 2 or capacity.shape != (quality.shape[1],):
        raise InputError(
            f"quality, capacity shapes = {quality.shape}, {capacity.shape}: expected (T, K), (K,)"
        )
    if mix.shape != (quality.shape[0],):
        raise InputError(f"task_mix shape = {mix.shape}: expected ({quality.shape[0]},)")
    if not np.all(np.isfinite(quality)) or quality.min() < 0 or quality.max() > 1:
        raise InputError(f"quality = {quality.tolist()}: expected values in [0, 1]")
    if not np.all(np.isfinite(capacity)) or capacity.min() < 0:
        raise InputError(f"capacity = {capacity.tolist()}: expected finite values ≥ 0")
    if not np.all(np.isfinite(mix)) or mix.min() < 0 or mix.sum() <= 0:
        raise InputError(f"task_mix = {mix.tolist()}: expected probabilities ≥ 0, sum > 0")


def _solve(quality, capacity, mix, penalty, rate) -> tuple[float, np.ndarray]:
    """Solve one LP with HiGHS; x is row-major (T, K)."""
    num_tasks, num_models = quality.shape
    gain = mix[:, None] * (quality + penalty + SERVE_BONUS)  # (T, K)
    one_per_task = np.kron(np.eye(num_tasks), np.ones((1, num_models)))  # (T, T*K)
    load_per_model = np.kron(rate * mix[None, :], np.eye(num_models))  # (K, T*K)
    result = optimize.linprog(
        -gain.ravel(),
        A_ub=np.vstack([one_per_task, load_per_model]),
        b_ub=np.concatenate([np.ones(num_tasks), capacity]),
        bounds=(0, None),
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"fluid LP failed: {result.message}")  # cannot happen: x=0 feasible
    x = np.clip(result.x.reshape(num_tasks, num_models), 0.0, 1.0)
    value = float(np.sum(mix[:, None] * x * (quality + penalty)) - penalty * mix.sum())
    return value, x


def fluid_upper_bound(
    source: Scenario | Sequence,
    rate: float,
    task_mix: Sequence[float] | None = None,
) -> tuple[float, np.ndarray]:
    """(bound on performance per arrived request, routing fractions x[t, k]).

    Args:
      source: a Scenario, or (quality (T, K), capacity μ (K,) req/s[, miss_penalty]).
      rate: total arrival rate λ, arrivals/s.
      task_mix: p (T,); default the scenario's workload mix, else uniform.
    """
    quality, capacity, mix, penalty = _problem(source, task_mix)
    return _solve(quality, capacity, mix, penalty, _check_rate(rate))


def rate_grid(scenario: Scenario, num_rates: int = 49, span: float = 100.0) -> np.ndarray:
    """Geometric rates from Σμ/span to Σμ·span/10 (default 49 points), arrivals/s."""
    total = float(scenario.capacity_per_model().sum())
    if total <= 0:
        raise InputError(f"capacity = {total}: expected some model to meet the deadline")
    return np.geomspace(total / span, total * span / 10.0, num_rates)


def lp_routing_table(
    scenario: Scenario,
    rates: Sequence[float] | None = None,
    task_mix: Sequence[float] | None = None,
) -> np.ndarray:
    """x[r, t, k] of the fluid LP at each rate of a sorted grid; shape (num_rates, T, K)."""
    rates = rate_grid(scenario) if rates is None else np.asarray(rates, np.float64)
    if rates.ndim != 1 or rates.size == 0 or np.any(np.diff(rates) <= 0):
        raise InputError(f"rates = {rates.tolist()}: expected a non-empty increasing list")
    quality, capacity, mix, penalty = _problem(scenario, task_mix)
    tables = [_solve(quality, capacity, mix, penalty, _check_rate(float(r)))[1] for r in rates]
    return np.stack(tables).astype(np.float32)
