"""Property tests (hypothesis) of the JAX simulator's invariants (docs/spec.md §3.5, §3.7, §3.8).

Shapes are fixed per config (episodes padded to NUM_SLOTS arrivals), so each config compiles
once; hypothesis varies the numbers: arrivals (including simultaneous ones), tasks, actions,
latency tables, deadlines, quality, max_wait, miss_penalty and service-time noise.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxserve.sim.env import ServingEnv
from jaxserve.sim.types import NEVER_S, Arrivals, SimConfig, SimParams

NUM_SLOTS = 24  # padded episode length

CONFIGS = {
    "hard-max-drop": SimConfig(
        num_tasks=2,
        max_batch=(1, 4),
        replicas=(1, 2),
        queue_capacity=(3, 5),
        batching="max",
        deadline_kind="hard",
        drop_expired=True,
        allow_reject=False,
    ),
    "soft-deadline-reject": SimConfig(
        num_tasks=3,
        max_batch=(3, 2, 5),
        replicas=(2, 1, 1),
        queue_capacity=(2, 4, 6),
        batching="deadline",
        deadline_kind="soft",
        decay="exponential",
        drop_expired=False,
        allow_reject=True,
        service_noise=True,
    ),
}

PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _floats(lo: float, hi: float):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _lists(elements, size: int):
    return st.lists(elements, min_size=size, max_size=size)


@st.composite
def episodes(draw, config: SimConfig):
    """(params, arrivals, actions) for `config`, padded to NUM_SLOTS arrivals."""
    k, t, b = config.num_models, config.num_tasks, config.pad_batch
    alone_s = np.array(draw(_lists(_floats(0.01, 1.0), k)))
    extra_s = np.array(draw(_lists(_floats(0.0, 0.5), k * b))).reshape(k, b)
    latency_s = alone_s[:, None] + np.cumsum(extra_s, axis=1) - extra_s[:, :1]
    latency_s[np.arange(b)[None, :] >= np.array(config.max_batch)[:, None]] = NEVER_S
    use_max_wait = draw(st.booleans())
    params = SimParams(
        quality=jnp.asarray(draw(_lists(_floats(0.0, 1.0), t * k)), jnp.float32).reshape(t, k),
        latency_s=jnp.asarray(latency_s, jnp.float32),
        deadline_s=jnp.asarray(draw(_lists(_floats(0.05, 3.0), t)), jnp.float32),
        grace_s=jnp.asarray(draw(_lists(_floats(0.05, 2.0), t)), jnp.float32),
        max_wait_s=jnp.asarray(draw(_lists(_floats(0.0, 0.5), k)), jnp.float32) * use_max_wait,
        miss_penalty=jnp.float32(draw(_floats(0.0, 1.0))),
        noise_sigma=jnp.float32(draw(st.sampled_from([0.0, 0.5]))),
        reference_rate=jnp.float32(1.0),
        rate_window_s=jnp.float32(1.0),
    )
    num_arrivals = draw(st.integers(1, NUM_SLOTS))
    arrivals = Arrivals(
        gap_s=jnp.asarray(draw(_lists(_floats(0.0, 0.6), NUM_SLOTS)), jnp.float32),
        task=jnp.asarray(draw(_lists(st.integers(0, t - 1), NUM_SLOTS)), jnp.int32),
        valid=jnp.arange(NUM_SLOTS) < num_arrivals,
    )
    actions = jnp.asarray(
        draw(_lists(st.integers(0, config.num_actions - 1), NUM_SLOTS)), jnp.int32
    )
    seed = draw(st.integers(0, 2**31 - 1))
    return params, arrivals, actions, seed


@functools.cache
def make_trace(config: SimConfig):
    """jit of one episode returning per-step counters, occupancy, rewards and records."""
    env = ServingEnv(config)

    def trace(key, params, arrivals, actions):
        key_reset, key_steps = jax.random.split(key)
        _, state = env.reset(key_reset, params, arrivals)

        def one_step(state, i):
            _, state, reward, done, info = env.step(
                jax.random.fold_in(key_steps, i), state, actions[i], params
            )
            in_system = jnp.sum(state.queue_len) + jnp.sum(state.batch_size)
            return state, {
                "counters": state.counters,
                "in_system": in_system,
                "reward": reward,
                "done": done,
                "records": info["records"],
            }

        return jax.lax.scan(one_step, state, jnp.arange(NUM_SLOTS))[1]

    return jax.jit(trace)


def run_trace(config: SimConfig, episode):
    params, arrivals, actions, seed = episode
    out = make_trace(config)(jax.random.key(seed), params, arrivals, actions)
    return jax.tree.map(np.asarray, out), int(np.sum(arrivals.valid))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_conservation_at_every_step(name):
    config = CONFIGS[name]

    @PROPERTY_SETTINGS
    @given(episode=episodes(config))
    def check(episode):
        out, num_valid = run_trace(config, episode)
        counters = out["counters"]
        arrived = counters.num_arrived
        np.testing.assert_array_equal(arrived, np.minimum(np.arange(1, NUM_SLOTS + 1), num_valid))
        # arrived = on time + late + dropped + rejected + in system, after every step.
        np.testing.assert_array_equal(arrived, counters.num_outcome.sum(axis=1) + out["in_system"])
        assert out["in_system"][num_valid - 1] == 0  # the drain resolved everyone
        assert out["done"][num_valid - 1] and not out["done"][: num_valid - 1].any()

    check()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_each_request_resolves_once_and_rewards_add_up(name):
    config = CONFIGS[name]

    @PROPERTY_SETTINGS
    @given(episode=episodes(config))
    def check(episode):
        out, num_valid = run_trace(config, episode)
        records = out["records"]
        mask = records.mask  # (steps, max_records)
        # Every valid decision resolves exactly once, with one outcome class.
        decisions = records.decision[mask]
        np.testing.assert_array_equal(np.sort(decisions), np.arange(num_valid))
        assert np.all(np.isin(records.outcome[mask], [0, 1, 2, 3]))
        # ... and never before its own step.
        steps = np.broadcast_to(np.arange(NUM_SLOTS)[:, None], mask.shape)[mask]
        assert np.all(steps >= decisions)
        # Utilities bounded, rewards = per-step sums of resolved utilities = total utility.
        utility = records.utility[mask]
        penalty = float(episode[0].miss_penalty)
        assert np.all((utility >= -penalty - 1e-6) & (utility <= 1.0 + 1e-6))
        np.testing.assert_allclose(
            out["reward"], np.where(mask, records.utility, 0).sum(1), atol=1e-5
        )
        total = out["counters"].sum_utility[-1]
        assert out["reward"].sum() == pytest.approx(total, abs=1e-4)
        assert np.all(out["reward"][num_valid:] == 0)  # steps after done change nothing

    check()
