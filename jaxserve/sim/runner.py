"""One evaluation run end to end: scenario + workload + policy -> docs/spec.md §4 metrics."""

from __future__ import annotations

import dataclasses
import typing

import jax
import numpy as np

from jaxserve.errors import InputError
from jaxserve.limits import check_memory
from jaxserve.policies.baselines import make_policy
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.metrics import (
    DEFAULT_WINDOW_S,
    TRACE_WINDOW_S,
    absolute_arrival_times,
    request_metrics,
)
from jaxserve.sim.rollout import ledger_rollout
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec, make_workload

RATE_KINDS = ("poisson", "gamma")
# Bytes one simulated request needs in `simulate` (arrivals, workload draws, the ledger and
# the numpy metrics over it), rounded up from the arrays' dtypes: the memory check's unit.
LEDGER_BYTES_PER_REQUEST = 256
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


def resolve_policy(name: str, env: ServingEnv, scenario: Scenario):
    """A baseline by name, or the greedy-Q policy of a router checkpoint directory."""
    from pathlib import Path

    if Path(name).is_dir():
        from jaxserve.rl.policy import load_learned_policy

        return load_learned_policy(name, scenario)
    return make_policy(name, env, scenario)


def episode_length(spec: WorkloadSpec, num_requests: int) -> int:
    """Arrivals per episode: num_requests, or the whole trace for trace replay."""
    if num_requests < 1:
        raise InputError(f"--num-requests = {num_requests}: expected a positive integer")
    if spec.kind == "trace":
        from jaxserve.sim.workloads import load_spec_trace

        return min(num_requests, load_spec_trace(spec).num_arrivals)
    return num_requests


def simulate(
    scenario: Scenario,
    policy,
    workload: WorkloadSpec,
    num_requests: int = 10_000,
    seed: int = 0,
    window_s: float | None = None,
    policy_name: str = "",
) -> dict:
    """Run one evaluation episode and return every docs/spec.md §4 metric (JSON-ready)."""
    env = ServingEnv(scenario.sim_config(workload, emit_records=True))
    params = scenario.sim_params()
    if isinstance(policy, str):
        policy_name, policy = policy, resolve_policy(policy, env, scenario)
    n = episode_length(workload, num_requests)
    check_memory(f"simulate: {n:,} requests", n * LEDGER_BYTES_PER_REQUEST)
    wparams, generate = make_workload(workload, scenario.num_tasks, n)
    key_workload, key_run = jax.random.split(jax.random.key(seed))
    arrivals = jax.jit(generate)(key_workload, wparams)
    run = sim_jit(lambda key, params, arrivals: ledger_rollout(env, policy, key, params, arrivals))
    ledger = jax.tree.map(np.asarray, run(key_run, params, arrivals))
    arrival_s = absolute_arrival_times(arrivals.gap_s)
    if window_s is None:
        window_s = TRACE_WINDOW_S if workload.kind == "trace" else DEFAULT_WINDOW_S
    out = request_metrics(
        ledger,
        arrival_s,
        np.asarray(arrivals.task),
        scenario.quality,
        env.num_actions,
        window_s,
        valid=np.asarray(arrivals.valid),
    )
    out.update(
        scenario=scenario.name,
        policy=policy_name,
        workload=workload.kind,
        seed=seed,
        model_names=list(scenario.model_names),
    )
    if workload.kind == "poisson":
        out.update(_fluid_bound(scenario, workload))
    return out


def _fluid_bound(scenario: Scenario, workload: WorkloadSpec) -> dict:
    """The fluid LP bound at the workload's rate and mix (stationary Poisson only)."""
    from jaxserve.policies.lp import fluid_upper_bound

    mix = workload.task_mix if workload.task_mix is not None else None
    bound, _ = fluid_upper_bound(scenario, workload.rate, mix)
    peak = scenario.peak_quality(mix)
    return {"fluid_upper_bound": bound, "fluid_upper_bound_normalized": bound / peak}
