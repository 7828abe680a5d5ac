"""Baseline policies: hand-checked decisions, and every policy jits inside a rollout."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.policies.baselines import (
    baseline_names,
    make_lp,
    make_policy,
    predicted_completion_s,
)
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.rollout import counter_rollout
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.types import Arrivals, SimConfig, SimParams
from jaxserve.sim.workloads import WorkloadSpec, make_workload


def _jit_step(env):
    """One compiled step function per environment (compiled once, reused)."""
    return _STEPS.setdefault(env, jax.jit(env.step))


_STEPS: dict = {}


def _two_model_env():
    # Model 0: fast (0.1 s), poor quality; model 1: slow (0.5 s alone, 0.6 s for 2), good.
    cfg = SimConfig(num_tasks=1, max_batch=(1, 2), replicas=(1, 1), queue_capacity=(8, 8))
    params = SimParams(
        quality=jnp.asarray([[0.3, 0.9]]),
        latency_s=jnp.asarray([[0.1, 1e9], [0.5, 0.6]]),
        deadline_s=jnp.asarray([1.0]),
        grace_s=jnp.asarray([1.0]),
        max_wait_s=jnp.zeros(2),
        miss_penalty=jnp.float32(0.0),
        noise_sigma=jnp.float32(0.0),
        reference_rate=jnp.float32(1.0),
        rate_window_s=jnp.float32(1.0),
    )
    return ServingEnv(cfg), params


def _state_after(env, params, actions, gap_s=0.01):
    n = len(actions) + 1
    arrivals = Arrivals(
        gap_s=jnp.full(n, gap_s, jnp.float32), task=jnp.zeros(n, jnp.int32), valid=jnp.ones(n, bool)
    )
    obs, state = env.reset(jax.random.key(0), params, arrivals)
    for a in actions:
        obs, state, *_ = _jit_step(env)(jax.random.key(1), state, jnp.int32(a), params)
    return obs, state


def test_predicted_completion_by_hand():
    env, params = _two_model_env()
    # Three requests to model 1 at 10 ms spacing: #0 starts at once (busy 0.5 s), #1 and #2
    # wait. At the 4th arrival (t = 0.04): model 1 has 2 queued = one full round of
    # replicas(1) x max_batch(2): wait 0.5 - 0.03 = 0.47, + 1 round x 0.6, + own batch of
    # 1: 0.5 -> 1.57 s. Model 0 idle: 0.1 s.
    _, state = _state_after(env, params, [1, 1, 1])
    done_s = predicted_completion_s(env, state, params)
    np.testing.assert_allclose(np.asarray(done_s), [0.1, 0.47 + 0.6 + 0.5], rtol=1e-5)


def test_greedy_prefers_quality_until_the_deadline_is_at_risk():
    env, params = _two_model_env()
    greedy = make_policy("greedy", env)
    obs, state = _state_after(env, params, [])
    assert int(greedy(jax.random.key(0), obs, state, params)) == 1  # 0.5 s <= 1 s deadline
    obs, state = _state_after(env, params, [1, 1, 1])
    assert int(greedy(jax.random.key(0), obs, state, params)) == 0  # 1.57 s > 1 s


def test_jsq_picks_the_earliest_completion():
    env, params = _two_model_env()
    jsq = make_policy("jsq", env)
    obs, state = _state_after(env, params, [])
    assert int(jsq(jax.random.key(0), obs, state, params)) == 0


def test_round_robin_and_static():
    env, params = _two_model_env()
    rr = make_policy("round-robin", env)
    for steps, expected in ((0, 0), (1, 1), (2, 0)):
        obs, state = _state_after(env, params, [0] * steps, gap_s=1.0)
        assert int(rr(jax.random.key(0), obs, state, params)) == expected
    assert int(make_policy("static:1", env)(jax.random.key(0), obs, state, params)) == 1


def test_lp_policy_samples_the_lp_fractions():
    env, params = _two_model_env()
    rates = np.array([0.5, 1.0, 2.0])
    table = np.zeros((3, 1, 2), np.float32)
    table[:, 0] = [[0.0, 1.0], [0.25, 0.75], [1.0, 0.0]]
    lp = make_lp(env, rates, table)
    obs, state = _state_after(env, params, [])  # rate estimate 1/window = 1.0 -> row 1
    keys = jax.random.split(jax.random.key(3), 4000)
    actions = jax.vmap(lambda k: lp(k, obs, state, params))(keys)
    assert abs(float(jnp.mean(actions == 0)) - 0.25) < 0.03


@pytest.mark.parametrize("name", baseline_names(3))
def test_every_baseline_jits_in_a_vmapped_rollout(name):
    scenario = get_scenario("opt-a100x4")
    env = ServingEnv(dataclasses.replace(scenario.sim_config(), emit_records=False))
    policy = make_policy(name, env, scenario)
    wparams, generate = make_workload(WorkloadSpec(kind="poisson", rate=300.0), 4, 64)
    params = scenario.sim_params()

    def run(key):
        key_workload, key_run = jax.random.split(key)
        return counter_rollout(env, policy, key_run, params, generate(key_workload, wparams))

    counters = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 3))
    assert np.all(np.asarray(counters.num_arrived) == 64)
    assert np.all(np.asarray(counters.num_outcome).sum(axis=1) == 64)
    assert np.all(np.isfinite(np.asarray(counters.sum_utility)))


def test_random_policy_differs_between_seeds():
    env, params = _two_model_env()
    policy = make_policy("random", env)
    obs, state = _state_after(env, params, [])
    draws = jax.vmap(lambda k: policy(k, obs, state, params))(
        jax.random.split(jax.random.key(0), 64)
    )
    assert len(set(np.asarray(draws).tolist())) == 2


@pytest.mark.parametrize("name", ["static:9", "static:opt-13b", "fastest", "static:-1"])
def test_bad_policy_names(name):
    scenario = get_scenario("opt-a100x4")
    with pytest.raises(InputError, match="policy"):
        make_policy(name, ServingEnv(scenario.sim_config()), scenario)
