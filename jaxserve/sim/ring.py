"""The ring-buffer state of `CounterEnv` and what one round of its event loop carries.

A queue is a FIFO ring `(num_models, queue_capacity)`: position p of model k's queue is
ring index `(head[k] + p) % queue_capacity`. Admission writes at the tail; the event loop
only moves the head (docs/simulator.md, "Two implementations of the same semantics").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxserve.sim.types import Arrivals, Counters


@struct.dataclass
class RingState:
    """Simulator state with ring-buffer queues. Times are float32 relative to `origin_s`.

    Field names shared with `EnvState` mean the same, so `EnvBase.queue_view` (and with it
    the observation and the policies) reads either state.
    """

    arrivals: Arrivals
    step: jax.Array  # () index of the current decision
    num_valid: jax.Array  # () int32 real arrivals (`valid` is a prefix); no lookups per step
    origin_s: jax.Array  # () int32 whole seconds
    now_s: jax.Array  # () time of the current arrival
    now_lo_s: jax.Array  # () rounding error of now_s (compensated clock, as in EnvState)
    rate_est: jax.Array  # () arrivals/s
    queue_len: jax.Array  # (K,) int32 requests waiting
    head: jax.Array  # (K,) int32 ring index of the oldest waiting request
    ring_arrival_s: jax.Array  # (K, Q) arrival time; ring index (head + p) % Q = position p
    ring_deadline_s: jax.Array  # (K, Q)
    ring_quality: jax.Array  # (K, Q) quality[task, k]
    ring_grace_s: jax.Array  # (K, Q) soft-deadline grace (ones for hard deadlines)
    # Whole seconds moved into `origin_s` but not yet subtracted from ring_arrival_s and
    # ring_deadline_s: done in the next admission's pass over them (same arithmetic).
    ring_shift_s: jax.Array  # ()
    free_s: jax.Array  # (K, R) completion time of the replica's last batch
    free_lo_s: jax.Array  # (K, R) rounding error of free_s (compensated clock)
    batch_size: jax.Array  # (K, R) int32 size of the batch in service, 0 = idle
    counters: Counters
    # Between micro-steps (`CounterEnv.micro_step`): the current decision's request is
    # admitted but events before the next arrival at `t_next_s` are still due.
    pending: jax.Array  # () bool
    t_next_s: jax.Array  # () next arrival time (NEVER_S: drain) while pending
    round: jax.Array  # () int32 event rounds done for the current decision


@struct.dataclass
class RingLoop:
    """What one round of the event loop changes (the ring itself is read-only there)."""

    head: jax.Array  # (K,)
    queue_len: jax.Array  # (K,)
    free_s: jax.Array  # (K, R)
    free_lo_s: jax.Array  # (K, R)
    batch_size: jax.Array  # (K, R)
    counters: Counters
    reward: jax.Array  # ()
    start_s: jax.Array  # (K,) when each model's next batch would start
    due: jax.Array  # (K,) bool: that start is at or before the next arrival
    round: jax.Array  # () int32


def fifo_positions(ring: jax.Array, head, capacity: int) -> jax.Array:
    """FIFO position of each ring index (Q,) in a queue whose oldest entry is at `head`."""
    pos = ring - head
    return jnp.where(pos < 0, pos + capacity, pos)


__all__ = ["RingLoop", "RingState", "fifo_positions"]
