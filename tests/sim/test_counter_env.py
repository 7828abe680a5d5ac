"""`CounterEnv` (ring-buffer queues, outcomes fixed at batch start) against independent truths.

* `ServingEnv`, the per-request simulator held to the reference request by request
  (test_differential.py): both run in lockstep on random configs and random actions, and
  every observation (so every policy decision) and the final totals must agree.
* The plain-Python reference: totals per outcome, utility and latency.
* Closed forms: M/D/1 (Pollaczek-Khinchine) and M/G/1 with the log-normal service noise.
* `lane_rollout` (lanes that never wait for each other) against `ServingEnv`'s per-decision
  rollout with the baseline policies, including the random ones (same keys).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_queueing import MD1_CONFIG, MD1_PARAMS, SERVICE_S, pollaczek_khinchine_sojourn_s

from jaxserve.evaluation.grid import make_switch_policy
from jaxserve.policies.baselines import make_policy
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.counter_env import CounterEnv, lane_rollout, lane_rollouts, make_env
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.reference import simulate
from jaxserve.sim.rollout import counter_rollout
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.types import LATE, ON_TIME, Arrivals, SimConfig
from jaxserve.sim.workloads import WorkloadSpec, make_workload
from jaxserve.testing.lanes import mixed_lanes
from jaxserve.testing.toy import (
    absolute_times_s,
    arrivals_from_gaps,
    random_config,
    random_scenario,
)

EPISODES = 6
MAX_ARRIVALS = 120
# (batching, deadline_kind, decay, drop_expired, max_wait): drop_expired needs deadlines in
# FIFO order (one deadline for every task); the others get per-task deadlines.
OPTIONS = [
    ("max", "hard", "linear", True, False),
    ("deadline", "hard", "linear", True, True),
    ("deadline", "soft", "exponential", True, False),
    ("max", "soft", "linear", False, True),
    ("deadline", "hard", "linear", False, False),
    ("deadline", "soft", "linear", False, True),
    ("max", "hard", "linear", False, False),
    ("deadline", "soft", "exponential", False, True),
]


def counter_config(index: int, rng: np.random.Generator) -> SimConfig:
    batching, kind, decay, drop, max_wait = OPTIONS[index]
    config = random_config(
        rng,
        num_models={0: 1, 1: 6}.get(index),
        batching=batching,
        deadline_kind=kind,
        decay=decay,
        drop_expired=drop,
        allow_reject=index % 2 == 0,
        emit_records=False,
        max_wait=max_wait,
    )
    return dataclasses.replace(config, fifo_deadlines=drop)


def counter_episode(rng, config: SimConfig):
    """A random episode; one deadline for all tasks when the config relies on FIFO order."""
    episode = random_scenario(rng, config, max_arrivals=MAX_ARRIVALS)
    params = episode.params
    if config.fifo_deadlines:
        params = params.replace(deadline_s=jnp.full_like(params.deadline_s, params.deadline_s[0]))
    if not config.max_wait:
        params = params.replace(max_wait_s=jnp.zeros_like(params.max_wait_s))
    return dataclasses.replace(episode, params=params)


def lockstep(env, params, arrivals, actions):
    """Observations before each decision, rewards, conservation gaps, final counters."""
    obs, state = env.reset(jax.random.key(0), params, arrivals)

    def one(carry, index):
        obs, state = carry
        action = actions[jnp.minimum(state.step, actions.shape[0] - 1)]
        new_obs, state, reward, _, _ = env.step(jax.random.key(1), state, action, params)
        c = state.counters
        if isinstance(env, CounterEnv):  # in-service requests are already counted
            unresolved = jnp.sum(state.queue_len)
        else:
            unresolved = jnp.sum(state.queue_len) + jnp.sum(state.batch_size)
        gap = c.num_arrived - jnp.sum(c.num_outcome) - unresolved
        return (new_obs, state), (obs, reward, gap)

    (_, state), (obs_seq, rewards, gaps) = jax.lax.scan(
        one, (obs, state), jnp.arange(actions.shape[0])
    )
    return obs_seq, rewards, gaps, state.counters


def stack(*trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@pytest.mark.parametrize("index", range(len(OPTIONS)))
def test_lockstep_with_serving_env(index):
    rng = np.random.default_rng(31_000 + index)
    config = counter_config(index, rng)
    episodes = [counter_episode(rng, config) for _ in range(EPISODES)]
    padded = MAX_ARRIVALS + 4  # padding after the episode must change nothing
    arrivals = stack(*[arrivals_from_gaps(e.gap_s, e.task, num_padded=padded) for e in episodes])
    actions = jnp.asarray([np.pad(e.action, (0, padded - len(e.action))) for e in episodes])
    params = stack(*[e.params for e in episodes])
    run = lambda env: jax.tree.map(
        np.asarray,
        sim_jit(jax.vmap(lambda p, a, x: lockstep(env, p, a, x)))(params, arrivals, actions),
    )
    obs_full, rewards_full, gaps_full, full = run(ServingEnv(config))
    obs_ring, rewards_ring, gaps_ring, ring = run(CounterEnv(config))

    where = f"config {index} {config}"
    np.testing.assert_allclose(obs_ring, obs_full, rtol=0, atol=1e-5, err_msg=where)
    np.testing.assert_array_equal(ring.num_outcome, full.num_outcome, err_msg=where)
    np.testing.assert_array_equal(ring.num_routed, full.num_routed, err_msg=where)
    np.testing.assert_array_equal(ring.num_arrived, full.num_arrived, err_msg=where)
    np.testing.assert_allclose(ring.sum_utility, full.sum_utility, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ring.sum_latency_s, full.sum_latency_s, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ring.sum_peak, full.sum_peak, rtol=1e-6)
    # Rewards come at batch start rather than completion; their episode sums agree.
    np.testing.assert_allclose(rewards_ring.sum(1), ring.sum_utility, rtol=1e-5, atol=1e-4)
    assert np.all(gaps_ring == 0) and np.all(gaps_full == 0), where  # conservation
    assert (ring.num_outcome.sum() > 0) and (ring.num_outcome[:, ON_TIME].sum() > 0)


@pytest.mark.parametrize("index", [1, 4, 5])
def test_totals_match_reference(index):
    """Totals per outcome, utility and latency against the heapq reference."""
    rng = np.random.default_rng(32_000 + index)
    config = counter_config(index, rng)
    env = CounterEnv(config)
    replay = sim_jit(
        lambda p, a, x: lockstep(env, p, a, x)[3], static_argnames=()
    )  # one compile per config
    for _ in range(4):
        episode = counter_episode(rng, config)
        n = len(episode.gap_s)
        arrivals = arrivals_from_gaps(episode.gap_s, episode.task, num_padded=MAX_ARRIVALS)
        actions = jnp.asarray(np.pad(episode.action, (0, MAX_ARRIVALS - n)))
        counters = jax.tree.map(np.asarray, replay(episode.params, arrivals, actions))
        ref = simulate(
            config, episode.params, absolute_times_s(episode.gap_s), episode.task, episode.action
        )
        completed = (ref.outcome == ON_TIME) | (ref.outcome == LATE)
        np.testing.assert_array_equal(counters.num_outcome, ref.num_outcome())
        assert counters.sum_utility == pytest.approx(ref.utility.sum(), rel=1e-5, abs=1e-4)
        assert counters.sum_latency_s == pytest.approx(
            ref.latency_s[completed].sum(), rel=1e-5, abs=1e-4
        )


LANE_POLICIES = ["static:2", "greedy", "random", "round-robin", "lp"]


def test_lane_rollout_matches_per_decision_rollout():
    """Decoupled lanes give exactly what `ServingEnv`'s per-decision rollout gives, for every
    policy kind (one compiled program per simulator: the policy is a lane argument)."""
    scenario = get_scenario("opt-a100x4")
    config = dataclasses.replace(scenario.sim_config(), emit_records=False)
    params = scenario.sim_params()
    wparams, generate = make_workload(WorkloadSpec(kind="poisson"), scenario.num_tasks, 300)
    rates = jnp.tile(jnp.asarray([60.0, 200.0, 400.0, 900.0] * 2), len(LANE_POLICIES))
    index = jnp.repeat(jnp.arange(len(LANE_POLICIES)), 8)

    def run(env, rollout):
        switch = make_switch_policy([make_policy(n, env, scenario) for n in LANE_POLICIES])

        def one(key, rate, policy_index):
            key_workload, key_run = jax.random.split(key)
            arrivals = generate(key_workload, wparams.replace(rate=rate))
            policy = lambda *a: switch(policy_index, *a)
            return rollout(env, policy, key_run, params, arrivals)

        keys = jax.random.split(jax.random.key(5), rates.shape[0])
        return jax.tree.map(np.asarray, sim_jit(jax.vmap(one))(keys, rates, index))

    ring = run(CounterEnv(config), lane_rollout)
    full = run(ServingEnv(config), counter_rollout)
    np.testing.assert_array_equal(ring.num_outcome, full.num_outcome)
    np.testing.assert_array_equal(ring.num_routed, full.num_routed)
    np.testing.assert_allclose(ring.sum_utility, full.sum_utility, rtol=1e-5, atol=1e-3)
    assert np.all(ring.num_arrived == 300)
    routed = full.num_routed.reshape(len(LANE_POLICIES), 8, -1).sum(axis=1)
    assert routed[0, 2] == 8 * 300 and routed[0, :2].sum() == 0  # static:2 lanes ran static:2
    assert len({tuple(r) for r in routed}) == len(LANE_POLICIES)  # each group its own policy


def test_lane_rollouts_equal_vmapped_lane_rollout():
    """The batched loop (per-lane params and policy choice) = vmap of the per-lane one."""
    scenario = get_scenario("opt-a100x4")
    env = CounterEnv(dataclasses.replace(scenario.sim_config(), emit_records=False))
    lanes = mixed_lanes(env, scenario, num_lanes=9, num_arrivals=200, seed=8)
    factory, keys, params = lanes["factory"], lanes["keys"], lanes["params"]
    arrivals, index = lanes["arrivals"], lanes["index"]

    batched = sim_jit(
        lambda k, p, a, i: lane_rollouts(env, factory, k, p, a, lane_args=i, params_batched=True)
    )(jax.random.clone(keys), params, arrivals, index)  # the same keys, twice on purpose
    per_lane = sim_jit(jax.vmap(lambda k, p, a, i: lane_rollout(env, factory(i), k, p, a)))(
        keys, params, arrivals, index
    )
    for name in ("num_outcome", "num_routed", "num_arrived"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(per_lane, name), name)
    np.testing.assert_allclose(batched.sum_utility, per_lane.sum_utility, rtol=1e-6)
    routed = np.asarray(batched.num_routed)
    assert np.all(routed[index == 0][:, [0, 2]] == 0)  # static:1 lanes used model 1 only
    assert np.all(routed[index == 2] > 0)  # random lanes used every model


def test_md1_matches_pollaczek_khinchine():
    """One model, batch 1, constant service: mean sojourn within 1% of P-K at rho = 0.5."""
    mean_s = _mean_sojourn(MD1_CONFIG, MD1_PARAMS, rho=0.5, mean_service_s=SERVICE_S)
    assert mean_s == pytest.approx(pollaczek_khinchine_sojourn_s(0.5), rel=0.01)


def test_service_noise_matches_mg1():
    """Log-normal service S = D exp(sigma Z): M/G/1 mean sojourn E[S] + lam E[S^2]/(2(1-rho)).

    With sigma = 0.5 the service-time CV is 0.53; 4 x 50,000 requests at rho = 0.5 give a
    standard error ~0.3% of the mean, so 2% is a ~6-sigma tolerance.
    """
    sigma, rho = 0.5, 0.5
    config = dataclasses.replace(MD1_CONFIG, service_noise=True)
    params = MD1_PARAMS.replace(noise_sigma=jnp.float32(sigma))
    mean_service_s = SERVICE_S * np.exp(sigma**2 / 2)
    second_moment = SERVICE_S**2 * np.exp(2 * sigma**2)
    rate = rho / mean_service_s
    expected_s = mean_service_s + rate * second_moment / (2 * (1 - rho))
    assert _mean_sojourn(config, params, rho, mean_service_s) == pytest.approx(expected_s, rel=0.02)


def _mean_sojourn(config, params, rho, mean_service_s, num_requests=50_000, num_runs=4):
    env = CounterEnv(dataclasses.replace(config, emit_records=False))
    policy = lambda key, obs, state, params: jnp.int32(0)

    def run(key):
        key_gaps, key_run = jax.random.split(key)
        gap_s = jax.random.exponential(key_gaps, (num_requests,)) * (mean_service_s / rho)
        arrivals = Arrivals(
            gap_s=gap_s,
            task=jnp.zeros(num_requests, jnp.int32),
            valid=jnp.ones(num_requests, bool),
        )
        return lane_rollout(env, policy, key_run, params, arrivals)

    counters = sim_jit(jax.vmap(run))(jax.random.split(jax.random.key(3), num_runs))
    num_outcome = np.asarray(counters.num_outcome)
    assert np.all(num_outcome[:, ON_TIME] == num_requests)  # nothing rejected, dropped, late
    return float(np.asarray(counters.sum_latency_s, np.float64).sum() / num_outcome.sum())


def test_make_env_picks_the_counter_env_only_when_it_applies():
    config = get_scenario("opt-a100x4").sim_config()
    assert type(make_env(config)) is ServingEnv  # records wanted
    fast = dataclasses.replace(config, emit_records=False)
    assert type(make_env(fast)) is CounterEnv
    holes = dataclasses.replace(fast, fifo_deadlines=False, drop_expired=True)
    assert type(make_env(holes)) is ServingEnv  # drops inside the queue: no ring buffer
    with pytest.raises(ValueError, match="make_env"):
        CounterEnv(holes)
    assert CounterEnv(fast) != ServingEnv(fast)  # distinct jit cache entries
    assert hash(CounterEnv(fast)) != hash(ServingEnv(fast))
