"""Scenario TOML files (docs/scenarios.md): parse (with one clear line per bad field) and write."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jaxserve.errors import InputError
from jaxserve.limits import MAX_BATCH
from jaxserve.sim.scenario_data import load_latency_profile
from jaxserve.sim.scenario_spec import (
    DEFAULT_WORKLOAD,
    Scenario,
    check_count,
    check_latency_profile,
    fail_field,
)
from jaxserve.sim.workloads import WorkloadSpec

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
        fail_field(where, table, "a table")
    for key in table:
        if key not in allowed:
            fail_field(f"unknown key in {where}", key, f"one of {sorted(allowed)}")
    for key in required:
        if key not in table:
            fail_field(f"{where}.{key}", None, "a value (required)")


def _model_latency(where: str, m: dict, base: Path) -> tuple[float, ...]:
    """Inline latency_s, or a profile JSON (path relative to the TOML), cut to max_batch."""
    if ("latency_s" in m) == ("latency_profile" in m):
        fail_field(f"{where}.latency_s / latency_profile", None, "exactly one of the two")
    if "latency_s" in m:
        latency = check_latency_profile(f"{where}.latency_s", m["latency_s"])
    else:
        latency = load_latency_profile(base / str(m["latency_profile"]))
    if "max_batch" in m:
        b = check_count(f"{where}.max_batch", m["max_batch"], MAX_BATCH)
        if b > len(latency):
            fail_field(f"{where}.max_batch", b, f"≤ {len(latency)} (the profile's length)")
        latency = latency[:b]
    return latency


def _task_quality(where: str, q: Any, model_names: Sequence[str]) -> tuple[Any, ...]:
    """quality as a list in model order, or a table keyed by model name."""
    if isinstance(q, dict):
        _check_keys(f"{where}.quality", q, set(model_names), model_names)
        return tuple(q[m] for m in model_names)
    if not isinstance(q, list):
        fail_field(f"{where}.quality", q, "a list (one per model) or a table {model = value}")
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
            fail_field(key, seq, f"one or more [[{key}]] tables")
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
            fail_field("toml value", value, "a finite number")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return fail_field("toml value", value, "a string, bool, number or list")


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
