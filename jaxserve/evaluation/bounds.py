"""The fluid bound, where it is one (docs/policies.md, "The fluid bound").

Two forms over the LP of `jaxserve.policies.lp`:

* `realised_bound`: for one finished run. Request classes are the (task, deadline scale)
  pairs that arrived, in their realised proportions, and the rate is n / (span of arrivals +
  longest request deadline): every on-time request was served inside that interval, so the
  bound holds for that run's arrivals whatever their process (Poisson, bursts, a replay, a
  deadline schedule), not just on average.
* `nominal_curve`: the long-run bound of a stationary process (Poisson or gamma) at its
  nominal rate, mix and deadline scale; a finite run sits within its sampling error of it.

Neither is a bound with soft deadlines (late requests still earn) or service-time noise
(a batch can finish faster than its profile): `no_bound_reason` says so and callers print
n/a (null in JSON).
"""

from __future__ import annotations

import numpy as np

from jaxserve.policies.lp import fluid_upper_bound
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec

NOMINAL_KINDS = ("poisson", "gamma")


def no_bound_reason(scenario: Scenario) -> str | None:
    """Why the fluid LP does not bound this scenario's performance; None when it does."""
    if scenario.deadline_kind != "hard":
        return "soft deadlines: a late request still earns utility"
    if scenario.noise_sigma > 0:
        return "service-time noise: a batch can finish before its profiled latency"
    return None


def nominal_reason(scenario: Scenario, workload: WorkloadSpec) -> str | None:
    """Why no long-run bound applies to `workload` on `scenario`; None when one does."""
    if workload.kind not in NOMINAL_KINDS:
        return f"{workload.kind} arrivals: no stationary rate to bound at (see simulate's bound)"
    if workload.deadline_schedule is not None:
        return "deadline schedule: the deadline changes over the run (see simulate's bound)"
    if workload.mix_schedule is not None:
        return "mix schedule: the task mix changes over the run (see simulate's bound)"
    return no_bound_reason(scenario)


def nominal_curve(scenario: Scenario, rates, mix=None, deadline_scale: float = 1.0) -> list[float]:
    """Long-run bound on normalised performance at each rate (mix default: the scenario's)."""
    peak = scenario.peak_quality(mix)
    return [fluid_upper_bound(scenario, float(r), mix, deadline_scale)[0] / peak for r in rates]


def sweep_bound(scenario: Scenario, workload: WorkloadSpec, rates, mixes, scales) -> dict:
    """The sweep's bound per (rate, mix, deadline scale), or null with the reason."""
    reason = nominal_reason(scenario, workload)
    if reason is not None:
        return {"fluid_upper_bound_normalized": None, "fluid_upper_bound_note": reason}
    curves = [[nominal_curve(scenario, rates, m, d) for d in scales] for m in mixes]  # M,D,R
    return {"fluid_upper_bound_normalized": np.transpose(curves, (2, 0, 1)).tolist()}


def bound_at(result: dict, mix: int = 0, deadline: int = 0) -> list[float] | None:
    """A result's bound over rates: a sweep's (R, M, D) grid at one mix and scale, or (R,)."""
    bound = result.get("fluid_upper_bound_normalized")
    if not bound or not isinstance(bound[0], list):
        return bound
    return [row[mix][deadline] for row in bound]


def realised_bound(
    scenario: Scenario, arrival_s, tasks, deadline_scale=None, task_peak=None
) -> dict:
    """Bound on one run's performance and normalised performance, from its own arrivals.

    `arrival_s`, `tasks`, `deadline_scale`: (N,) per valid arrival (scale None = 1).
    `task_peak`: (T,) best quality per task that normalises (default the scenario's).
    """
    arrival_s, tasks = np.asarray(arrival_s, np.float64), np.asarray(tasks, np.int64)
    scale = np.ones(len(tasks)) if deadline_scale is None else np.asarray(deadline_scale)
    classes, counts = np.unique(
        np.stack([tasks, scale.astype(np.float64)]), axis=1, return_counts=True
    )
    class_task = classes[0].astype(np.int64)
    deadline = np.asarray(scenario.deadline_s)[class_task] * classes[1]
    capacity = np.stack([scenario.capacity_at(d) for d in deadline])  # (C, K)
    quality = np.asarray(scenario.quality, np.float64)[class_task]  # (C, K)
    rate = len(tasks) / (float(arrival_s.max() - arrival_s.min()) + float(deadline.max()))
    value, _ = fluid_upper_bound((quality, capacity), rate, counts / counts.sum())
    if task_peak is None:
        task_peak = np.max(np.asarray(scenario.quality), axis=1)
    peak = float(np.asarray(task_peak, np.float64)[tasks].mean())
    return {
        "fluid_upper_bound": value,
        "fluid_upper_bound_normalized": value / peak if peak > 0 else 0.0,
    }


__all__ = [
    "bound_at",
    "nominal_curve",
    "nominal_reason",
    "no_bound_reason",
    "realised_bound",
    "sweep_bound",
]
