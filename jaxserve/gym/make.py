"""`make(scenario, workload, num_arrivals, **options) -> (env, env_params)`, gymnax-style.

Scenario and workload are given as the CLI takes them: a built-in scenario name, a TOML
path or a `Scenario`; a workload string such as `"poisson:rate=300"` on top of the
scenario's default workload (`jaxserve.sim.parse.parse_workload`), or a `WorkloadSpec`.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from types import ModuleType

import jax
import jax.numpy as jnp

from jaxserve.errors import InputError
from jaxserve.gym import spaces
from jaxserve.gym.environment import LegacyStep
from jaxserve.gym.serving import EnvParams, ServingGymEnv, draw_episodes
from jaxserve.limits import MAX_SEED, check_memory
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.scenarios import Scenario, get_scenario
from jaxserve.sim.workloads import WorkloadSpec, make_workload

NUM_ARRIVALS = 1024  # default episode length
NUM_EPISODES = 64  # default pool size
ARRIVAL_BYTES = 13  # gap (f32), task (i32), valid (bool), deadline factor (f32)
STEP_APIS = ("gymnax", "legacy")
OPTIONS = {
    "num_episodes": "episodes pre-drawn into env_params (reset picks one at random)",
    "seed": "seed of the pre-drawn episodes",
    "rate": "arrival rate (req/s) replacing the workload's",
    "max_steps_in_episode": "truncate episodes after this many decisions",
    "step_api": "'gymnax' (6-tuple step, gymnax >= 1.0) or 'legacy' (5-tuple step)",
    "spaces": "'jaxserve' (own classes) or 'gymnax' (gymnax's, for wrappers that check types)",
}


def make(
    scenario: str | Path | Scenario = "opt-a100x4",
    workload: str | WorkloadSpec | None = None,
    num_arrivals: int = NUM_ARRIVALS,
    **options,
):
    """A gymnax-compatible serving environment and its default params.

    Args:
      scenario: built-in scenario name, path of a scenario TOML, or a `Scenario`.
      workload: `"KIND[:field=value,...]"` over the scenario's default workload (as the
        CLI's `--workload`), a `WorkloadSpec`, or None for the scenario's workload.
      num_arrivals: requests (decisions) per episode; a trace replay is capped at its length.
      **options: num_episodes (64), seed (0), rate, max_steps_in_episode (num_arrivals),
        step_api ("gymnax" or "legacy"), spaces ("jaxserve" or "gymnax");
        see docs/environment.md.

    Returns (env, env_params). Bad input raises `jaxserve.errors.InputError`.
    """
    options = _parse_options(options)
    scenario = _resolve_scenario(scenario)
    spec = _resolve_workload(workload, scenario, options["rate"])
    num_arrivals = _episode_length(spec, _positive_int("num_arrivals", num_arrivals))
    config = scenario.sim_config(spec, emit_records=False)
    pool_bytes = options["num_episodes"] * num_arrivals * ARRIVAL_BYTES
    check_memory(
        f"make: {options['num_episodes']:,} episodes x {num_arrivals:,} arrivals", pool_bytes
    )
    workload_params, generate = make_workload(spec, scenario.num_tasks, num_arrivals)
    draw = jax.jit(draw_episodes, static_argnums=(0, 3))
    key = jax.random.key(options["seed"])
    params = EnvParams(
        sim=scenario.sim_params(),
        episodes=draw(generate, workload_params, key, options["num_episodes"]),
        max_steps_in_episode=jnp.int32(options["max_steps_in_episode"] or num_arrivals),
    )
    env = ServingGymEnv(
        ServingEnv(config),
        params,
        generate,
        workload_params,
        name=f"jaxserve-{scenario.name}",
        space_classes=options["spaces"],
    )
    return (LegacyStep(env) if options["step_api"] == "legacy" else env), params


def _parse_options(options: dict) -> dict:
    """Every option, checked, with its default where not given."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError(f"make: unknown option {unknown[0]!r}; expected one of {sorted(OPTIONS)}")
    step_api = options.get("step_api", "gymnax")
    if step_api not in STEP_APIS:
        raise InputError(f"make: step_api = {step_api!r}: expected one of {STEP_APIS}")
    max_steps = options.get("max_steps_in_episode")
    return {
        "num_episodes": _positive_int("num_episodes", options.get("num_episodes", NUM_EPISODES)),
        "seed": _seed(options.get("seed", 0)),
        "rate": options.get("rate"),  # checked with the workload
        "max_steps_in_episode": (
            None if max_steps is None else _positive_int("max_steps_in_episode", max_steps)
        ),
        "step_api": step_api,
        "spaces": _space_classes(options.get("spaces", "jaxserve")),
    }


def _space_classes(which: str) -> ModuleType:
    """The module whose `Discrete` and `Box` the env's spaces are."""
    if which == "jaxserve":
        return spaces
    if which != "gymnax":
        raise InputError(f"make: spaces = {which!r}: expected 'jaxserve' or 'gymnax'")
    try:
        from gymnax.environments import spaces as gymnax_spaces
    except ImportError as err:
        raise InputError(f"make: spaces = 'gymnax' needs the gymnax package ({err})") from None
    return gymnax_spaces


def _resolve_scenario(scenario) -> Scenario:
    """A `Scenario` from itself, a built-in name or a TOML path."""
    if isinstance(scenario, Scenario):
        return scenario
    if not isinstance(scenario, str | Path):
        raise InputError(
            f"make: scenario = {scenario!r}: expected a built-in name, a TOML path or a Scenario"
        )
    try:
        return get_scenario(scenario)
    except InputError as err:
        raise InputError(f"make: {err}") from None


def _resolve_workload(workload, scenario: Scenario, rate) -> WorkloadSpec:
    """The CLI's `--workload` parsing over the scenario's workload (or a given spec)."""
    from jaxserve.sim.parse import parse_workload

    if workload is not None and not isinstance(workload, str | WorkloadSpec):
        raise InputError(
            f"make: workload = {workload!r}: expected 'KIND[:field=value,...]', a WorkloadSpec "
            "or None"
        )
    text = workload if isinstance(workload, str) else None
    base = workload if isinstance(workload, WorkloadSpec) else scenario.workload
    try:
        return parse_workload(text, base, rate)
    except InputError as err:  # the CLI's messages name its flag; name the argument instead
        what = f"workload {text!r}" if text is not None else "workload"
        raise InputError(f"make: {what}: {str(err).removeprefix('--workload ')}") from None


def _episode_length(spec: WorkloadSpec, num_arrivals: int) -> int:
    """num_arrivals, or the whole trace when it is shorter (trace replay)."""
    if spec.kind == "trace":
        from jaxserve.sim.workloads import load_spec_trace

        return min(num_arrivals, load_spec_trace(spec).num_arrivals)
    return num_arrivals


def _int(field: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise InputError(f"make: {field} = {value!r}: expected an integer")
    return int(value)


def _seed(value) -> int:
    if _int("seed", value) < 0 or value > MAX_SEED:
        raise InputError(f"make: seed = {value!r}: expected an integer in [0, {MAX_SEED}]")
    return int(value)


def _positive_int(field: str, value) -> int:
    if _int(field, value) <= 0:
        raise InputError(f"make: {field} = {value!r}: expected a positive integer")
    return int(value)


__all__ = ["make"]
