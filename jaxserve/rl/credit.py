"""Decision credit (docs/spec.md §3.7): each request's utility goes to the decision that routed it.

A request resolves some steps after its decision (when its batch completes, or when it is
dropped), so transitions cannot be formed at decision time. Each environment keeps a
*pending table* of its last `W` decisions, slot `d % W` for decision `d` of the episode:
(obs_d, a_d, obs_{d+1}, done_d, utility, resolved). At step `d`:
  1. the entry in slot `d % W` (decision `d - W`) leaves the table as a transition, valid
     iff that request has resolved (hard deadlines resolve within the deadline, so with
     `W` decisions of slack only extreme rates leave any unresolved; they are counted);
  2. decision `d` is written into the slot;
  3. this step's resolved-request records add their utility to their decisions' slots
     (records of decisions older than the window are ignored, they already left).
At the episode's end the drain has resolved every request, and the whole table is flushed.
Fixed shapes throughout: one transition out per env per step, W at the end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxserve.rl.buffer import Transitions


@struct.dataclass
class PendingTable:
    """The last W decisions of one environment, awaiting their requests' utilities."""

    obs: jax.Array  # (W, O)
    action: jax.Array  # (W,) int32
    next_obs: jax.Array  # (W, O)
    continuation: jax.Array  # (W,) f32, 0 if the episode ended after this decision
    utility: jax.Array  # (W,) f32 sum of resolved utility
    resolved: jax.Array  # (W,) bool
    filled: jax.Array  # (W,) bool slot holds a decision of this episode


def pending_init(window: int, obs_size: int) -> PendingTable:
    """Empty table for one environment."""
    zeros_obs = jnp.zeros((window, obs_size), jnp.float32)
    return PendingTable(
        obs=zeros_obs,
        action=jnp.zeros(window, jnp.int32),
        next_obs=zeros_obs,
        continuation=jnp.zeros(window, jnp.float32),
        utility=jnp.zeros(window, jnp.float32),
        resolved=jnp.zeros(window, bool),
        filled=jnp.zeros(window, bool),
    )


def _as_transitions(table: PendingTable, valid: jax.Array) -> Transitions:
    return Transitions(
        obs=table.obs,
        action=table.action,
        reward=table.utility,
        continuation=table.continuation,
        next_obs=table.next_obs,
        valid=valid,
    )


def pending_step(
    table: PendingTable,
    decision: jax.Array,
    obs: jax.Array,
    action: jax.Array,
    next_obs: jax.Array,
    done: jax.Array,
    record_mask: jax.Array,
    record_decision: jax.Array,
    record_utility: jax.Array,
):
    """One decision of one env; returns (table, leaving transition (unbatched), unresolved).

    Args:
      decision: () index of this decision in the episode.
      record_mask, record_decision, record_utility: (M,) requests resolved during this step.
    """
    window = table.action.shape[0]
    slot = decision % window
    leaving = jax.tree.map(lambda x: x[slot], table)
    out = _as_transitions(leaving, leaving.filled & leaving.resolved)
    unresolved = leaving.filled & ~leaving.resolved
    table = jax.tree.map(
        lambda buf, new: buf.at[slot].set(new),
        table,
        PendingTable(
            obs=obs,
            action=action.astype(jnp.int32),
            next_obs=next_obs,
            continuation=1.0 - done.astype(jnp.float32),
            utility=jnp.float32(0.0),
            resolved=jnp.bool_(False),
            filled=jnp.bool_(True),
        ),
    )
    in_window = record_mask & (decision - record_decision < window) & (record_decision <= decision)
    where = jnp.where(in_window, record_decision % window, window)  # out of range = dropped
    table = table.replace(
        utility=table.utility.at[where].add(record_utility, mode="drop"),
        resolved=table.resolved.at[where].set(True, mode="drop"),
    )
    return table, out, unresolved


def pending_flush(table: PendingTable) -> tuple[Transitions, jax.Array]:
    """Every decision still in the table (episode end); (transitions (W,), num unresolved)."""
    out = _as_transitions(table, table.filled & table.resolved)
    return out, jnp.sum(table.filled & ~table.resolved)
