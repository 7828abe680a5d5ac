"""Scenarios (docs/spec.md §6): frozen model/task/latency/deadline configurations, presets and TOML.

Field names in error messages follow the TOML schema of docs/scenarios.md:
`models[k].latency_s[b]` is `Scenario.latency_s[k][b]`, `tasks[t].quality[k]` is
`Scenario.quality[t][k]`, `tasks[t].deadline_s` is `Scenario.deadline_s[t]`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxserve.data import data_path
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
from jaxserve.sim import roofline
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


def _fail(field: str, value: Any, expected: str):
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
        _fail(field, value, f"a finite number {rel} {low}{upper}")
    return float(value)


def _check_count(field: str, value: Any, high: int) -> int:
    """An integer in [1, high]."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        _fail(field, value, f"an integer in [1, {high}]")
    return value


def _check_time(field: str, value: Any) -> float:
    """Seconds in [MIN_TIME_S, MAX_TIME_S]: representable in the simulator's float32 clock."""
    return _check_number(field, value, MIN_TIME_S, high=MAX_TIME_S)


def _check_enum(field: str, value: Any, allowed: Sequence[str]) -> str:
    """One of the allowed strings."""
    if value not in allowed:
        _fail(field, value, f"one of {list(allowed)}")
    return value


def _check_len(field: str, seq: Any, n: int, what: str):
    """A sequence of exactly n entries."""
    if not isinstance(seq, list | tuple) or len(seq) != n:
        size = len(seq) if isinstance(seq, list | tuple) else type(seq).__name__
        _fail(f"len({field})", size, f"{n} ({what})")


def check_latency_profile(field: str, latency_s: Sequence[Any]) -> tuple[float, ...]:
    """Non-empty, positive, finite and non-decreasing in batch size."""
    if not isinstance(latency_s, list | tuple) or not latency_s:
        _fail(field, latency_s, "a non-empty list of seconds, one per batch size 1..max_batch")
    if len(latency_s) > MAX_BATCH:
        _fail(f"len({field})", len(latency_s), f"at most {MAX_BATCH} batch sizes")
    values = tuple(_check_time(f"{field}[{b}]", x) for b, x in enumerate(latency_s))
    for b in range(1, len(values)):
        if values[b] < values[b - 1]:
            _fail(f"{field}[{b}]", values[b], f"≥ {values[b - 1]!r} (non-decreasing in batch size)")
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
        _fail(field, list(names), "at least one entry")
    for i, n in enumerate(names):
        if not isinstance(n, str) or not n:
            _fail(f"{field}[{i}]", n, "a non-empty string")
    if len(set(names)) != len(names):
        _fail(field, list(names), "distinct names")


def _check_models(s: Scenario):
    """Per-model fields: shapes, latency profiles, replicas, capacities, max_wait."""
    k = s.num_models
    for field in ("latency_s", "replicas", "queue_capacity", "max_wait_s"):
        _check_len(field, getattr(s, field), k, f"one per model, models = {list(s.model_names)}")
    for i in range(k):
        check_latency_profile(f"models[{i}].latency_s", s.latency_s[i])
        _check_count(f"models[{i}].replicas", s.replicas[i], MAX_REPLICAS)
        _check_count(f"models[{i}].queue_capacity", s.queue_capacity[i], MAX_QUEUE_CAPACITY)
        _check_number(f"models[{i}].max_wait_s", s.max_wait_s[i], high=MAX_TIME_S)
        slots = s.queue_capacity[i] + s.replicas[i] * len(s.latency_s[i])
        if slots > MAX_SLOTS:
            _fail(
                f"models[{i}]",
                f"{slots} slots",
                f"queue_capacity + replicas x max_batch ≤ {MAX_SLOTS}",
            )


def _check_tasks(s: Scenario):
    """Per-task fields: shapes, quality in [0, 1], positive deadlines and grace."""
    t, k = s.num_tasks, s.num_models
    for field in ("quality", "deadline_s", "grace_s"):
        _check_len(field, getattr(s, field), t, f"one per task, tasks = {list(s.task_names)}")
    for i in range(t):
        _check_len(f"tasks[{i}].quality", s.quality[i], k, f"one per model, {k} models")
        for j, q in enumerate(s.quality[i]):
            _check_number(f"tasks[{i}].quality[{j}]", q, high=1.0)
        _check_time(f"tasks[{i}].deadline_s", s.deadline_s[i])
        _check_time(f"tasks[{i}].grace_s", s.grace_s[i])


