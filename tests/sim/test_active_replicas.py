"""Active replicas (`SimParams.replicas`) inside a padded config: a placement as params.

* A config whose replica axis is padded, run with active counts equal to the unpadded
  config's replicas, gives the same observations, rewards, counters (and, in `ServingEnv`,
  the same per-request ledger) as the unpadded config, for both JAX simulators.
* A model with 0 active replicas serves nothing: every request routed there is rejected
  (utility -miss_penalty), its observation features are 0, greedy never picks it, and
  with actions that avoid it the run equals the config without that model.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_counter_env import counter_config, counter_episode, lockstep, stack

from jaxserve.policies.baselines import make_policy
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.counter_env import CounterEnv
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.rollout import counter_rollout, ledger_rollout
from jaxserve.sim.types import REJECTED, SimConfig, to_jnp_tuple
from jaxserve.testing.toy import arrivals_from_gaps, random_config, random_scenario

PAD_REPLICAS = 4  # random configs have 1 to 3 replicas per model
EPISODES = 4
MAX_ARRIVALS = 120


def padded(config: SimConfig) -> SimConfig:
    """`config` with every model's replica axis padded to PAD_REPLICAS."""
    return dataclasses.replace(config, replicas=(PAD_REPLICAS,) * config.num_models)


def episodes_of(rng, config: SimConfig, counter: bool):
    """EPISODES random episodes of `config`, stacked: (params, arrivals, actions)."""
    draw = (lambda: counter_episode(rng, config)) if counter else (
        lambda: random_scenario(rng, config, max_arrivals=MAX_ARRIVALS)
    )  # fmt: skip
    episodes = [draw() for _ in range(EPISODES)]
    length = MAX_ARRIVALS + 2
    arrivals = stack(*[arrivals_from_gaps(e.gap_s, e.task, num_padded=length) for e in episodes])
    actions = jnp.asarray([np.pad(e.action, (0, length - len(e.action))) for e in episodes])
    return stack(*[e.params for e in episodes]), arrivals, actions


def run_lockstep(env, params, arrivals, actions):
    run = sim_jit(jax.vmap(lambda p, a, x: lockstep(env, p, a, x)))
    return jax.tree.map(np.asarray, run(params, arrivals, actions))


def run_ledger(env: ServingEnv, params, arrivals, actions):
    def one(params, arrivals, actions):
        policy = lambda key, obs, state, params: actions[state.step]
        return ledger_rollout(env, policy, jax.random.key(0), params, arrivals)

    return jax.tree.map(np.asarray, sim_jit(jax.vmap(one))(params, arrivals, actions))


def with_replicas(params, replicas):
    """Stacked params with the same active replica counts in every episode."""
    counts = jnp.asarray(replicas, jnp.int32)
    return params.replace(replicas=jnp.broadcast_to(counts, (EPISODES,) + counts.shape))


def assert_same(got, want):
    jax.tree.map(np.testing.assert_array_equal, got, want)


@pytest.mark.parametrize("index", [1])
def test_padded_counter_env_equals_unpadded(index):
    rng = np.random.default_rng(52_000 + index)
    config = counter_config(index, rng)
    params, arrivals, actions = episodes_of(rng, config, counter=True)
    want = run_lockstep(CounterEnv(config), params, arrivals, actions)
    padded_params = with_replicas(params, config.replicas)
    got = run_lockstep(CounterEnv(padded(config)), padded_params, arrivals, actions)
    assert_same(got, want)
    # The scenario's own counts as params (what Scenario.sim_params() sets) change nothing.
    assert_same(run_lockstep(CounterEnv(config), padded_params, arrivals, actions), want)


@pytest.mark.parametrize("seed", [0])
def test_padded_serving_env_equals_unpadded(seed):
    rng = np.random.default_rng(53_000 + seed)
    config = random_config(rng, num_models=3 + seed)
    params, arrivals, actions = episodes_of(rng, config, counter=False)
    want = run_ledger(ServingEnv(config), params, arrivals, actions)
    got = run_ledger(
        ServingEnv(padded(config)), with_replicas(params, config.replicas), arrivals, actions
    )
    assert_same(got, want)
    assert (want["outcome"] >= 0).sum() > 0


