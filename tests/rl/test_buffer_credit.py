"""Replay ring buffer and the decision-credit pending table."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.rl import buffer as replay
from jaxserve.rl import credit


def _batch(values, valid):
    n = len(values)
    v = jnp.asarray(values, jnp.float32)
    return replay.Transitions(
        obs=v[:, None],
        action=jnp.zeros(n, jnp.int32),
        reward=v,
        continuation=jnp.ones(n),
        next_obs=v[:, None],
        valid=jnp.asarray(valid),
    )


def test_ring_buffer_packs_valid_and_wraps():
    buf = replay.buffer_init(4, 1)
    buf = replay.buffer_add(buf, _batch([1, 2, 3], [True, False, True]))
    np.testing.assert_array_equal(buf.data.reward[:2], [1, 3])
    assert int(buf.num_filled) == 2 and int(buf.insert_pos) == 2
    buf = replay.buffer_add(buf, _batch([4, 5, 6], [True, True, True]))
    # 4 and 5 fill slots 2, 3; 6 overwrites the oldest (slot 0).
    np.testing.assert_array_equal(buf.data.reward, [6, 3, 4, 5])
    assert int(buf.num_filled) == 4 and int(buf.insert_pos) == 1


def test_sample_only_filled():
    buf = replay.buffer_add(replay.buffer_init(64, 1), _batch([7, 8], [True, True]))
    sample = replay.buffer_sample(jax.random.key(0), buf, 100)
    assert set(np.asarray(sample.reward).tolist()) <= {7.0, 8.0}


def _step(table, d, records):
    mask = jnp.asarray([r is not None for r in records])
    dec = jnp.asarray([r[0] if r else 0 for r in records], jnp.int32)
    util = jnp.asarray([r[1] if r else 0.0 for r in records], jnp.float32)
    obs = jnp.full((1,), float(d))
    return credit.pending_step(
        table, jnp.int32(d), obs, jnp.int32(d % 2), obs + 1, jnp.bool_(False), mask, dec, util
    )


def test_pending_table_credits_the_routing_decision():
    # Window 2. Step 0: nothing resolves. Step 1: decision 0 resolves (0.5). Step 2:
    # decision 0 leaves (resolved, 0.5); decision 1 has not resolved; decision 2 resolves
    # at once (0.25). Step 3: decision 1 leaves unresolved (counted, not inserted).
    table = credit.pending_init(2, 1)
    table, out, unresolved = _step(table, 0, [None])
    assert not bool(out.valid) and not bool(unresolved)
    table, out, _ = _step(table, 1, [(0, 0.5)])
    assert not bool(out.valid)
    table, out, unresolved = _step(table, 2, [(2, 0.25)])
    assert bool(out.valid) and float(out.reward) == 0.5 and float(out.obs[0]) == 0.0
    assert float(out.next_obs[0]) == 1.0 and not bool(unresolved)
    table, out, unresolved = _step(table, 3, [(1, 0.9)])  # too late: decision 1 already left
    assert not bool(out.valid) and bool(unresolved)
    flushed, left = credit.pending_flush(table)
    # Slots hold decisions 2 (resolved, 0.25) and 3 (unresolved).
    np.testing.assert_array_equal(np.asarray(flushed.valid), [True, False])
    assert float(flushed.reward[0]) == 0.25 and int(left) == 1