def _check_workload(w: WorkloadSpec, num_tasks: int):
    """A WorkloadSpec (validated by itself) whose task mixes have one entry per task."""
    if not isinstance(w, WorkloadSpec):
        _fail("workload", w, "a jaxserve.sim.workloads.WorkloadSpec")
    mixes = [w.task_mix] if w.task_mix is not None else []
    mixes += [mix for _, mix in w.mix_schedule or ()]
    for mix in mixes:
        _check_len("workload task mix", mix, num_tasks, "one probability per task")


def validate_scenario(s: Scenario):
    """Raise InputError (one line: field, value, expectation) on the first problem found."""
    if not isinstance(s.name, str) or not s.name:
        _fail("name", s.name, "a non-empty string")
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
            _fail(flag, getattr(s, flag), "true or false")
    _check_number("miss_penalty", s.miss_penalty, high=MAX_PENALTY)
    _check_number("noise_sigma", s.noise_sigma, high=MAX_NOISE_SIGMA)
    _check_number("reference_rate", s.reference_rate, MIN_RATE, high=MAX_RATE)
    _check_time("rate_window_s", s.rate_window_s)
    _check_workload(s.workload, s.num_tasks)


# --- data files -----------------------------------------------------------------------------


def read_quality_csv(path: Path | None = None) -> dict[str, dict[str, float]]:
    """quality[task][model] from the shipped lm-eval accuracy CSV (jaxserve/data/quality/)."""
    path = path or data_path(QUALITY_CSV)
    if not path.is_file():
        _fail("quality csv", str(path), "an existing CSV file")
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
            _fail("task", task, f"one of the quality csv tasks {sorted(table)}")
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
        _fail(f"{path}: latency_s", None, "a list of seconds per batch size")
    latency = check_latency_profile(f"{path}: latency_s", data["latency_s"])
    sizes = data.get("batch_sizes") or list(range(1, len(latency) + 1))
    _check_len(f"{path}: batch_sizes", sizes, len(latency), "one per latency_s entry")
    if (
        any(not isinstance(b, int) or isinstance(b, bool) for b in sizes)
        or sizes[0] != 1
        or any(b2 <= b1 for b1, b2 in zip(sizes, sizes[1:], strict=False))
    ):
        _fail(f"{path}: batch_sizes", sizes, "strictly increasing integers starting at 1")
    grid = np.arange(1, sizes[-1] + 1)
    return tuple(float(x) for x in np.interp(grid, sizes, latency))


# --- built-in scenarios ---------------------------------------------------------------------


def roofline_deadline_s(latency_s: Sequence[Sequence[float]]) -> float:
    """Default hard deadline: DEADLINE_FACTOR × the slowest model's batch-of-1 latency, rounded."""
    slowest = max(profile[0] for profile in latency_s)
    return roofline.round_up(DEADLINE_FACTOR * slowest, DEADLINE_ROUND_S)


def zoo_scenario(
    model_names: Sequence[str],
    task_names: Sequence[str] = PAPER_TASKS,
    replicas: Sequence[int] | None = None,
    hardware: str = "a100",
    tokens_per_request: int = roofline.DEFAULT_TOKENS_PER_REQUEST,
    max_batch: int | Sequence[int] = PAPER_MAX_BATCH,
    queue_capacity: int | Sequence[int] = PAPER_QUEUE_CAPACITY,
    deadline_s: float | None = None,
    quality: Sequence[Sequence[float]] | None = None,
    name: str | None = None,
    **overrides: Any,
) -> Scenario:
    """A roofline scenario for any OPT sizes (quality interpolated where not measured).

    `max_batch` and `queue_capacity` are one number for every model or one per model.
    """
    k = len(model_names)
    per_model = lambda v: tuple(v) if isinstance(v, Sequence) else (v,) * k
    latency = tuple(
        roofline.latency_profile(m, b, hardware, tokens_per_request)
        for m, b in zip(model_names, per_model(max_batch), strict=True)
    )
    deadline = roofline_deadline_s(latency) if deadline_s is None else deadline_s
    return Scenario(
        name=name or f"opt-zoo-{k}-{hardware}",
        model_names=tuple(model_names),
        task_names=tuple(task_names),
        quality=tuple(quality) if quality is not None else opt_quality(task_names, model_names),
        latency_s=latency,
        replicas=tuple(replicas or (1,) * k),
        queue_capacity=per_model(queue_capacity),
        deadline_s=(deadline,) * len(task_names),
        description=f"roofline {hardware}, {tokens_per_request}-token prompt scoring",
        **overrides,
    )


