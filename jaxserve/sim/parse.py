"""Workload strings of the command line and the Python API -> `WorkloadSpec`.

`KIND[:field=value,...]` on top of a base spec (usually the scenario's workload), with every
value parsed by the field's declared type; see docs/workloads.md.
"""

from __future__ import annotations

import dataclasses
import typing

from jaxserve.errors import InputError
from jaxserve.sim.workloads import WorkloadSpec, load_spec_trace

TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes"), ("0", "false", "no")
FIELD_ALIASES = {"name": "trace_name"}  # `--workload trace:name=azure_llm_2023_code`


def parse_workload(text: str | None, base: WorkloadSpec, rate: float | None = None):
    """`KIND[:field=value,...]` (e.g. `gamma:cv=4`) on top of the scenario's workload.

    Tuple fields are slash-separated (`task_mix=0.7/0.1/0.1/0.1`); schedules are
    `duration/value` pairs separated by semicolons (`schedule=60/100;60/800`).
    """
    spec = base
    if text:
        kind, _, rest = text.partition(":")
        changes = {"kind": kind.strip()} if kind.strip() != base.kind else {}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise InputError(f"--workload item {item!r}: expected field=value")
            key = FIELD_ALIASES.get(key.strip(), key.strip())
            changes[key] = _coerce_field(key, value.strip())
        if "trace_name" in changes:  # a shipped trace replaces the scenario's trace file
            changes.setdefault("trace_path", None)
        if "trace_path" in changes:
            changes.setdefault("trace_name", None)
        spec = _replace_spec(base, changes)
    if rate is not None:
        spec = _replace_spec(spec, {"rate": rate})
    return spec


def _replace_spec(spec: WorkloadSpec, changes: dict) -> WorkloadSpec:
    try:
        return dataclasses.replace(spec, **changes)
    except TypeError as err:  # unknown field name
        names = ", ".join(f.name for f in dataclasses.fields(WorkloadSpec))
        raise InputError(f"workload: {err}; expected fields among {names}") from None


def _coerce_field(key: str, value: str):
    """Parse a workload field value from text by the field's declared type."""
    hints = typing.get_type_hints(WorkloadSpec)
    if key not in hints:
        names = ", ".join(hints)
        raise InputError(f"--workload field {key!r}: unknown; expected one of {names}")
    hint = str(hints[key])
    try:
        if "bool" in hint:
            return _parse_bool(key, value)
        if hint.startswith("float") or hint == "<class 'float'>":
            return float(value)
        if "int" in hint and "tuple" not in hint:
            return int(value)
        if "tuple[tuple" in hint:  # schedules: d1/r1;d2/r2
            return tuple(tuple(float(v) for v in e.split("/")) for e in value.split(";"))
        if "tuple" in hint:
            return tuple(float(v) for v in value.split("/"))
    except ValueError:
        raise InputError(f"--workload {key}={value!r}: expected a number") from None
    return value


def _parse_bool(key: str, value: str) -> bool:
    """Only the usual spellings of true and false; anything else is bad input."""
    text = value.lower()
    if text not in TRUE_WORDS + FALSE_WORDS:
        raise InputError(f"--workload {key}={value!r}: expected true or false")
    return text in TRUE_WORDS


def episode_length(spec: WorkloadSpec, num_requests: int) -> int:
    """Arrivals per episode: num_requests, or the whole trace for trace replay."""
    if num_requests < 1:
        raise InputError(f"--num-requests = {num_requests}: expected a positive integer")
    if spec.kind == "trace":
        return min(num_requests, load_spec_trace(spec).num_arrivals)
    return num_requests


__all__ = ["episode_length", "parse_workload"]
