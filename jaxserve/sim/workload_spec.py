"""Workload specs (docs/spec.md §5): the frozen `WorkloadSpec`, its validation, its rate.

`WorkloadSpec` checks every field on construction (one InputError line naming the first bad
field); `mean_rate` and `load_spec_trace` read a spec without drawing from it. The JAX
generators that draw arrivals from a spec are in `workloads.py`.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from jaxserve.data import BUILTIN_TRACES, builtin_trace
from jaxserve.errors import InputError
from jaxserve.limits import MAX_RATE, MAX_SCALE, MAX_TIME_S, MIN_RATE, MIN_TIME_S
from jaxserve.sim import traces

KINDS = ("poisson", "gamma", "piecewise", "unpredictable", "trace")
MIX_SUM_TOL = 1e-6


@dataclasses.dataclass(frozen=True)
class WorkloadSpec:
    """A workload: arrival process (``kind`` and its fields) plus the task mix."""

    kind: str = "poisson"
    rate: float = 1.0  # poisson/gamma: arrivals/s
    cv: float = 1.0  # gamma: coefficient of variation of the gaps
    schedule: tuple[tuple[float, float], ...] = ()  # piecewise: (duration_s, rate); cycles
    min_rate: float = 1.0  # unpredictable: rates log-uniform in [min_rate, max_rate]
    max_rate: float = 10.0
    mean_segment_s: float = 60.0  # unpredictable: mean exponential segment length
    spike_prob: float = 0.0  # unpredictable: probability a segment is a spike
    spike_mult: float = 1.0  # unpredictable: spike rate multiplier (>= 1)
    rate_scale: float = 1.0  # multiplies every rate (trace: thinning / replication)
    task_mix: tuple[float, ...] | None = None  # stationary probabilities; None = uniform
    mix_schedule: tuple[tuple[float, tuple[float, ...]], ...] | None = None  # (duration_s, mix)
    trace_path: str | None = None
    trace_name: str | None = None  # a shipped trace (jaxserve.data.BUILTIN_TRACES); sets format
    trace_format: str = "maf2019"  # "maf2019" | "timestamps" | "azure2021"
    time_compression: float = 1.0  # trace: divide every time by this
    functions: int | None = None  # maf2019: top-N functions by count; None = all
    trace_seed: int = 0  # trace: seed of within-minute spreading and thinning/replication
    trace_tasks: bool = False  # trace: task = function rank mod num_tasks instead of the mix
    # Dynamic deadlines: (duration_s, factor on every task deadline), cycling like `schedule`.
    deadline_schedule: tuple[tuple[float, float], ...] | None = None
    # Run-time knob of a knob router (docs/knob.md): (duration_s, miss penalty the router is
    # told), cycling like `schedule`; None = the scenario's miss penalty throughout.
    knob_schedule: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self):
        if isinstance(self.trace_name, str) and self.trace_name in BUILTIN_TRACES:
            object.__setattr__(self, "trace_format", BUILTIN_TRACES[self.trace_name][1])
        validate_spec(self)
        _freeze_sequences(self)


def _freeze_sequences(spec: WorkloadSpec) -> None:
    """Store list inputs (e.g. from TOML) as tuples, so specs stay hashable."""
    set_field = lambda name, value: object.__setattr__(spec, name, value)
    set_field("schedule", tuple((float(d), float(r)) for d, r in spec.schedule))
    if spec.task_mix is not None:
        set_field("task_mix", tuple(float(p) for p in spec.task_mix))
    for name in ("deadline_schedule", "knob_schedule"):
        if getattr(spec, name) is not None:
            set_field(name, tuple((float(d), float(f)) for d, f in getattr(spec, name)))
    if spec.mix_schedule is not None:
        set_field(
            "mix_schedule",
            tuple((float(d), tuple(float(p) for p in mix)) for d, mix in spec.mix_schedule),
        )


# ---------------------------------------------------------------------------- validation


def spec_error(field: str, value, expected: str) -> InputError:
    """The one-line error for a bad `WorkloadSpec` field."""
    return InputError(f"WorkloadSpec.{field} = {value!r}: expected {expected}")


def _fail(field: str, value, expected: str):
    raise spec_error(field, value, expected)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def _check_real(field: str, value, low: float, low_open: bool, high: float = math.inf):
    """A finite number in [low, high] (or (low, high] when low_open)."""
    ok = _is_number(value) and math.isfinite(value) and value <= high
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        upper = "" if high == math.inf else f" and <= {high}"
        _fail(field, value, f"a finite number {bound}{upper}")


def _check_mix(field: str, mix) -> None:
    if not isinstance(mix, (tuple, list)) or not mix:
        _fail(field, mix, "a non-empty tuple of task probabilities")
    if not all(_is_number(p) and math.isfinite(p) and p >= 0 for p in mix):
        _fail(field, mix, "probabilities that are finite and >= 0")
    if abs(sum(mix) - 1.0) > MIX_SUM_TOL:
        _fail(field, mix, f"probabilities summing to 1 (sum is {sum(mix):.6g})")


def _check_schedule(spec: WorkloadSpec) -> None:
    if not isinstance(spec.schedule, (tuple, list)):
        _fail("schedule", spec.schedule, "a tuple of (duration_s, rate) pairs")
    for i, entry in enumerate(spec.schedule):
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            _fail(f"schedule[{i}]", entry, "a (duration_s, rate) pair")
        _check_real(f"schedule[{i}].duration_s", entry[0], 0.0, True, MAX_TIME_S)
        _check_real(f"schedule[{i}].rate", entry[1], 0.0, False, MAX_RATE)
    if spec.kind == "piecewise" and not any(r > 0 for _, r in spec.schedule):
        _fail("schedule", spec.schedule, "at least one (duration_s, rate) with rate > 0")


def _check_mix_schedule(schedule) -> None:
    if schedule is None:
        return
    if not isinstance(schedule, (tuple, list)) or not schedule:
        _fail("mix_schedule", schedule, "None or a non-empty tuple of (duration_s, mix)")
    for i, entry in enumerate(schedule):
        if not isinstance(entry, (tuple, list)) or len(entry) != 2:
            _fail(f"mix_schedule[{i}]", entry, "a (duration_s, mix) pair")
        _check_real(f"mix_schedule[{i}].duration_s", entry[0], 0.0, True)
        _check_mix(f"mix_schedule[{i}].mix", entry[1])
    if len({len(mix) for _, mix in schedule}) > 1:
        _fail("mix_schedule", schedule, "mixes that all have the same number of tasks")


def _check_trace_fields(spec: WorkloadSpec) -> None:
    if spec.trace_format not in traces.TRACE_FORMATS:
        _fail("trace_format", spec.trace_format, f"one of {traces.TRACE_FORMATS}")
    _check_real("time_compression", spec.time_compression, 1 / MAX_SCALE, False, MAX_SCALE)
    if spec.functions is not None and (
        not isinstance(spec.functions, int)
        or isinstance(spec.functions, bool)
        or spec.functions < 1
    ):
        _fail("functions", spec.functions, "None (all functions) or an integer >= 1")
    if not isinstance(spec.trace_seed, int) or isinstance(spec.trace_seed, bool):
        _fail("trace_seed", spec.trace_seed, "an integer")
    name = spec.trace_name
    if name is not None and not (isinstance(name, str) and name in BUILTIN_TRACES):
        _fail("trace_name", spec.trace_name, f"one of {sorted(BUILTIN_TRACES)}")
    if spec.trace_name is not None and spec.trace_path is not None:
        _fail("trace_path", spec.trace_path, "None when trace_name is set (give one of the two)")
    has_path = isinstance(spec.trace_path, (str, Path))
    if spec.kind == "trace" and not (has_path or spec.trace_name is not None):
        _fail("trace_path", spec.trace_path, "the path of a trace file (or a trace_name)")
    if spec.trace_tasks and spec.trace_format == "timestamps":
        _fail("trace_tasks", True, "False for 'timestamps' traces (they have no function id)")


def validate_spec(spec: WorkloadSpec) -> None:
    """Raise InputError naming the first bad field of ``spec``."""
    if spec.kind not in KINDS:
        _fail("kind", spec.kind, f"one of {KINDS}")
    _check_real("rate", spec.rate, MIN_RATE, False, MAX_RATE)
    _check_real("cv", spec.cv, 0.0, True)
    _check_real("min_rate", spec.min_rate, MIN_RATE, False, MAX_RATE)
    _check_real("max_rate", spec.max_rate, spec.min_rate, False, MAX_RATE)
    _check_real("mean_segment_s", spec.mean_segment_s, MIN_TIME_S, False, MAX_TIME_S)
    _check_real("spike_prob", spec.spike_prob, 0.0, False, 1.0)
    _check_real("spike_mult", spec.spike_mult, 1.0, False)
    _check_real("rate_scale", spec.rate_scale, 0.0, True, MAX_SCALE)
    _check_schedule(spec)
    if spec.task_mix is not None:
        _check_mix("task_mix", spec.task_mix)
    _check_mix_schedule(spec.mix_schedule)
    if spec.task_mix is not None and spec.mix_schedule is not None:
        _fail("mix_schedule", "(set)", "None when task_mix is set (give one of the two)")
    _check_trace_fields(spec)
    _check_value_schedule("deadline_schedule", spec.deadline_schedule, "factor", True)
    _check_value_schedule("knob_schedule", spec.knob_schedule, "knob", False)


def _check_value_schedule(name: str, schedule, value: str, positive: bool) -> None:
    """None or a non-empty list of (duration_s > 0, value >= 0 (> 0 if `positive`))."""
    if schedule is None:
        return
    if not isinstance(schedule, tuple | list) or len(schedule) == 0:
        _fail(name, schedule, f"None or a non-empty list of (duration_s, {value})")
    for i, entry in enumerate(schedule):
        if not isinstance(entry, tuple | list) or len(entry) != 2:
            _fail(f"{name}[{i}]", entry, f"a (duration_s, {value}) pair")
        _check_real(f"{name}[{i}].duration_s", entry[0], 0.0, True)
        _check_real(f"{name}[{i}].{value}", entry[1], 0.0, positive)


# ---------------------------------------------------------------------------- offered rate


def _log_uniform_mean(low: float, high: float) -> float:
    return low if high == low else (high - low) / math.log(high / low)


def load_spec_trace(spec: WorkloadSpec) -> traces.Trace:
    """The trace of a ``kind='trace'`` spec, rescaled as the spec says (float64 numpy)."""
    path = spec.trace_path if spec.trace_name is None else builtin_trace(spec.trace_name)[0]
    return traces.load_trace(
        path,
        spec.trace_format,
        spec.functions,
        spec.trace_seed,
        spec.time_compression,
        spec.rate_scale,
    )


def mean_rate(spec: WorkloadSpec) -> float:
    """Long-run time-average offered rate (arrivals/s)."""
    scale = spec.rate_scale
    if spec.kind in ("poisson", "gamma"):
        return spec.rate * scale
    if spec.kind == "piecewise":
        duration_s = sum(d for d, _ in spec.schedule)
        return scale * sum(d * r for d, r in spec.schedule) / duration_s
    if spec.kind == "unpredictable":
        spikes = 1.0 + spec.spike_prob * (spec.spike_mult - 1.0)
        return scale * _log_uniform_mean(spec.min_rate, spec.max_rate) * spikes
    return load_spec_trace(spec).mean_rate()