def opt_a100x4() -> Scenario:
    """The default, paper-like scenario: OPT-125M/1.3B/6.7B on 4 A100s (replicas 1, 1, 2)."""
    return zoo_scenario(
        PAPER_MODELS,
        replicas=(1, 1, 2),
        max_batch=A100X4_MAX_BATCH,
        queue_capacity=A100X4_QUEUE_CAPACITY,
        deadline_s=PAPER_DEADLINE_S,
        name="opt-a100x4",
        workload=DEFAULT_WORKLOAD,
    )


def opt_a100x8_large() -> Scenario:
    """The 'double the GPUs' baseline: OPT-6.7B alone on 8 A100s."""
    return zoo_scenario(
        ("opt-6.7b",),
        replicas=(8,),
        max_batch=8,
        queue_capacity=64,
        deadline_s=PAPER_DEADLINE_S,
        name="opt-a100x8-large",
        workload=DEFAULT_WORKLOAD,
    )


def equal_hardware(scenario: Scenario, model: int, gpus: int | None = None) -> Scenario:
    """Model `model` alone on the scenario's GPUs (one replica per GPU; default: as many).

    The static baseline on equal hardware (docs/results.md): same latency profile, quality
    column, deadlines and rules; queue capacity per replica as in `scenario`.
    """
    gpus = sum(scenario.replicas) if gpus is None else gpus
    per_replica = -(-scenario.queue_capacity[model] // scenario.replicas[model])
    name = scenario.model_names[model]
    return dataclasses.replace(
        scenario,
        name=f"{name}-x{gpus}",
        model_names=(name,),
        quality=tuple((row[model],) for row in scenario.quality),
        latency_s=(scenario.latency_s[model],),
        replicas=(gpus,),
        queue_capacity=(per_replica * gpus,),
        max_wait_s=scenario.max_wait_s[model : model + 1],
        description=f"{display_name(name)} x{gpus} GPUs: {scenario.name}'s model alone",
    )


def with_miss_penalty(scenario: Scenario, penalty: float | None) -> Scenario:
    """`scenario` with its miss penalty replaced (None: unchanged); validated as any field."""
    if penalty is None or penalty == scenario.miss_penalty:
        return scenario
    return dataclasses.replace(scenario, miss_penalty=penalty)


def display_name(model: str) -> str:
    """'opt-6.7b' -> 'OPT-6.7B' (names as people write them)."""
    return model.upper() if model.startswith("opt-") else model


BUILTIN_SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "opt-a100x4": opt_a100x4,
    "opt-a100x8-large": opt_a100x8_large,
    **{
        f"{m}-x4": (lambda k=k: equal_hardware(opt_a100x4(), k)) for k, m in enumerate(PAPER_MODELS)
    },
}
DEFAULT_SCENARIO = "opt-a100x4"


def list_scenarios() -> list[str]:
    """Built-in names: code presets plus TOML files shipped in jaxserve/scenarios/."""
    shipped = sorted(p.stem for p in PACKAGE_SCENARIO_DIR.glob("*.toml"))
    return list(BUILTIN_SCENARIOS) + [n for n in shipped if n not in BUILTIN_SCENARIOS]


