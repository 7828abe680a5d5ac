"""Workload generators (docs/spec.md §5): pure JAX functions of a key and vmappable params.

``make_workload(spec, num_tasks, num_arrivals) -> (params, generate)``;
``generate(key, params) -> Arrivals`` jits and vmaps over keys and over params.
Precision: generators never accumulate absolute float32 time. Piecewise and unpredictable
arrivals come from a scan whose carry is (segment index, offset inside the segment), so each
gap is exact to float32 precision of segment-local quantities; only the task-mix schedule
looks up absolute arrival times (a float32 cumsum), where an error of ~1e-7 x elapsed time
just moves a mix boundary by that much. See docs/workloads.md. The spec itself
(`WorkloadSpec`, its validation, `mean_rate`) is in `workload_spec.py`, re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxserve.errors import InputError
from jaxserve.sim import traces
from jaxserve.sim.types import Arrivals
from jaxserve.sim.workload_spec import (
    KINDS,
    WorkloadSpec,
    load_spec_trace,
    mean_rate,
    spec_error,
    validate_spec,
)

MIN_SEGMENTS = 16
MAX_SEGMENTS = 1 << 16  # unpredictable: beyond this the segment pattern repeats


@struct.dataclass
class WorkloadParams:
    """Numeric workload leaves; vmap over any of them (e.g. ``rate`` or ``rate_scale``)."""

    rate: jax.Array  # () poisson/gamma arrivals/s
    cv: jax.Array  # () gamma coefficient of variation
    rate_scale: jax.Array  # () multiplies all rates; trace: divides all gaps
    seg_duration_s: jax.Array  # (P,) piecewise schedule durations
    seg_rate: jax.Array  # (P,) piecewise schedule rates
    min_rate: jax.Array  # () unpredictable
    max_rate: jax.Array  # ()
    mean_segment_s: jax.Array  # ()
    spike_prob: jax.Array  # ()
    spike_mult: jax.Array  # ()
    mix_end_s: jax.Array  # (X,) end time of each mix; the last mix holds forever
    mix_probs: jax.Array  # (X, num_tasks)
    trace_gap_s: jax.Array  # (num_arrivals,) or (1,) when not a trace
    trace_valid: jax.Array  # (num_arrivals,) bool or (1,)
    trace_task: jax.Array  # (num_arrivals,) int32 or (1,)
    deadline_end_s: jax.Array  # (Y,) end of each deadline period within one cycle
    deadline_factor: jax.Array  # (Y,) factor on the task deadlines in that period
    knob_end_s: jax.Array  # (Z,) end of each knob period within one cycle
    knob_value: jax.Array  # (Z,) knob (miss penalty told to a knob router) in that period


def _schedule_rate(duration_s: np.ndarray, rate: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """Rate of a cyclic piecewise-constant schedule at times t (float64 numpy)."""
    end_s = np.cumsum(duration_s)
    index = np.searchsorted(end_s, np.mod(t_s, end_s[-1]), side="right")
    return rate[np.minimum(index, rate.shape[0] - 1)]


def rate_at(
    spec: WorkloadSpec,
    t_s,
    key: jax.Array | None = None,
    num_arrivals: int | None = None,
    bin_s: float = 60.0,
) -> np.ndarray:
    """Offered rate (arrivals/s) at times ``t_s`` (seconds), as float64 numpy.

    ``unpredictable`` needs the ``key`` and ``num_arrivals`` given to ``generate`` (the rate
    is random); ``trace`` gives the empirical rate in bins of ``bin_s`` seconds.
    """
    t_s = np.asarray(t_s, dtype=np.float64)
    if spec.kind in ("poisson", "gamma"):
        return np.full_like(t_s, spec.rate * spec.rate_scale)
    if spec.kind == "piecewise":
        duration_s, rate = np.array(spec.schedule, dtype=np.float64).T
        return _schedule_rate(duration_s, rate * spec.rate_scale, t_s)
    if spec.kind == "trace":
        return traces.binned_rate(load_spec_trace(spec).arrival_s, t_s, bin_s)
    if key is None or num_arrivals is None:
        raise InputError(
            "rate_at: kind 'unpredictable' needs key= and num_arrivals=; "
            "expected the same values as given to generate"
        )
    num_tasks = len(spec.task_mix) if spec.task_mix else 1
    num_tasks = len(spec.mix_schedule[0][1]) if spec.mix_schedule else num_tasks
    params = _make_params(spec, num_tasks, num_arrivals)
    key = jax.random.clone(key)  # replays generate's split on purpose (same segments)
    key_segments, _ = _split_arrival_key(jax.random.split(key)[0])
    segments = jax.jit(_unpredictable_segments, static_argnames="num_segments")
    duration_s, rate = segments(key_segments, params, num_segments(spec, num_arrivals))
    return _schedule_rate(np.asarray(duration_s, np.float64), np.asarray(rate, np.float64), t_s)


def num_segments(spec: WorkloadSpec, num_arrivals: int) -> int:
    """Static number of unpredictable segments: twice the expected episode horizon."""
    horizon_s = num_arrivals / mean_rate(spec)
    wanted = math.ceil(2.0 * horizon_s / spec.mean_segment_s) + MIN_SEGMENTS
    return int(min(wanted, MAX_SEGMENTS))


# ---------------------------------------------------------------------------- params


def _mix_tables(spec: WorkloadSpec, num_tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """(end_s (X,), probs (X, T)) of the task-mix schedule; a stationary mix is X = 1."""
    if spec.mix_schedule is not None:
        end_s = np.cumsum([d for d, _ in spec.mix_schedule])
        end_s[-1] = np.inf  # the last mix holds for the rest of the episode
        probs = np.array([mix for _, mix in spec.mix_schedule], dtype=np.float64)
        field = "mix_schedule"
    else:
        end_s = np.array([np.inf])
        mix = spec.task_mix if spec.task_mix is not None else (1.0 / num_tasks,) * num_tasks
        probs, field = np.array([mix], dtype=np.float64), "task_mix"
    if probs.shape[1] != num_tasks:
        raise spec_error(
            field,
            spec.mix_schedule if spec.mix_schedule else spec.task_mix,
            f"{num_tasks} probabilities (one per task), got {probs.shape[1]}",
        )
    return end_s, probs / probs.sum(axis=1, keepdims=True)


def _trace_arrays(spec: WorkloadSpec, num_tasks: int, num_arrivals: int):
    """(gap_s, valid, task), each (num_arrivals,), for a trace spec; (1,) dummies otherwise."""
    if spec.kind != "trace":
        return np.zeros(1, np.float32), np.ones(1, bool), np.zeros(1, np.int32)
    trace = load_spec_trace(spec)
    gap_s, valid = traces.trace_to_params(trace.arrival_s, num_arrivals)
    task = np.zeros(num_arrivals, np.int32)
    if trace.function is not None:
        num = min(num_arrivals, trace.num_arrivals)
        task[:num] = trace.function[:num] % num_tasks
    return gap_s, valid, task


def _make_params(spec: WorkloadSpec, num_tasks: int, num_arrivals: int) -> WorkloadParams:
    schedule = np.array(spec.schedule if spec.schedule else ((1.0, 1.0),), np.float32)
    mix_end_s, mix_probs = _mix_tables(spec, num_tasks)
    gap_s, valid, task = _trace_arrays(spec, num_tasks, num_arrivals)
    f32 = lambda x: jnp.asarray(x, dtype=jnp.float32)
    return WorkloadParams(
        rate=f32(spec.rate),
        cv=f32(spec.cv),
        rate_scale=f32(1.0 if spec.kind == "trace" else spec.rate_scale),
        seg_duration_s=f32(schedule[:, 0]),
        seg_rate=f32(schedule[:, 1]),
        min_rate=f32(spec.min_rate),
        max_rate=f32(spec.max_rate),
        mean_segment_s=f32(spec.mean_segment_s),
        spike_prob=f32(spec.spike_prob),
        spike_mult=f32(spec.spike_mult),
        mix_end_s=f32(mix_end_s),
        mix_probs=f32(mix_probs),
        trace_gap_s=f32(gap_s),
        trace_valid=jnp.asarray(valid),
        trace_task=jnp.asarray(task),
        deadline_end_s=f32(np.cumsum([d for d, _ in spec.deadline_schedule or ((1.0, 1.0),)])),
        deadline_factor=f32([f for _, f in spec.deadline_schedule or ((1.0, 1.0),)]),
        knob_end_s=f32(np.cumsum([d for d, _ in spec.knob_schedule or ((1.0, 0.0),)])),
        knob_value=f32([v for _, v in spec.knob_schedule or ((1.0, 0.0),)]),
    )


def _check_sizes(num_tasks: int, num_arrivals: int) -> None:
    for name, value in (("num_tasks", num_tasks), ("num_arrivals", num_arrivals)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name} = {value!r}: expected an integer >= 1")


# ---------------------------------------------------------------------------- generators


def _safe(rate: jax.Array) -> jax.Array:
    """Divisor that is never 0 (zero-rate segments are skipped, never landed in)."""
    return jnp.where(rate > 0, rate, 1.0)


def _cycle_tables(seg_duration_s: jax.Array, seg_rate: jax.Array):
    """Two unrolled cycles: durations, rates (2P,), start times and rate mass (2P+1,)."""
    duration_s, rate = jnp.tile(seg_duration_s, 2), jnp.tile(seg_rate, 2)
    start_s = jnp.concatenate([jnp.zeros(1), jnp.cumsum(duration_s)])
    mass = jnp.concatenate([jnp.zeros(1), jnp.cumsum(duration_s * rate)])  # integrated rate
    return duration_s, rate, start_s, mass


def _jump(tables, num_periods: int, seg, offset_s, excess):
    """Gap and landing (segment, offset) for unit mass ``excess`` past the end of ``seg``."""
    duration_s, rate, start_s, mass = tables
    cycles = jnp.floor(excess / mass[num_periods])
    excess = jnp.maximum(excess - cycles * mass[num_periods], 0.0)
    first = seg + 1
    land = jnp.searchsorted(mass, mass[first] + excess, side="right") - 1
    land = jnp.clip(land, first, first + num_periods - 1)
    land_s = jnp.clip(
        (excess - (mass[land] - mass[first])) / _safe(rate[land]), 0.0, duration_s[land]
    )
    gap_s = (
        (duration_s[seg] - offset_s)
        + cycles * start_s[num_periods]
        + (start_s[land] - start_s[first])
        + land_s
    )
    return gap_s, land % num_periods, land_s


def _piecewise_gaps(
    key: jax.Array, seg_duration_s: jax.Array, seg_rate: jax.Array, num_arrivals: int
) -> jax.Array:
    """Time-rescaled unit Poisson process through a cyclic piecewise-constant rate.

    Args:
      seg_duration_s, seg_rate: (P,) the schedule. Returns (num_arrivals,) float32 gaps.
    """
    num_periods = seg_duration_s.shape[0]
    tables = _cycle_tables(seg_duration_s, seg_rate)

    def step(carry, unit_gap):
        """One arrival: spend unit mass `unit_gap` from the current position."""
        seg, offset_s = carry  # position: segment index and seconds into it
        rate = tables[1][seg]
        budget = rate * (tables[0][seg] - offset_s)  # unit mass left in this segment
        stay = unit_gap < budget
        jump_s, land, land_s = _jump(
            tables, num_periods, seg, offset_s, jnp.maximum(unit_gap - budget, 0.0)
        )
        stay_s = unit_gap / _safe(rate)
        carry = (jnp.where(stay, seg, land), jnp.where(stay, offset_s + stay_s, land_s))
        return carry, jnp.where(stay, stay_s, jump_s)

    unit_gaps = jax.random.exponential(key, (num_arrivals,))
    _, gap_s = jax.lax.scan(step, (jnp.int32(0), jnp.float32(0.0)), unit_gaps)
    return gap_s


def _unpredictable_segments(key: jax.Array, params: WorkloadParams, num_segments: int):
    """Random segments: exponential lengths, log-uniform rates, spikes. Each (num_segments,)."""
    key_length, key_rate, key_spike = jax.random.split(key, 3)
    duration_s = params.mean_segment_s * jax.random.exponential(key_length, (num_segments,))
    log_rate = jax.random.uniform(
        key_rate, (num_segments,), minval=jnp.log(params.min_rate), maxval=jnp.log(params.max_rate)
    )
    spike = jax.random.bernoulli(key_spike, params.spike_prob, (num_segments,))
    rate = jnp.exp(log_rate) * jnp.where(spike, params.spike_mult, 1.0) * params.rate_scale
    # Keep every segment strictly positive so the cumulative time table is increasing.
    return jnp.maximum(duration_s, 1e-6 * params.mean_segment_s), rate


def _split_arrival_key(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    key_segments, key_gaps = jax.random.split(key)
    return key_segments, key_gaps


def _sample_tasks(key: jax.Array, params: WorkloadParams, gap_s: jax.Array) -> jax.Array:
    """Task of each arrival from the mix in force at its arrival time. (N,) int32."""
    arrival_s = jnp.cumsum(gap_s)  # float32 is fine here: it only locates mix boundaries
    num_mixes = params.mix_probs.shape[0]
    mix_index = jnp.minimum(
        jnp.searchsorted(params.mix_end_s, arrival_s, side="right"), num_mixes - 1
    )
    logits = jnp.log(params.mix_probs)[mix_index]  # (N, T); log 0 = -inf is never drawn
    return jax.random.categorical(key, logits).astype(jnp.int32)


def _scheduled(end_s: jax.Array, value: jax.Array, gap_s: jax.Array) -> jax.Array:
    """Value of a cycling (end_s, value) schedule in force at each arrival. (N,) float32."""
    arrival_s = jnp.mod(jnp.cumsum(gap_s), end_s[-1])  # float32: only locates boundaries
    index = jnp.searchsorted(end_s, arrival_s, side="right")
    return value[jnp.minimum(index, value.shape[0] - 1)]


def _make_gap_fn(spec: WorkloadSpec, num_arrivals: int) -> Callable:
    """``gaps(key, params) -> (gap_s, valid)`` for the spec's kind (static dispatch)."""
    shape = (num_arrivals,)
    all_valid = jnp.ones(shape, bool)
    if spec.kind == "poisson":
        return lambda key, p: (
            jax.random.exponential(key, shape) / (p.rate * p.rate_scale),
            all_valid,
        )
    if spec.kind == "gamma":
        # Gamma(shape 1/cv^2, scale cv^2/rate): mean 1/rate, CV = cv.
        return lambda key, p: (
            jax.random.gamma(key, 1.0 / p.cv**2, shape) * p.cv**2 / (p.rate * p.rate_scale),
            all_valid,
        )
    if spec.kind == "piecewise":
        return lambda key, p: (
            _piecewise_gaps(key, p.seg_duration_s, p.seg_rate * p.rate_scale, num_arrivals),
            all_valid,
        )
    if spec.kind == "unpredictable":
        return _make_unpredictable_gaps(num_segments(spec, num_arrivals), num_arrivals)
    return lambda key, p: (p.trace_gap_s / p.rate_scale, p.trace_valid)


