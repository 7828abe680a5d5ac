"""The Scenario record (docs/spec.md §6): models, tasks, latency, deadlines, rules; validation.

Field names in error messages follow the TOML schema of docs/scenarios.md:
`models[k].latency_s[b]` is `Scenario.latency_s[k][b]`, `tasks[t].quality[k]` is
`Scenario.quality[t][k]`, `tasks[t].deadline_s` is `Scenario.deadline_s[t]`. Presets and
`get_scenario` are in `scenarios.py`, TOML in `scenario_toml.py`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxserve.errors import InputError
from jaxserve.limits import (
    MAX_BATCH,
    MAX_NOISE_SIGMA,
    MAX_PENALTY,
    MAX_QUEUE_CAPACITY,
    MAX_RATE,
    MAX_REPLICAS,
    MAX_SLOTS,
    MAX_TIME_S,
    MIN_RATE,
    MIN_TIME_S,
)
from jaxserve.sim.types import NEVER_S, SimConfig, SimParams, to_jnp_tuple
from jaxserve.sim.workloads import WorkloadSpec

BATCHING_RULES = ("max", "deadline")
DEADLINE_KINDS = ("hard", "soft")
DECAYS = ("linear", "exponential")
OBS_MODES = ("full", "paper")
QUALITY_CSV = "quality/opt_lm_eval_zero_shot.csv"
PACKAGE_SCENARIO_DIR = Path(__file__).resolve().parents[1] / "scenarios"

# Presets (docs/latency-model.md explains every number).
PAPER_MODELS = ("opt-125m", "opt-1.3b", "opt-6.7b")
PAPER_TASKS = ("lambada_openai", "piqa", "arc_easy", "sciq")
PAPER_MAX_BATCH = 16
PAPER_QUEUE_CAPACITY = 32
# opt-a100x4 per model (125m, 1.3b, 6.7b): OPT-6.7B's batch of 8 already takes 68.8 ms,
# past the 60 ms deadline, so larger batches could never be on time; 16 queued requests per
# model are more than any model can finish within one deadline (see docs/latency-model.md).
A100X4_MAX_BATCH = (16, 16, 8)
A100X4_QUEUE_CAPACITY = 16
# Hard deadline: 5x OPT-6.7B's batch-of-1 latency (11.3 ms) rounded up to 10 ms.
PAPER_DEADLINE_S = 0.060
DEADLINE_FACTOR = 5.0
DEADLINE_ROUND_S = 0.010
PAPER_REFERENCE_RATE = 200.0  # near the OPT-6.7B pair's on-time capacity (≈229 req/s)
PAPER_RATE_WINDOW_S = 1.0
DEFAULT_WORKLOAD = WorkloadSpec(kind="poisson", rate=100.0)  # about half the 6.7B capacity


def fail_field(field: str, value: Any, expected: str):
    """Raise the one-line docs/spec.md §8 error: field, value, expectation."""
    raise InputError(f"{field} = {value!r}: expected {expected}")


def _is_number(value: Any) -> bool:
    """True for int/float (not bool) that is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_number(
    field: str, value: Any, low: float = 0.0, strict: bool = False, high: float | None = None
) -> float:
    """A finite number ≥ low (> low if strict) and ≤ high; returns it as float."""
    bad = not _is_number(value) or (value <= low if strict else value < low)
    if bad or (high is not None and value > high):
        rel = ">" if strict else "≥"
        upper = f" and ≤ {high}" if high is not None else ""
        fail_field(field, value, f"a finite number {rel} {low}{upper}")
    return float(value)


def check_count(field: str, value: Any, high: int) -> int:
    """An integer in [1, high]."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        fail_field(field, value, f"an integer in [1, {high}]")
    return value


def _check_time(field: str, value: Any) -> float:
    """Seconds in [MIN_TIME_S, MAX_TIME_S]: representable in the simulator's float32 clock."""
    return _check_number(field, value, MIN_TIME_S, high=MAX_TIME_S)


def _check_enum(field: str, value: Any, allowed: Sequence[str]) -> str:
    """One of the allowed strings."""
    if value not in allowed:
        fail_field(field, value, f"one of {list(allowed)}")
    return value


