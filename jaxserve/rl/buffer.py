"""On-device ring-buffer replay: a pytree of fixed-size arrays, written in place inside jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Transitions:
    """A batch of transitions (leading axis N); `valid` = False entries are ignored."""

    obs: jax.Array  # (N, O) observation at the decision
    action: jax.Array  # (N,) int32
    reward: jax.Array  # (N,) credited reward
    continuation: jax.Array  # (N,) 0 when the episode ended after this decision, else 1
    next_obs: jax.Array  # (N, O) observation at the next decision
    valid: jax.Array  # (N,) bool


@struct.dataclass
class ReplayBuffer:
    """Circular storage of `capacity` transitions; `insert_pos` is where the next one goes."""

    data: Transitions  # leaves (capacity, ...)
    insert_pos: jax.Array  # () int32
    num_filled: jax.Array  # () int32, <= capacity


def empty_transitions(size: int, obs_size: int) -> Transitions:
    """All-invalid transitions of the right shapes."""
    return Transitions(
        obs=jnp.zeros((size, obs_size), jnp.float32),
        action=jnp.zeros(size, jnp.int32),
        reward=jnp.zeros(size, jnp.float32),
        continuation=jnp.zeros(size, jnp.float32),
        next_obs=jnp.zeros((size, obs_size), jnp.float32),
        valid=jnp.zeros(size, bool),
    )


def buffer_init(capacity: int, obs_size: int) -> ReplayBuffer:
    """An empty buffer."""
    return ReplayBuffer(
        data=empty_transitions(capacity, obs_size), insert_pos=jnp.int32(0), num_filled=jnp.int32(0)
    )


def buffer_add(buffer: ReplayBuffer, batch: Transitions) -> ReplayBuffer:
    """Write the valid entries of a batch (N,) at the insert position, wrapping around.

    Invalid entries take no space: valid ones are packed in order (cumsum of the mask), the
    rest scatter out of range and are dropped. Overwrites the oldest when full.
    """
    capacity = buffer.data.action.shape[0]
    n = batch.action.shape[0]
    if n > capacity:
        raise ValueError(f"batch of {n} transitions exceeds the buffer capacity {capacity}")
    rank = jnp.cumsum(batch.valid.astype(jnp.int32)) - 1
    index = jnp.where(batch.valid, (buffer.insert_pos + rank) % capacity, capacity)
    data = jax.tree.map(
        lambda buf, new: buf.at[index].set(new.astype(buf.dtype), mode="drop"), buffer.data, batch
    )
    num_new = jnp.sum(batch.valid.astype(jnp.int32))
    return ReplayBuffer(
        data=data,
        insert_pos=(buffer.insert_pos + num_new) % capacity,
        num_filled=jnp.minimum(buffer.num_filled + num_new, capacity),
    )


def buffer_sample(key: jax.Array, buffer: ReplayBuffer, batch_size: int) -> Transitions:
    """Uniform sample (with replacement) of `batch_size` among the filled entries."""
    index = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.num_filled, 1))
    return jax.tree.map(lambda buf: buf[index], buffer.data)