def _make_unpredictable_gaps(num_segments: int, num_arrivals: int) -> Callable:
    def gaps(key, params):
        """Draw a random schedule, then arrivals through it."""
        key_segments, key_gaps = _split_arrival_key(key)
        duration_s, rate = _unpredictable_segments(key_segments, params, num_segments)
        return _piecewise_gaps(key_gaps, duration_s, rate, num_arrivals), jnp.ones(
            (num_arrivals,), bool
        )

    return gaps


def make_workload(
    spec: WorkloadSpec, num_tasks: int, num_arrivals: int
) -> tuple[WorkloadParams, Callable[[jax.Array, WorkloadParams], Arrivals]]:
    """Params (vmappable leaves) and a pure ``generate(key, params) -> Arrivals``."""
    _check_sizes(num_tasks, num_arrivals)
    params = _make_params(spec, num_tasks, num_arrivals)
    gap_fn = _make_gap_fn(spec, num_arrivals)
    tasks_from_trace = spec.kind == "trace" and spec.trace_tasks
    dynamic_deadlines = spec.deadline_schedule is not None
    knob_schedule = spec.knob_schedule is not None

    def generate(key: jax.Array, params: WorkloadParams) -> Arrivals:
        """One episode of `num_arrivals` arrivals (pure; jit/vmap-able)."""
        key_arrival, key_task = jax.random.split(key)
        gap_s, valid = gap_fn(key_arrival, params)
        task = params.trace_task if tasks_from_trace else _sample_tasks(key_task, params, gap_s)
        scale = (
            _scheduled(params.deadline_end_s, params.deadline_factor, gap_s)
            if dynamic_deadlines
            else None
        )
        knob = _scheduled(params.knob_end_s, params.knob_value, gap_s) if knob_schedule else None
        return Arrivals(
            gap_s=gap_s.astype(jnp.float32),
            task=task,
            valid=valid,
            deadline_scale=scale,
            knob=knob,
        )

    return params, generate


def fixed_arrivals(times_s, tasks) -> Arrivals:
    """Deterministic toy workload from absolute arrival times and tasks (for hand tests)."""
    times_s = np.asarray(times_s, dtype=np.float64)
    tasks = np.asarray(tasks)
    if times_s.shape != tasks.shape or times_s.ndim != 1:
        raise InputError(
            f"fixed_arrivals: times shape {times_s.shape} and tasks shape "
            f"{tasks.shape}; expected two equal 1-D shapes"
        )
    if tasks.size and (tasks.min() < 0 or not np.issubdtype(tasks.dtype, np.integer)):
        raise InputError(f"fixed_arrivals: tasks {tasks.tolist()}; expected integers >= 0")
    gap_s, valid = traces.trace_to_params(times_s, times_s.shape[0])
    return Arrivals(
        gap_s=jnp.asarray(gap_s), task=jnp.asarray(tasks, jnp.int32), valid=jnp.asarray(valid)
    )


__all__ = [
    "KINDS",
    "WorkloadParams",
    "WorkloadSpec",
    "fixed_arrivals",
    "load_spec_trace",
    "make_workload",
    "mean_rate",
    "num_segments",
    "rate_at",
    "validate_spec",
]