def check_len(field: str, seq: Any, n: int, what: str):
    """A sequence of exactly n entries."""
    if not isinstance(seq, list | tuple) or len(seq) != n:
        size = len(seq) if isinstance(seq, list | tuple) else type(seq).__name__
        fail_field(f"len({field})", size, f"{n} ({what})")


def check_latency_profile(field: str, latency_s: Sequence[Any]) -> tuple[float, ...]:
    """Non-empty, positive, finite and non-decreasing in batch size."""
    if not isinstance(latency_s, list | tuple) or not latency_s:
        fail_field(field, latency_s, "a non-empty list of seconds, one per batch size 1..max_batch")
    if len(latency_s) > MAX_BATCH:
        fail_field(f"len({field})", len(latency_s), f"at most {MAX_BATCH} batch sizes")
    values = tuple(_check_time(f"{field}[{b}]", x) for b, x in enumerate(latency_s))
    for b in range(1, len(values)):
        if values[b] < values[b - 1]:
            fail_field(
                f"{field}[{b}]", values[b], f"≥ {values[b - 1]!r} (non-decreasing in batch size)"
            )
    return values


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Models, replicas, quality, latency profiles, tasks, deadlines and default workload."""

    name: str
    model_names: tuple[str, ...]
    task_names: tuple[str, ...]
    quality: tuple[tuple[float, ...], ...]  # [t][k] in [0, 1]
    latency_s: tuple[tuple[float, ...], ...]  # [k][b - 1]; max_batch[k] = len(latency_s[k])
    replicas: tuple[int, ...]
    queue_capacity: tuple[int, ...]
    deadline_s: tuple[float, ...]  # per task, after arrival
    grace_s: tuple[float, ...] = ()  # per task; () = deadline_s
    max_wait_s: tuple[float, ...] = ()  # per model; () = all 0
    deadline_kind: str = "hard"
    decay: str = "linear"
    miss_penalty: float = 0.0
    batching: str = "deadline"
    drop_expired: bool | None = None  # None = (deadline_kind == "hard")
    allow_reject: bool = False
    noise_sigma: float = 0.0
    reference_rate: float = PAPER_REFERENCE_RATE
    rate_window_s: float = PAPER_RATE_WINDOW_S
    obs_mode: str = "full"
    workload: WorkloadSpec = DEFAULT_WORKLOAD
    description: str = ""

    def __post_init__(self):
        _normalise(self)
        validate_scenario(self)
        _coerce_floats(self)

    @property
    def num_models(self) -> int:
        return len(self.model_names)

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    @property
    def max_batch(self) -> tuple[int, ...]:
        return tuple(len(lat) for lat in self.latency_s)

    def sim_config(self, workload: WorkloadSpec | None = None, **overrides) -> SimConfig:
        """Static simulator config (shapes and code paths) for running `workload`.

        `workload`: the one the config will run (default: the scenario's own); it decides
        whether deadline order is FIFO order (`fifo_deadlines`). `overrides`: other
        SimConfig fields (`emit_records=...`, `observe_deadline=...`).
        """
        observe_deadline = overrides.get("observe_deadline", False)
        fifo = fifo_deadlines(self.deadline_s, workload or self.workload, observe_deadline)
        config = SimConfig(
            num_tasks=self.num_tasks,
            max_batch=self.max_batch,
            replicas=self.replicas,
            queue_capacity=self.queue_capacity,
            batching=self.batching,
            deadline_kind=self.deadline_kind,
            decay=self.decay,
            drop_expired=bool(self.drop_expired),
            allow_reject=self.allow_reject,
            obs_mode=self.obs_mode,
            service_noise=self.noise_sigma > 0,
            fifo_deadlines=fifo,
            max_wait=any(w > 0 for w in self.max_wait_s),
        )
        return dataclasses.replace(config, **overrides)

    def sim_params(self) -> SimParams:
        """Numeric simulator params; latency padded with NEVER_S to the largest max_batch."""
        pad = max(self.max_batch)
        latency = [list(lat) + [NEVER_S] * (pad - len(lat)) for lat in self.latency_s]
        return SimParams(
            quality=to_jnp_tuple(self.quality),
            latency_s=to_jnp_tuple(latency),
            deadline_s=to_jnp_tuple(self.deadline_s),
            grace_s=to_jnp_tuple(self.grace_s),
            max_wait_s=to_jnp_tuple(self.max_wait_s),
            miss_penalty=to_jnp_tuple(self.miss_penalty),
            noise_sigma=to_jnp_tuple(self.noise_sigma),
            reference_rate=to_jnp_tuple(self.reference_rate),
            rate_window_s=to_jnp_tuple(self.rate_window_s),
            replicas=to_jnp_tuple(self.replicas, np.int32),
        )

    def capacity_per_model(self) -> np.ndarray:
        """μ_k = replicas·max{b / latency[k,b] : latency[k,b] ≤ min deadline}, req/s.

        See docs/spec.md §4.
        """
        return self.capacity_at(min(self.deadline_s))

    def capacity_at(self, deadline_s: float) -> np.ndarray:
        """μ_k(D): model k's on-time throughput when every request has deadline D, req/s (K,)."""
        mu = [
            r * max((b / lat for b, lat in enumerate(profile, 1) if lat <= deadline_s), default=0.0)
            for r, profile in zip(self.replicas, self.latency_s, strict=True)
        ]
        return np.asarray(mu, dtype=np.float64)

    def capacity_per_task(self, deadline_scale: float = 1.0) -> np.ndarray:
        """μ_k(D_t · scale) for every task t and model k, req/s; shape (T, K)."""
        return np.stack([self.capacity_at(d * deadline_scale) for d in self.deadline_s])

    def task_mix(self) -> np.ndarray:
        """The default workload's task mix, uniform when not given; shape (T,)."""
        if self.workload.task_mix is not None:
            return np.asarray(self.workload.task_mix, np.float64)
        return np.full(self.num_tasks, 1.0 / self.num_tasks)

    def peak_quality(self, task_mix: Sequence[float] | None = None) -> float:
        """Σ_t p_t max_k quality[t, k]: performance if every request got its best model."""
        mix = self.task_mix() if task_mix is None else np.asarray(task_mix, np.float64)
        return float(mix @ np.max(np.asarray(self.quality), axis=1))


def _as_tuple(value: Any, depth: int = 1) -> Any:
    """Lists/tuples/arrays → (nested) tuples of Python scalars; anything else unchanged."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        return value
    return tuple(_as_tuple(v, depth - 1) if depth > 1 else v for v in value)


def _normalise(s: Scenario):
    """Fill defaults that depend on other fields and turn sequences into tuples."""
    put = lambda name, value: object.__setattr__(s, name, value)  # frozen dataclass
    for field in ("model_names", "task_names", "replicas", "queue_capacity", "deadline_s"):
        put(field, _as_tuple(getattr(s, field)))
    put("grace_s", _as_tuple(s.grace_s) or s.deadline_s)
    put("max_wait_s", _as_tuple(s.max_wait_s) or (0.0,) * len(s.model_names))
    put("quality", _as_tuple(s.quality, depth=2))
    put("latency_s", _as_tuple(s.latency_s, depth=2))
    if s.drop_expired is None:
        put("drop_expired", s.deadline_kind == "hard")


def _coerce_floats(s: Scenario):
    """After validation: numeric fields as Python floats, so TOML ints compare equal."""
    put = lambda name, value: object.__setattr__(s, name, value)
    for field in ("deadline_s", "grace_s", "max_wait_s"):
        put(field, tuple(float(x) for x in getattr(s, field)))
    for field in ("quality", "latency_s"):
        put(field, tuple(tuple(float(x) for x in row) for row in getattr(s, field)))
    for field in ("miss_penalty", "noise_sigma", "reference_rate", "rate_window_s"):
        put(field, float(getattr(s, field)))


def fifo_deadlines(deadline_s, workload: WorkloadSpec, observe_deadline: bool) -> bool:
    """Whether deadline order is arrival order, so the simulators may take the FIFO fast path.

    True only when every task has the same deadline and every request the same factor on it:
    not under a workload deadline schedule, nor with per-request factors drawn for a router
    that observes its deadline (docs/simulator.md). The one place this is decided.
    """
    same_deadline = len(set(deadline_s)) == 1
    return same_deadline and workload.deadline_schedule is None and not observe_deadline


def _check_names(field: str, names: Sequence[Any]):
    """Non-empty list of distinct non-empty strings."""
    if not names:
        fail_field(field, list(names), "at least one entry")
    for i, n in enumerate(names):
        if not isinstance(n, str) or not n:
            fail_field(f"{field}[{i}]", n, "a non-empty string")
    if len(set(names)) != len(names):
        fail_field(field, list(names), "distinct names")


def _check_models(s: Scenario):
    """Per-model fields: shapes, latency profiles, replicas, capacities, max_wait."""
    k = s.num_models
    for field in ("latency_s", "replicas", "queue_capacity", "max_wait_s"):
        check_len(field, getattr(s, field), k, f"one per model, models = {list(s.model_names)}")
    for i in range(k):
        check_latency_profile(f"models[{i}].latency_s", s.latency_s[i])
        check_count(f"models[{i}].replicas", s.replicas[i], MAX_REPLICAS)
        check_count(f"models[{i}].queue_capacity", s.queue_capacity[i], MAX_QUEUE_CAPACITY)
        _check_number(f"models[{i}].max_wait_s", s.max_wait_s[i], high=MAX_TIME_S)
        slots = s.queue_capacity[i] + s.replicas[i] * len(s.latency_s[i])
        if slots > MAX_SLOTS:
            fail_field(
                f"models[{i}]",
                f"{slots} slots",
                f"queue_capacity + replicas x max_batch ≤ {MAX_SLOTS}",
            )


def _check_tasks(s: Scenario):
    """Per-task fields: shapes, quality in [0, 1], positive deadlines and grace."""
    t, k = s.num_tasks, s.num_models
    for field in ("quality", "deadline_s", "grace_s"):
        check_len(field, getattr(s, field), t, f"one per task, tasks = {list(s.task_names)}")
    for i in range(t):
        check_len(f"tasks[{i}].quality", s.quality[i], k, f"one per model, {k} models")
        for j, q in enumerate(s.quality[i]):
            _check_number(f"tasks[{i}].quality[{j}]", q, high=1.0)
        _check_time(f"tasks[{i}].deadline_s", s.deadline_s[i])
        _check_time(f"tasks[{i}].grace_s", s.grace_s[i])


def _check_workload(w: WorkloadSpec, num_tasks: int):
    """A WorkloadSpec (validated by itself) whose task mixes have one entry per task."""
    if not isinstance(w, WorkloadSpec):
        fail_field("workload", w, "a jaxserve.sim.workloads.WorkloadSpec")
    mixes = [w.task_mix] if w.task_mix is not None else []
    mixes += [mix for _, mix in w.mix_schedule or ()]
    for mix in mixes:
        check_len("workload task mix", mix, num_tasks, "one probability per task")


def validate_scenario(s: Scenario):
    """Raise InputError (one line: field, value, expectation) on the first problem found."""
    if not isinstance(s.name, str) or not s.name:
        fail_field("name", s.name, "a non-empty string")
    _check_names("models[].name", s.model_names)
    _check_names("tasks[].name", s.task_names)
    _check_models(s)
    _check_tasks(s)
    _check_enum("deadline_kind", s.deadline_kind, DEADLINE_KINDS)
    _check_enum("decay", s.decay, DECAYS)
    _check_enum("batching", s.batching, BATCHING_RULES)
    _check_enum("obs_mode", s.obs_mode, OBS_MODES)
    for flag in ("drop_expired", "allow_reject"):
        if not isinstance(getattr(s, flag), bool):
            fail_field(flag, getattr(s, flag), "true or false")
    _check_number("miss_penalty", s.miss_penalty, high=MAX_PENALTY)
    _check_number("noise_sigma", s.noise_sigma, high=MAX_NOISE_SIGMA)
    _check_number("reference_rate", s.reference_rate, MIN_RATE, high=MAX_RATE)
    _check_time("rate_window_s", s.rate_window_s)
    _check_workload(s.workload, s.num_tasks)


# --- data files -----------------------------------------------------------------------------
