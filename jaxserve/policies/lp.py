"""The fluid upper bound (docs/spec.md §4) and the routing table of the `lp` policy.

For arrival rate λ and a mix p over request classes c (a task, or a task with a deadline
scale), route a fraction x[c, k] of class-c requests to model k:

    maximise   Σ_c p_c Σ_k x_ck (q_ck + penalty) - penalty
    subject to Σ_k x_ck ≤ 1 (per class),  x ≥ 0,  Σ_c λ p_c x_ck / μ_ck ≤ 1 (per model),

where μ_ck is model k's on-time throughput for class c's deadline
(`Scenario.capacity_per_task`; x_ck = 0 where no batch meets it) and the unrouted fraction
earns -penalty. Each on-time request of class c uses at least 1/μ_ck of model k's
replica-seconds, so the per-model row is a time budget; docs/policies.md has the proof
sketch. With penalty 0 (the default for a Scenario) the value bounds "performance", the
quality delivered per arrived request; a tuple source keeps its given penalty.
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


def _problem(
    source, task_mix, deadline_scale: float, penalty: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(quality (T,K), capacity (T,K), mix (T,), penalty) from a Scenario or arrays."""
    if isinstance(source, Scenario):
        quality = np.asarray(source.quality, np.float64)
        capacity = source.capacity_per_task(deadline_scale)
        default_mix, given_penalty = source.task_mix(), 0.0
    else:
        quality, capacity = (np.asarray(a, np.float64) for a in source[:2])
        given_penalty = float(source[2]) if len(source) > 2 else 0.0
        default_mix = np.full(quality.shape[0], 1.0 / quality.shape[0])
    mix = default_mix if task_mix is None else np.asarray(task_mix, np.float64)
    _check_arrays(quality, capacity, mix)
    if capacity.ndim == 1:  # one capacity per model: the same for every class
        capacity = np.broadcast_to(capacity, quality.shape)
    return quality, capacity, mix / mix.sum(), given_penalty if penalty is None else penalty


def _check_arrays(quality: np.ndarray, capacity: np.ndarray, mix: np.ndarray):
    """Shapes agree, quality in [0, 1], capacity ≥ 0, mix a non-zero distribution."""
    if quality.ndim != 2 or capacity.shape not in ((quality.shape[1],), quality.shape):
        raise InputError(
            f"quality, capacity shapes = {quality.shape}, {capacity.shape}: "
            "expected (T, K), (K,) or (T, K)"
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
    """Solve one LP with HiGHS; quality, capacity (C, K); x is row-major (C, K)."""
    num_classes, num_models = quality.shape
    gain = mix[:, None] * (quality + penalty + SERVE_BONUS)  # (C, K)
    one_per_class = np.kron(np.eye(num_classes), np.ones((1, num_models)))  # (C, C*K)
    servable = capacity > 0
    time_per_request = servable * rate * mix[:, None] / np.where(servable, capacity, 1.0)
    time_budget = np.zeros((num_models, num_classes, num_models))  # (K, C, K)
    for k in range(num_models):
        time_budget[k, :, k] = time_per_request[:, k]
    result = optimize.linprog(
        -gain.ravel(),
        A_ub=np.vstack([one_per_class, time_budget.reshape(num_models, -1)]),
        b_ub=np.ones(num_classes + num_models),
        bounds=[(0, None if ok else 0) for ok in servable.ravel()],
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"fluid LP failed: {result.message}")  # cannot happen: x=0 feasible
    x = np.clip(result.x.reshape(num_classes, num_models), 0.0, 1.0)
    value = float(np.sum(mix[:, None] * x * (quality + penalty)) - penalty * mix.sum())
    return value, x


def fluid_upper_bound(
    source: Scenario | Sequence,
    rate: float,
    task_mix: Sequence[float] | None = None,
    deadline_scale: float = 1.0,
    penalty: float | None = None,
) -> tuple[float, np.ndarray]:
    """(bound on utility per arrived request, routing fractions x[t, k]).

    Args:
      source: a Scenario, or (quality (C, K), capacity μ (K,) or (C, K) req/s[, penalty]).
      rate: total arrival rate λ, arrivals/s.
      task_mix: p (C,); default the scenario's workload mix, else uniform.
      deadline_scale: every task deadline times this (a Scenario source only).
      penalty: utility of an unserved request is -penalty; default 0 for a Scenario (the
        bound on performance, quality delivered), the tuple's third entry otherwise.
    """
    quality, capacity, mix, penalty = _problem(source, task_mix, deadline_scale, penalty)
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
    """x[r, t, k] of the fluid LP at each rate of a sorted grid; shape (num_rates, T, K).

    The routing objective prices a miss at the scenario's `miss_penalty`.
    """
    rates = rate_grid(scenario) if rates is None else np.asarray(rates, np.float64)
    if rates.ndim != 1 or rates.size == 0 or np.any(np.diff(rates) <= 0):
        raise InputError(f"rates = {rates.tolist()}: expected a non-empty increasing list")
    quality, capacity, mix, penalty = _problem(scenario, task_mix, 1.0, scenario.miss_penalty)
    tables = [_solve(quality, capacity, mix, penalty, _check_rate(float(r)))[1] for r in rates]
    return np.stack(tables).astype(np.float32)