def without_model(config: SimConfig, params, model: int):
    """The config and (stacked) params of the same system without `model`."""
    keep = [k for k in range(config.num_models) if k != model]
    pick = lambda values: tuple(values[k] for k in keep)
    reduced = dataclasses.replace(
        config,
        max_batch=pick(config.max_batch),
        replicas=pick(config.replicas),
        queue_capacity=pick(config.queue_capacity),
    )
    latency = params.latency_s[:, keep, : reduced.pad_batch]
    return reduced, params.replace(
        quality=params.quality[:, :, keep], latency_s=latency, max_wait_s=params.max_wait_s[:, keep]
    )


def obs_without_model(obs: np.ndarray, config: SimConfig, model: int) -> np.ndarray:
    """Observations (..., O) of a `full` config with `model`'s three features removed."""
    t, k = config.num_tasks, config.num_models
    drop = [t + model, t + k + model, t + 2 * k + model]
    return np.delete(obs, drop, axis=-1)


@pytest.mark.parametrize("index", [5])
def test_zero_replica_model_equals_config_without_it(index):
    rng = np.random.default_rng(54_000 + index)
    config = counter_config(index, rng)
    model = 2
    params, arrivals, actions = episodes_of(rng, config, counter=True)
    keep = np.asarray([k for k in range(config.num_actions) if k != model])
    actions = jnp.asarray(keep[np.asarray(actions) % len(keep)])  # never the absent model
    reduced, reduced_params = without_model(config, params, model)
    replicas = [0 if k == model else PAD_REPLICAS for k in range(config.num_models)]
    active = with_replicas(params, replicas)
    renumbered = actions - (actions > model)
    for make in (ServingEnv, CounterEnv):
        env = make(dataclasses.replace(padded(config), emit_records=make is ServingEnv))
        obs, rewards, gaps, counters = run_lockstep(env, active, arrivals, actions)
        want_config = dataclasses.replace(reduced, replicas=(PAD_REPLICAS,) * reduced.num_models)
        want_env = make(dataclasses.replace(want_config, emit_records=make is ServingEnv))
        want = run_lockstep(want_env, reduced_params, arrivals, renumbered)
        np.testing.assert_array_equal(obs_without_model(obs, config, model), want[0])
        t, k = config.num_tasks, config.num_models
        assert np.all(obs[..., [t + model, t + k + model, t + 2 * k + model]] == 0)
        np.testing.assert_array_equal(rewards, want[1])
        for name in ("num_outcome", "sum_utility", "sum_latency_s", "num_arrived"):
            np.testing.assert_array_equal(getattr(counters, name), getattr(want[3], name))
        assert np.all(gaps == 0)


@pytest.mark.parametrize("make", [ServingEnv, CounterEnv])
def test_requests_to_a_model_without_replicas_are_rejected(make):
    rng = np.random.default_rng(55_000)
    config = counter_config(3, rng)
    params, arrivals, _ = episodes_of(rng, config, counter=True)
    replicas = [0] + list(config.replicas[1:])
    counters = run_lockstep(
        make(config), with_replicas(params, replicas), arrivals, jnp.zeros((EPISODES, 1), int)
    )[3]
    np.testing.assert_array_equal(counters.num_outcome[:, REJECTED], counters.num_arrived)
    np.testing.assert_allclose(
        counters.sum_utility, -counters.num_arrived * np.asarray(params.miss_penalty), rtol=1e-6
    )


def test_greedy_never_routes_to_a_model_without_replicas():
    rng = np.random.default_rng(56_000)
    config = dataclasses.replace(counter_config(1, rng), allow_reject=False)
    params, arrivals, _ = episodes_of(rng, config, counter=True)
    best = int(np.argmax(np.asarray(params.quality).mean(axis=(0, 1))))
    params = params.replace(
        quality=params.quality.at[:, :, best].set(1.0),  # greedy's first choice when active
        miss_penalty=jnp.broadcast_to(to_jnp_tuple(0.5), (EPISODES,)),
    )
    replicas = [0 if k == best else 1 for k in range(config.num_models)]
    env = CounterEnv(padded(config))
    greedy = make_policy("greedy", env)
    run = lambda p, a: counter_rollout(env, greedy, jax.random.key(0), p, a)
    counters = sim_jit(jax.vmap(run))(with_replicas(params, replicas), arrivals)
    assert np.all(np.asarray(counters.num_routed)[:, best] == 0)
    active = sim_jit(jax.vmap(run))(with_replicas(params, [1] * config.num_models), arrivals)
    assert np.all(np.asarray(active.num_routed)[:, best] > 0)