def get_scenario(name_or_path: str | Path = DEFAULT_SCENARIO) -> Scenario:
    """A built-in scenario by name, a shipped TOML by name, or a TOML file by path."""
    key = str(name_or_path)
    if key in BUILTIN_SCENARIOS:
        return BUILTIN_SCENARIOS[key]()
    shipped = PACKAGE_SCENARIO_DIR / f"{key}.toml"
    if shipped.is_file():
        return load_scenario_toml(shipped)
    if Path(key).is_file():
        return load_scenario_toml(key)
    return _fail("scenario", key, f"a built-in name {list_scenarios()} or a path to a .toml file")


# --- TOML -----------------------------------------------------------------------------------

_TOP_KEYS = {
    "name",
    "description",
    "deadline_kind",
    "decay",
    "miss_penalty",
    "batching",
    "drop_expired",
    "allow_reject",
    "noise_sigma",
    "reference_rate",
    "rate_window_s",
    "obs_mode",
    "workload",
    "models",
    "tasks",
}
_MODEL_KEYS = {
    "name",
    "replicas",
    "queue_capacity",
    "max_wait_s",
    "latency_s",
    "latency_profile",
    "max_batch",
}
_TASK_KEYS = {"name", "deadline_s", "grace_s", "quality"}
DEFAULT_QUEUE_PER_BATCH = 2  # queue_capacity default = 2 × max_batch


def _check_keys(where: str, table: Any, allowed: set[str], required: Sequence[str] = ()):
    """A table with only known keys and all required ones."""
    if not isinstance(table, dict):
        _fail(where, table, "a table")
    for key in table:
        if key not in allowed:
            _fail(f"unknown key in {where}", key, f"one of {sorted(allowed)}")
    for key in required:
        if key not in table:
            _fail(f"{where}.{key}", None, "a value (required)")


def _model_latency(where: str, m: dict, base: Path) -> tuple[float, ...]:
    """Inline latency_s, or a profile JSON (path relative to the TOML), cut to max_batch."""
    if ("latency_s" in m) == ("latency_profile" in m):
        _fail(f"{where}.latency_s / latency_profile", None, "exactly one of the two")
    if "latency_s" in m:
        latency = check_latency_profile(f"{where}.latency_s", m["latency_s"])
    else:
        latency = load_latency_profile(base / str(m["latency_profile"]))
    if "max_batch" in m:
        b = _check_count(f"{where}.max_batch", m["max_batch"], MAX_BATCH)
        if b > len(latency):
            _fail(f"{where}.max_batch", b, f"≤ {len(latency)} (the profile's length)")
        latency = latency[:b]
    return latency


def _task_quality(where: str, q: Any, model_names: Sequence[str]) -> tuple[Any, ...]:
    """quality as a list in model order, or a table keyed by model name."""
    if isinstance(q, dict):
        _check_keys(f"{where}.quality", q, set(model_names), model_names)
        return tuple(q[m] for m in model_names)
    if not isinstance(q, list):
        _fail(f"{where}.quality", q, "a list (one per model) or a table {model = value}")
    return tuple(q)


def _workload_from_toml(w: Any, base_dir: Path) -> WorkloadSpec:
    """[workload] → WorkloadSpec: its field names, defaults from DEFAULT_WORKLOAD, tuples."""
    fields = {f.name for f in dataclasses.fields(WorkloadSpec)}
    _check_keys("[workload]", w, fields)
    w = {k: _freeze(v) for k, v in w.items()}
    if isinstance(w.get("trace_path"), str):
        w["trace_path"] = str(base_dir / w["trace_path"])  # relative to the TOML file
    return dataclasses.replace(DEFAULT_WORKLOAD, **w)


