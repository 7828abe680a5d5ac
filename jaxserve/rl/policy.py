"""A trained router as a policy: `policy(key, obs, state, params) -> argmax_a Q(obs, a)`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve import checkpoint
from jaxserve.errors import InputError
from jaxserve.rl import knob as knobs
from jaxserve.rl.networks import init_params, make_q_network
from jaxserve.sim.base import knob_feature, knob_value
from jaxserve.sim.env import deadline_scale
from jaxserve.sim.scenarios import Scenario


def make_q_policy(network, params, observe_deadline: bool = False, knob=None):
    """Greedy policy of a Q-network with fixed parameters (pure, jit/vmap-able).

    `observe_deadline`: the router was trained with the request's deadline factor appended
    to its observation; `knob`: a knob router's `knob(state, params_sim) -> P` (rl/knob.py),
    None for a fixed-penalty router. The policy appends both itself, so any environment can
    run it.
    """

    def policy(key, obs, state, params_sim):
        del key
        if observe_deadline:
            obs = jnp.concatenate([obs, deadline_scale(state)[None]])
        if knob is not None:
            obs = jnp.concatenate([obs, knob_feature(knob(state, params_sim))[None]])
        return jnp.argmax(network.apply(params, obs)).astype(jnp.int32)

    return policy


def config_policy(num_actions: int, config, params):
    """The greedy policy of a router trained with `config` (a DQNConfig), from its params."""
    network = make_q_network(num_actions, config.hidden)
    knob = knob_value if config.knob_range else None
    return make_q_policy(network, params, bool(config.deadline_factors), knob)


def _router_meta(path) -> dict:
    meta = checkpoint.read_metadata(path)
    if meta.get("kind") != "jaxserve-router":
        raise InputError(
            f"checkpoint {path}: kind = {meta.get('kind')!r}: expected a learned "
            "router ('jaxserve-router')"
        )
    return meta


def check_compatible(meta: dict, scenario: Scenario, path) -> None:
    """The router's observation size and actions must match the scenario it will route."""
    cfg = dataclasses.replace(
        scenario.sim_config(),
        observe_deadline=bool(meta.get("observe_deadline")),
        observe_knob=knobs.knob_range(meta) is not None,
    )
    if int(meta.get("obs_size", -1)) != cfg.obs_size:
        raise InputError(
            f"checkpoint {path}: obs_size = {meta.get('obs_size')}: expected "
            f"{cfg.obs_size} for scenario {scenario.name!r} (obs_mode "
            f"{scenario.obs_mode}, {scenario.num_tasks} tasks, "
            f"{scenario.num_models} models)"
        )
    if int(meta.get("num_actions", -1)) != cfg.num_actions:
        raise InputError(
            f"checkpoint {path}: num_actions = {meta.get('num_actions')}: "
            f"expected {cfg.num_actions} for scenario {scenario.name!r}"
        )


def load_router_params(
    path: str | Path, scenario: Scenario | None = None, member=None, hidden=None
):
    """(params of one member — the best by default —, metadata) of a router checkpoint."""
    meta = _router_meta(path)
    if scenario is not None:
        check_compatible(meta, scenario, path)
    ckpt_hidden = tuple(meta["network"]["hidden"])
    if hidden is not None and tuple(hidden) != ckpt_hidden:
        raise InputError(
            f"checkpoint {path}: network hidden = {list(ckpt_hidden)}: expected "
            f"{list(hidden)} (the configured network)"
        )
    network = make_q_network(int(meta["num_actions"]), ckpt_hidden)
    size = int(meta["population_size"])
    single = jax.eval_shape(lambda: init_params(network, jax.random.key(0), int(meta["obs_size"])))
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct((size,) + x.shape, x.dtype), single)
    stacked = checkpoint.restore_tree(path, "policy", template)
    member = int(meta.get("best_member", 0)) if member is None else member
    if not 0 <= member < size:
        raise InputError(f"checkpoint {path}: member = {member}: expected 0..{size - 1}")
    params = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[member]), stacked)
    return params, meta


def load_learned_policy(
    path: str | Path,
    scenario: Scenario,
    member=None,
    availability_target: float | None = None,
    knob_schedule=None,
):
    """Pure `policy(key, obs, state, params)` choosing argmax Q of a router checkpoint.

    A knob router (docs/knob.md) is told the scenario's miss penalty (or a workload's
    knob_schedule), which must lie in its trained range; with `availability_target` it is
    told the calibrated knob that meets the target at the current load instead.
    """
    params, meta = load_router_params(path, scenario, member)
    if knob_schedule is not None:
        knobs.check_knob(meta, [v for _, v in knob_schedule], "knob_schedule value")
    network = make_q_network(int(meta["num_actions"]), tuple(meta["network"]["hidden"]))
    knob = router_knob(meta, path, scenario, availability_target)
    return make_q_policy(network, params, bool(meta.get("observe_deadline", False)), knob)


def check_router_knobs(path: str | Path, values, source: str) -> None:
    """InputError when `values` leave a knob router's trained range (other routers: none)."""
    knobs.check_knob(_router_meta(path), values, source)


def router_knob(meta: dict, path, scenario: Scenario, availability_target: float | None):
    """The knob function of a router checkpoint (None: not a knob router)."""
    if availability_target is not None:
        return knobs.target_knob(knobs.calibration(meta, path), availability_target)
    if knobs.knob_range(meta) is None:
        return None
    knobs.check_knob(meta, [scenario.miss_penalty], "miss penalty")
    return knob_value


def load_checkpoint_scenario(path: str | Path) -> Scenario:
    """The scenario a router was trained on (stored as TOML in its checkpoint)."""
    import tempfile

    from jaxserve.sim.scenarios import load_scenario_toml

    meta = _router_meta(path)
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(meta["scenario_toml"])
        name = f.name
    try:
        return load_scenario_toml(name)
    finally:
        Path(name).unlink(missing_ok=True)
