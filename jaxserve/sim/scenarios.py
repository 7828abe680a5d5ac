"""Scenarios (docs/spec.md §6): the presets, equal-hardware variants and `get_scenario`.

The record and its validation live in `scenario_spec.py`, the shipped quality and latency
tables in `scenario_data.py`, TOML in `scenario_toml.py`; their public names are
re-exported here, so `from jaxserve.sim.scenarios import ...` is the one import users need.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxserve.sim import roofline
from jaxserve.sim.scenario_data import load_latency_profile, opt_quality, read_quality_csv
from jaxserve.sim.scenario_spec import (
    A100X4_MAX_BATCH,
    A100X4_QUEUE_CAPACITY,
    BATCHING_RULES,
    DEADLINE_FACTOR,
    DEADLINE_KINDS,
    DEADLINE_ROUND_S,
    DECAYS,
    DEFAULT_WORKLOAD,
    OBS_MODES,
    PACKAGE_SCENARIO_DIR,
    PAPER_DEADLINE_S,
    PAPER_MAX_BATCH,
    PAPER_MODELS,
    PAPER_QUEUE_CAPACITY,
    PAPER_REFERENCE_RATE,
    PAPER_TASKS,
    Scenario,
    check_latency_profile,
    fail_field,
    fifo_deadlines,
    validate_scenario,
)
from jaxserve.sim.scenario_toml import load_scenario_toml, scenario_from_dict, scenario_to_toml


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
    return fail_field(
        "scenario", key, f"a built-in name {list_scenarios()} or a path to a .toml file"
    )


# --- TOML -----------------------------------------------------------------------------------


__all__ = [
    "BATCHING_RULES",
    "BUILTIN_SCENARIOS",
    "DEADLINE_KINDS",
    "DECAYS",
    "DEFAULT_SCENARIO",
    "OBS_MODES",
    "PAPER_DEADLINE_S",
    "PAPER_REFERENCE_RATE",
    "Scenario",
    "check_latency_profile",
    "display_name",
    "equal_hardware",
    "fifo_deadlines",
    "get_scenario",
    "list_scenarios",
    "load_latency_profile",
    "load_scenario_toml",
    "opt_quality",
    "read_quality_csv",
    "roofline_deadline_s",
    "scenario_from_dict",
    "scenario_to_toml",
    "validate_scenario",
    "with_miss_penalty",
    "zoo_scenario",
]