def _freeze(value: Any) -> Any:
    """Nested lists → nested tuples (hashable, frozen)."""
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def scenario_from_dict(data: dict, base_dir: Path = Path("."), default_name: str = "scenario"):
    """Build a Scenario from the parsed TOML schema (docs/scenarios.md)."""
    _check_keys("scenario", data, _TOP_KEYS, ("models", "tasks"))
    models, tasks = data["models"], data["tasks"]
    for key, seq in (("models", models), ("tasks", tasks)):
        if not isinstance(seq, list) or not seq:
            _fail(key, seq, f"one or more [[{key}]] tables")
    for i, m in enumerate(models):
        _check_keys(f"models[{i}]", m, _MODEL_KEYS, ("name",))
    for i, t in enumerate(tasks):
        _check_keys(f"tasks[{i}]", t, _TASK_KEYS, ("name", "deadline_s", "quality"))
    names = tuple(m["name"] for m in models)
    latency = tuple(_model_latency(f"models[{i}]", m, base_dir) for i, m in enumerate(models))
    scalars = {k: v for k, v in data.items() if k not in ("models", "tasks", "workload")}
    return Scenario(
        **{"name": default_name, **scalars},
        model_names=names,
        task_names=tuple(t["name"] for t in tasks),
        quality=tuple(
            _task_quality(f"tasks[{i}]", t["quality"], names) for i, t in enumerate(tasks)
        ),
        latency_s=latency,
        replicas=tuple(m.get("replicas", 1) for m in models),
        queue_capacity=tuple(
            m.get("queue_capacity", DEFAULT_QUEUE_PER_BATCH * len(lat))
            for m, lat in zip(models, latency, strict=True)
        ),
        max_wait_s=tuple(m.get("max_wait_s", 0.0) for m in models),
        deadline_s=tuple(t["deadline_s"] for t in tasks),
        grace_s=tuple(t.get("grace_s", t["deadline_s"]) for t in tasks),
        workload=_workload_from_toml(data.get("workload", {}), base_dir),
    )


def load_scenario_toml(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML; errors are prefixed with the file path."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise InputError(f"scenario file = '{path}': expected a readable file ({e})") from None
    except UnicodeDecodeError:
        raise InputError(f"scenario file = '{path}': not UTF-8 text, expected TOML") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: invalid TOML: {e}") from None
    try:
        return scenario_from_dict(data, path.parent, path.stem)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def _toml_value(value: Any) -> str:
    """One TOML value: string, bool, int, float (repr round-trips) or (nested) array."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            _fail("toml value", value, "a finite number")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _fail("toml value", value, "a string, bool, number or list")


def _toml_table(header: str, items: Sequence[tuple[str, Any]]) -> str:
    """A [header] block (or top-level when header is empty) of key = value lines."""
    lines = [header] if header else []
    lines += [f"{k} = {_toml_value(v)}" for k, v in items]
    return "\n".join(lines) + "\n"


_TOP_FIELDS = (
    "name", "description", "deadline_kind", "decay", "miss_penalty", "batching",
    "drop_expired", "allow_reject", "noise_sigma", "reference_rate", "rate_window_s", "obs_mode",
)  # fmt: skip


def _workload_items(w: WorkloadSpec) -> list[tuple[str, Any]]:
    """kind, rate, then every field that differs from its default (None cannot be TOML)."""
    items = [("kind", w.kind), ("rate", w.rate)]
    for f in dataclasses.fields(w):
        value = getattr(w, f.name)
        if f.name not in ("kind", "rate") and value is not None and value != f.default:
            items.append((f.name, value))
    return items


def scenario_to_toml(s: Scenario) -> str:
    """The scenario as TOML (latency inline); load_scenario_toml reads it back equal."""
    blocks = [
        "# jaxserve scenario; schema: docs/scenarios.md\n"
        + _toml_table("", [(f, getattr(s, f)) for f in _TOP_FIELDS]),
        _toml_table("[workload]", _workload_items(s.workload)),
    ]
    for k, name in enumerate(s.model_names):
        model = [("name", name), ("replicas", s.replicas[k]),
                 ("queue_capacity", s.queue_capacity[k]), ("max_wait_s", s.max_wait_s[k]),
                 ("latency_s", s.latency_s[k])]  # fmt: skip
        blocks.append(_toml_table("[[models]]", model))
    for t, name in enumerate(s.task_names):
        task = [("name", name), ("deadline_s", s.deadline_s[t]), ("grace_s", s.grace_s[t]),
                ("quality", s.quality[t])]  # fmt: skip
        blocks.append(_toml_table("[[tasks]]", task))
    return "\n".join(blocks)
