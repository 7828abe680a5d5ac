"""Environment behaviour beyond the reference comparison: API contract, precision, fast paths."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.sim.env import ServingEnv
from jaxserve.sim.reference import simulate as reference_simulate
from jaxserve.sim.rollout import counter_rollout, ledger_rollout, run_actions
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.types import Arrivals, SimConfig, SimParams
from jaxserve.sim.workloads import WorkloadSpec, make_workload


def _jit_step(env):
    """One compiled step function per environment (compiled once, reused)."""
    return _STEPS.setdefault(env, jax.jit(env.step))


_STEPS: dict = {}


def _params(latency, deadline_s=(1.0,), quality=((0.5, 0.9),), max_wait=None, penalty=0.0):
    latency = np.asarray(latency, np.float32)
    k = latency.shape[0]
    return SimParams(
        quality=jnp.asarray(quality, jnp.float32),
        latency_s=jnp.asarray(latency),
        deadline_s=jnp.asarray(deadline_s, jnp.float32),
        grace_s=jnp.ones(len(deadline_s), jnp.float32),
        max_wait_s=jnp.zeros(k, jnp.float32) if max_wait is None else jnp.asarray(max_wait),
        miss_penalty=jnp.float32(penalty),
        noise_sigma=jnp.float32(0.0),
        reference_rate=jnp.float32(10.0),
        rate_window_s=jnp.float32(2.0),
    )


def _arrivals(gaps, tasks=None, valid=None):
    n = len(gaps)
    return Arrivals(
        gap_s=jnp.asarray(gaps, jnp.float32),
        task=jnp.asarray(np.zeros(n) if tasks is None else tasks, jnp.int32),
        valid=jnp.asarray(np.ones(n, bool) if valid is None else valid),
    )


def test_observation_layout_by_hand():
    # Two models (batch 2 / 1), one replica each. t=0.5: request 0 -> model 1 (busy until
    # 0.5 + 0.4 = 0.9). t=0.6: request 1 -> model 1 (waits). Observation at t=0.7, task 0:
    # one-hot [1]; queued/(max_batch*replicas) = [0/2, 1/1]; in service = [0/2, 1/1];
    # wait to earliest free / deadline(1.0) = [0, 0.2]; rate: 1/2 at t=0.5, then
    # r = r*exp(-0.1/2) + 1/2 at 0.6 and again at 0.7; divided by reference rate 10.
    cfg = SimConfig(num_tasks=1, max_batch=(2, 1), replicas=(1, 1), queue_capacity=(4, 4))
    params = _params([[0.1, 0.15], [0.4, 1e9]])
    env = ServingEnv(cfg)
    obs, state = env.reset(jax.random.key(0), params, _arrivals([0.5, 0.1, 0.1, 0.1]))
    for action in (1, 1):
        obs, state, *_ = _jit_step(env)(jax.random.key(1), state, jnp.int32(action), params)
    rate = 0.5
    for _ in range(2):
        rate = rate * np.exp(-0.1 / 2.0) + 0.5
    expected = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.2, rate / 10.0]
    np.testing.assert_allclose(np.asarray(obs), expected, rtol=1e-5, atol=1e-6)
    assert obs.shape == (cfg.obs_size,)


def test_paper_observation_mode_size():
    cfg = SimConfig(
        num_tasks=3, max_batch=(2, 1), replicas=(1, 1), queue_capacity=(4, 4), obs_mode="paper"
    )
    params = _params([[0.1, 0.15], [0.4, 1e9]], deadline_s=(1.0,) * 3, quality=((0.5, 0.9),) * 3)
    obs, _ = ServingEnv(cfg).reset(jax.random.key(0), params, _arrivals([0.5, 0.1]))
    assert obs.shape == (3 + 2 + 1,) == (cfg.obs_size,)


def test_steps_after_done_change_nothing():
    cfg = SimConfig(num_tasks=1, max_batch=(2,), replicas=(1,), queue_capacity=(4,))
    params = _params([[0.3, 0.4]], quality=((0.7,),))
    env = ServingEnv(cfg)
    arrivals = _arrivals([0.1, 0.1, 0.1, 0.0], valid=[True, True, True, False])
    _, state = env.reset(jax.random.key(0), params, arrivals)
    dones = []
    for _ in range(5):
        _, state, reward, done, info = _jit_step(env)(
            jax.random.key(1), state, jnp.int32(0), params
        )
        dones.append(bool(done))
        if dones[-1]:
            frozen = state
    assert dones == [False, False, True, True, True]
    assert int(state.step) == 3 and int(state.counters.num_arrived) == 3
    assert float(reward) == 0.0 and not bool(info["active"])
    chex_equal = jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state, frozen)
    assert all(jax.tree.leaves(chex_equal))


def test_records_credit_each_request_to_its_decision():
    # One model, batch 1, latency 0.25: requests at 0.1, 0.2, 0.3 complete at 0.35, 0.6,
    # 0.85. Request 0 resolves during step 1 (0.2 < 0.35 <= 0.3? no: 0.35 > 0.3) -> step 2.
    cfg = SimConfig(
        num_tasks=1, max_batch=(1,), replicas=(1,), queue_capacity=(4,), drop_expired=False
    )
    params = _params([[0.25]], quality=((0.6,),), deadline_s=(10.0,))
    ledger = run_actions(ServingEnv(cfg), params, _arrivals([0.1, 0.1, 0.1]), [0, 0, 0])
    np.testing.assert_array_equal(ledger["resolve_step"], [2, 2, 2])
    np.testing.assert_allclose(ledger["latency_s"], [0.25, 0.4, 0.55], rtol=1e-5)
    np.testing.assert_allclose(ledger["rewards"], [0.0, 0.0, 1.8], rtol=1e-6)


def test_long_run_keeps_sub_millisecond_times():
    # 3 hours of arrivals every 0.1 s with a fixed 1.5 ms service: every latency must stay
    # 1.5 ms (float32 absolute times would round to ~1 ms after an hour).
    n = 108_000
    cfg = SimConfig(
        num_tasks=1, max_batch=(1,), replicas=(1,), queue_capacity=(2,), emit_records=True
    )
    params = _params([[0.0015]], quality=((1.0,),), deadline_s=(0.01,))
    ledger = run_actions(ServingEnv(cfg), params, _arrivals(np.full(n, 0.1)), np.zeros(n, int))
    np.testing.assert_allclose(ledger["latency_s"], 0.0015, rtol=1e-4)
    assert np.all(ledger["outcome"] == 0)


@pytest.mark.parametrize("batching", ["max", "deadline"])
def test_fifo_deadline_fast_path_matches_general_path(batching):
    scenario = get_scenario("opt-a100x4")
    base = dataclasses.replace(scenario.sim_config(), batching=batching)
    assert base.fifo_deadlines
    params = scenario.sim_params()
    wparams, generate = make_workload(WorkloadSpec(kind="poisson", rate=900.0), 4, 600)
    arrivals = generate(jax.random.key(3), wparams)
    actions = np.random.default_rng(0).integers(1, 3, 600)
    fast = run_actions(ServingEnv(base), params, arrivals, actions)
    slow = run_actions(
        ServingEnv(dataclasses.replace(base, fifo_deadlines=False)), params, arrivals, actions
    )
    assert np.sum(fast["outcome"] == 2) > 10  # the run exercises drops
    for key in ("outcome", "model", "resolve_step"):
        np.testing.assert_array_equal(fast[key], slow[key])
    np.testing.assert_allclose(fast["latency_s"], slow["latency_s"], rtol=1e-6)


def test_opt_a100x4_matches_reference_under_overload():
    scenario = get_scenario("opt-a100x4")
    wparams, generate = make_workload(WorkloadSpec(kind="poisson", rate=900.0), 4, 1500)
    arrivals = generate(jax.random.key(5), wparams)
    actions = np.random.default_rng(1).integers(0, 3, 1500)
    ledger = run_actions(
        ServingEnv(scenario.sim_config()), scenario.sim_params(), arrivals, actions
    )
    ref = reference_simulate(
        scenario.sim_config(),
        scenario.sim_params(),
        np.cumsum(np.asarray(arrivals.gap_s, np.float64)),
        np.asarray(arrivals.task),
        actions,
    )
    np.testing.assert_array_equal(ledger["outcome"], ref.outcome)
    np.testing.assert_array_equal(ledger["resolve_step"], ref.resolve_step)
    np.testing.assert_allclose(ledger["utility"], ref.utility, atol=1e-6)


def test_counter_rollout_agrees_with_ledger_rollout():
    scenario = get_scenario("opt-a100x4")
    env = ServingEnv(scenario.sim_config())
    fast_env = ServingEnv(dataclasses.replace(scenario.sim_config(), emit_records=False))
    params = scenario.sim_params()
    wparams, generate = make_workload(WorkloadSpec(kind="poisson", rate=300.0), 4, 400)
    arrivals = generate(jax.random.key(7), wparams)
    policy = lambda key, obs, state, params: jnp.int32(2) - (state.step % 2)
    led = ledger_rollout(env, policy, jax.random.key(8), params, arrivals)
    counters = counter_rollout(fast_env, policy, jax.random.key(8), params, arrivals)
    outcome = np.asarray(led["outcome"])
    np.testing.assert_array_equal(
        np.asarray(counters.num_outcome), np.bincount(outcome, minlength=4)
    )
    np.testing.assert_allclose(
        float(counters.sum_utility), float(np.sum(led["utility"])), rtol=1e-5
    )
    np.testing.assert_allclose(
        float(np.sum(led["rewards"])), float(np.sum(led["utility"])), rtol=1e-5
    )


def test_service_noise_is_lognormal():
    # sigma = 0.3, batch 1, idle server: each latency = 0.01 * exp(0.3 z).
    cfg = SimConfig(
        num_tasks=1,
        max_batch=(1,),
        replicas=(1,),
        queue_capacity=(2,),
        drop_expired=False,
        service_noise=True,
    )
    params = _params([[0.01]], quality=((1.0,),), deadline_s=(10.0,)).replace(
        noise_sigma=jnp.float32(0.3)
    )
    n = 4000
    ledger = run_actions(
        ServingEnv(cfg),
        params,
        _arrivals(np.full(n, 1.0)),
        np.zeros(n, int),
        key=jax.random.key(11),
    )
    log_factor = np.log(ledger["latency_s"] / 0.01)
    assert abs(log_factor.mean()) < 4 * 0.3 / np.sqrt(n)
    assert abs(log_factor.std() - 0.3) < 0.02


def test_dynamic_deadlines_match_reference_and_are_observed():
    # Deadlines halve every other 2 s; per-task deadlines differ, so the general path runs.
    scenario = get_scenario("opt-a100x4")
    base = dataclasses.replace(scenario.sim_config(), fifo_deadlines=False, observe_deadline=True)
    params = scenario.sim_params().replace(
        deadline_s=jnp.asarray([0.06, 0.08, 0.05, 0.07], jnp.float32)
    )
    spec = WorkloadSpec(kind="poisson", rate=500.0, deadline_schedule=((2.0, 1.0), (2.0, 0.5)))
    wparams, generate = make_workload(spec, 4, 4000)
    arrivals = generate(jax.random.key(9), wparams)
    factors = np.asarray(arrivals.deadline_scale)
    assert set(np.unique(factors)) == {0.5, 1.0}
    actions = np.random.default_rng(2).integers(0, 3, 4000)
    env = ServingEnv(base)
    ledger = run_actions(env, params, arrivals, actions)
    ref = reference_simulate(
        base,
        params,
        np.cumsum(np.asarray(arrivals.gap_s, np.float64)),
        np.asarray(arrivals.task),
        actions,
        deadline_scale=factors,
    )
    np.testing.assert_array_equal(ledger["outcome"], ref.outcome)
    # A completion within float32 rounding (~1e-7 s) of the next arrival may be credited to
    # the neighbouring step (JAX: float32 relative times; reference: float64 absolute).
    step_diff = np.abs(ledger["resolve_step"] - ref.resolve_step)
    assert step_diff.max() <= 1 and np.sum(step_diff) <= 2
    strict = factors == 0.5
    assert np.mean(ref.outcome[strict] == 0) < np.mean(ref.outcome[~strict] == 0)
    obs, _ = env.reset(jax.random.key(0), params, arrivals)
    assert obs.shape == (base.obs_size,) == (4 + 9 + 2,)
    assert float(obs[-1]) == factors[0]
