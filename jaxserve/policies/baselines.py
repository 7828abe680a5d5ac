"""Non-learned routing policies (docs/spec.md §7), pure functions usable inside jit/vmap.

Every policy has the signature `policy(key, obs, state, params) -> action` (int32 scalar).
They read the system only through `env.queue_view(state, params)` (a `QueueView`; the
serving router passes a `QueueView` as `state`, which is its own view) and `state.step`,
which every state and the view have.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.sim.base import EnvBase, active_replicas
from jaxserve.sim.types import SimParams

BASELINE_NAMES = ("static:K", "random", "round-robin", "jsq", "greedy", "lp")


def predicted_completion_s(env: EnvBase, state, params: SimParams) -> jax.Array:
    """Heuristic time from now until a new request sent to each model would complete (K,).

    Queued requests ahead are served in full rounds of replicas x max_batch, each round
    taking latency[k, max_batch]; the new request then runs in a batch of the leftover
    size once the earliest replica is free. Used by `jsq` and `greedy` (docs/policies.md).
    """
    view = env.queue_view(state, params)
    cfg = env.config
    max_batch = jnp.asarray(cfg.max_batch)
    # queue_len // per_round without a vector integer division (scalarised on x86): the
    # float quotient of q + 1/2 is at least 1/(2 per_round) away from an integer.
    # A model without active replicas has an infinite wait_s (greedy never picks it).
    replicas = active_replicas(cfg, params)
    xp = np if isinstance(replicas, np.ndarray) else jnp
    per_round = np.asarray(cfg.max_batch) * xp.maximum(replicas, 1)
    rounds = jnp.floor((view.queue_len + 0.5) * (1.0 / per_round)).astype(jnp.int32)
    at_size = lambda b: params.latency_s[jnp.arange(cfg.num_models), b - 1]  # (K,)
    own = jnp.minimum(view.queue_len - rounds * per_round + 1, max_batch)
    return view.wait_s + rounds * at_size(max_batch) + at_size(own)


def make_static(model: int):
    """Always route to `model`."""
    return lambda key, obs, state, params: jnp.int32(model)


def make_random(num_models: int):
    """Uniformly random model."""
    return lambda key, obs, state, params: jax.random.randint(key, (), 0, num_models)


def make_round_robin(num_models: int):
    """Cycle through the models in decision order."""
    return lambda key, obs, state, params: (state.step % num_models).astype(jnp.int32)


def make_jsq(env: EnvBase):
    """Shortest expected completion time."""

    def policy(key, obs, state, params):
        return jnp.argmin(predicted_completion_s(env, state, params)).astype(jnp.int32)

    return policy


def make_greedy(env: EnvBase):
    """Best quality among models predicted to meet the deadline, else the fastest."""

    def policy(key, obs, state, params):
        view = env.queue_view(state, params)
        task = view.task
        done_s = predicted_completion_s(env, view, params)
        meets = done_s <= params.deadline_s[task] * view.deadline_scale
        quality = jnp.where(meets, params.quality[task], -jnp.inf)
        return jnp.where(jnp.any(meets), jnp.argmax(quality), jnp.argmin(done_s)).astype(jnp.int32)

    return policy


def make_lp(env: EnvBase, rates: np.ndarray, table: np.ndarray, fallback: int = 0):
    """Route by the fluid-LP fractions x[t, k] at the grid rate nearest the rate estimate.

    Args:
      rates: (G,) increasing geometric grid of arrival rates.
      table: (G, T, K) LP routing fractions at each grid rate (policies/lp.py).
    Fractions are sampled; the unserved remainder 1 - Σ_k x_tk is rejected when the scenario
    allows rejection, else spread over the models in proportion to x (or, if the LP serves
    none of the task, sent to `fallback`).
    """
    log_rates = jnp.asarray(np.log(rates), jnp.float32)
    table = jnp.asarray(table, jnp.float32)
    cfg = env.config

    def policy(key, obs, state, params):
        view = env.queue_view(state, params)
        log_rate = jnp.log(jnp.maximum(view.rate_est, 1e-9))
        g = jnp.argmin(jnp.abs(log_rates - log_rate))
        x = table[g, view.task]  # (K,)
        if cfg.allow_reject:
            logits = jnp.log(jnp.concatenate([x, jnp.maximum(1.0 - x.sum(), 0.0)[None]]))
        else:
            logits = jnp.log(x)
        sampled = jax.random.categorical(key, logits)
        return jnp.where(x.sum() > 0, sampled, fallback).astype(jnp.int32)

    return policy


def make_policy(name: str, env: EnvBase, scenario=None, task_mix=None):
    """Build a baseline policy by its CLI name (`static:K`, `static:NAME`, `random`, ...).

    `task_mix`: the mix `lp` solves its LP for (default: the scenario's workload's).
    """
    num_models = env.config.num_models
    if name.startswith("static:"):
        return make_static(_static_index(name, scenario, num_models))
    if name == "random":
        return make_random(num_models)
    if name == "round-robin":
        return make_round_robin(num_models)
    if name == "jsq":
        return make_jsq(env)
    if name == "greedy":
        return make_greedy(env)
    if name == "lp":
        if scenario is None:
            raise InputError("policy = 'lp': needs a scenario to solve the fluid LP")
        from jaxserve.policies.lp import lp_routing_table, rate_grid

        rates = rate_grid(scenario)
        fastest = int(np.argmax(scenario.capacity_per_model()))
        return make_lp(env, rates, lp_routing_table(scenario, rates, task_mix), fastest)
    raise InputError(
        f"policy = {name!r}: expected one of static:K, static:MODEL, random, round-robin, jsq, "
        "greedy, lp, or a checkpoint directory"
    )


def _static_index(name: str, scenario, num_models: int) -> int:
    """Model index of `static:K` or `static:MODEL_NAME`."""
    what = name.split(":", 1)[1]
    if what.lstrip("-").isdigit():
        k = int(what)
        if not 0 <= k < num_models:
            raise InputError(f"policy = {name!r}: model index {k} out of range 0..{num_models - 1}")
        return k
    names = tuple(scenario.model_names) if scenario is not None else ()
    if what not in names:
        raise InputError(
            f"policy = {name!r}: unknown model {what!r}; expected one of "
            f"{', '.join(names) or 'an index'}"
        )
    return names.index(what)


def baseline_names(models) -> list[str]:
    """Every baseline, static ones expanded per model (`models`: a count or model names)."""
    names = (
        [f"static:{k}" for k in range(models)]
        if isinstance(models, int)
        else [f"static:{m}" for m in models]
    )
    return names + ["random", "round-robin", "jsq", "greedy", "lp"]
