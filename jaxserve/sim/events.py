"""Between two decisions: batch completions and starts, processed per model (docs/spec.md §3.3-3.5).

`EventsMixin` holds the event-loop half of `ServingEnv` (env.py holds admission and the
step itself); the rules it applies are rules.py's. Semantics: docs/simulator.md.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxserve.sim.base import first_true, replica_mask, unit
from jaxserve.sim.rules import (
    INF,
    add_time,
    deadline_rule_batch_size,
    deadline_rule_batch_size_fifo,
    expired,
    max_rule_batch_size,
    ready_time_s,
    utility,
)
from jaxserve.sim.types import (
    DROPPED,
    FREE,
    LATE,
    ON_TIME,
    WAITING,
    EnvState,
    SimParams,
)


class EventsMixin:
    """Event processing for `ServingEnv` (uses its config and static masks)."""

    def _advance(self, key, state: EnvState, params: SimParams, t_next, records, reward):
        """Process every completion and batch start at times <= t_next, models in parallel.

        One loop iteration handles, per model, its next event: a completion, then (at the
        same instant, as the separate-event order would) a batch start if one is due.
        Only the fields that events change travel in the loop carry: under vmap a batched
        while_loop re-selects its whole carry at every iteration, so a lean carry is fast.
        """
        fixed = state

        def unpack(carry) -> EnvState:
            slot_replica, slot_pos, queue_len, free_s, free_lo_s, batch_size, counters = carry
            return fixed.replace(
                slot_replica=slot_replica,
                slot_pos=slot_pos,
                queue_len=queue_len,
                free_s=free_s,
                free_lo_s=free_lo_s,
                batch_size=batch_size,
                counters=counters,
            )

        def pack(state: EnvState):
            return (
                state.slot_replica,
                state.slot_pos,
                state.queue_len,
                state.free_s,
                state.free_lo_s,
                state.batch_size,
                state.counters,
            )

        # The carry holds the next event times, computed once at the end of each iteration
        # (and once before the loop), so the loop condition is a cheap comparison. Event
        # times are compared by their float32 part; each also has a lo part (the compensated
        # clock) that a batch started then inherits: a completion's is its replica's, a
        # start's is that of the model's last event if it starts then (else it waited for a
        # max_wait ready time, which has none).
        def cond(carry):
            t_complete, t_start = carry[2]
            return jnp.any(jnp.minimum(t_complete, t_start) <= t_next)

        def body(carry):
            fields, (t_cur, t_cur_lo), (t_complete, t_start), records, reward, it = carry
            state = unpack(fields)
            t_event = jnp.minimum(t_complete, t_start)
            happens = t_event <= t_next  # (K,)
            complete = happens & (t_complete <= t_start)  # ties: completion first
            state, records, reward, t_complete_lo = self._complete(
                params, state, complete, t_event, records, reward
            )
            t_start_lo = jnp.where(t_event == t_cur, t_cur_lo, 0.0)
            t_event_lo = jnp.where(complete, t_complete_lo, t_start_lo)
            _, t_start = self._event_times(state, params, t_event)
            start = happens & (t_start <= t_event)
            key_it = jax.random.fold_in(key, it) if self.config.service_noise else key
            state, records, reward = self._start(
                key_it, state, params, start, (t_event, t_event_lo), records, reward
            )
            t_cur = jnp.where(happens, t_event, t_cur)
            t_cur_lo = jnp.where(happens, t_event_lo, t_cur_lo)
            times = self._event_times(state, params, t_cur)
            return pack(state), (t_cur, t_cur_lo), times, records, reward, it + 1

        t_cur = jnp.full((self.config.num_models,), state.now_s)
        t_cur_lo = jnp.full((self.config.num_models,), state.now_lo_s)
        times = self._event_times(state, params, t_cur)
        carry = (pack(state), (t_cur, t_cur_lo), times, records, reward, jnp.int32(0))
        fields, _, _, records, reward, iterations = jax.lax.while_loop(cond, body, carry)
        return unpack(fields), records, reward, iterations

    def _event_times(self, state: EnvState, params: SimParams, t_cur):
        """Per model (K,): next completion time and next possible batch-start time."""
        busy = state.batch_size > 0  # (K, R)
        t_complete = jnp.min(jnp.where(busy, state.free_s, INF), axis=1)
        any_idle = jnp.any(~busy & replica_mask(self.config, params), axis=1)
        if self.config.max_wait:
            waiting = state.slot_replica == WAITING
            oldest_s = jnp.min(jnp.where(waiting, state.slot_arrival_s, INF), axis=1)
            ready_s = ready_time_s(oldest_s, state.queue_len, self._max_batch, params.max_wait_s)
        else:
            ready_s = -INF
        can_start = any_idle & (state.queue_len > 0)
        return t_complete, jnp.where(can_start, jnp.maximum(t_cur, ready_s), INF)

    def _complete(self, params: SimParams, state: EnvState, complete, t_s, records, reward):
        """Finish, at t_s (K,), the earliest-completing batch of each model in `complete`.

        Also returns the lo part of each completion time (K,; 0 where none completes).
        """
        cfg = self.config
        busy_free_s = jnp.where(state.batch_size > 0, state.free_s, INF)
        replica = first_true(busy_free_s == jnp.min(busy_free_s, axis=1, keepdims=True))
        done = complete[:, None] & (state.slot_replica == replica[:, None])  # (K, S)
        pick = complete[:, None] & (jnp.arange(cfg.pad_replicas) == replica[:, None])
        lateness = t_s[:, None] - state.slot_deadline_s
        gains = utility(
            state.slot_quality,
            state.slot_grace_s,
            lateness,
            params.miss_penalty,
            cfg.deadline_kind,
            cfg.decay,
        )
        on_time = lateness <= 0
        latency = t_s[:, None] - state.slot_arrival_s
        records = self._append(
            records,
            done.ravel(),
            state.slot_decision.ravel(),
            gains.ravel(),
            jnp.where(on_time, ON_TIME, LATE).ravel(),
            jnp.broadcast_to(self._models[:, None], done.shape).ravel(),
            latency.ravel(),
        )
        c = state.counters
        gained = jnp.sum(jnp.where(done, gains, 0.0))
        num_done, num_on_time = jnp.sum(done), jnp.sum(done & on_time)
        counters = c.replace(
            num_outcome=c.num_outcome
            + num_on_time * unit(4, ON_TIME)
            + (num_done - num_on_time) * unit(4, LATE),
            sum_utility=c.sum_utility + gained,
            sum_latency_s=c.sum_latency_s + jnp.sum(jnp.where(done, latency, 0.0)),
        )
        state = state.replace(
            slot_replica=jnp.where(done, FREE, state.slot_replica),
            batch_size=jnp.where(pick, 0, state.batch_size),
            counters=counters,
        )
        t_lo = jnp.sum(jnp.where(pick, state.free_lo_s, 0.0), axis=1)
        return state, records, reward + gained, t_lo

    def _start(self, key, state: EnvState, params: SimParams, start, t, records, reward):
        """Drop expired requests, then start one batch per model flagged in `start` (K,).

        `t` is the start time per model as (float32 part, lo part), both (K,).
        """
        cfg = self.config
        t_s = t[0]
        waiting = state.slot_replica == WAITING  # (K, S)
        pos = state.slot_pos
        if cfg.drop_expired:
            lat1 = params.latency_s[:, :1]
            dropped = waiting & start[:, None] & expired(t_s[:, None], state.slot_deadline_s, lat1)
            if cfg.fifo_deadlines:  # the dropped are exactly the oldest requests
                pos = pos - jnp.sum(dropped, axis=1, keepdims=True)
            else:
                pos = pos - _drops_ahead(pos, dropped)
        else:
            dropped = jnp.zeros_like(waiting)
        keep = waiting & ~dropped
        num_keep = state.queue_len - jnp.sum(dropped, axis=1)
        size = jnp.where(start, self._batch_size(params, t_s, num_keep, keep, pos, state), 0)

        penalty = -params.miss_penalty.astype(jnp.float32)
        records = self._append(
            records,
            dropped.ravel(),
            state.slot_decision.ravel(),
            jnp.full(dropped.size, penalty),
            jnp.full(dropped.size, DROPPED),
            jnp.broadcast_to(self._models[:, None], dropped.shape).ravel(),
            jnp.zeros(dropped.size),
        )
        num_dropped = jnp.sum(dropped)
        c = state.counters
        state = state.replace(
            slot_replica=jnp.where(dropped, FREE, state.slot_replica),
            slot_pos=pos,
            counters=c.replace(
                num_outcome=c.num_outcome + num_dropped * unit(4, DROPPED),
                sum_utility=c.sum_utility + penalty * num_dropped,
            ),
        )
        state = self._load_batch(key, state, params, t, size, keep & (pos < size[:, None]))
        state = state.replace(
            slot_pos=jnp.where(keep, state.slot_pos - size[:, None], state.slot_pos),
            queue_len=num_keep - size,
        )
        return state, records, reward + penalty * num_dropped

    def _batch_size(self, params: SimParams, t_s, num_keep, keep, pos, state: EnvState):
        """Batch size under the `max` or `deadline` rule (rules.py), per model (K,)."""
        limit = max_rule_batch_size(num_keep, self._max_batch)  # (K,)
        if self.config.batching == "max":
            return limit
        finish_s = t_s[:, None] + params.latency_s  # (K, B)
        if self.config.fifo_deadlines:  # the oldest kept request has the earliest deadline
            earliest = jnp.min(jnp.where(keep, state.slot_deadline_s, INF), axis=1)
            return deadline_rule_batch_size_fifo(finish_s, earliest, limit)
        return deadline_rule_batch_size(finish_s, state.slot_deadline_s, pos, keep, limit)

    def _load_batch(self, key, state: EnvState, params: SimParams, t, size, member):
        """Put `member` requests (K, S) on the lowest-index idle replica of each model.

        The batch starts at `t` = (float32 part, lo part), both (K,); its completion time
        is their sum plus the service time, rounded by the compensated clock (`add_time`).
        """
        cfg = self.config
        base_s = jnp.sum(jnp.where(self._sizes == size[:, None], params.latency_s, 0.0), axis=1)
        if cfg.service_noise:
            base_s = base_s * jnp.exp(
                params.noise_sigma * jax.random.normal(key, (cfg.num_models,))
            )
        done_s, done_lo_s = add_time(*t, base_s)  # (K,)
        idle = (state.batch_size == 0) & replica_mask(cfg, params)
        replica = first_true(idle)
        pick = (jnp.arange(cfg.pad_replicas) == replica[:, None]) & (size > 0)[:, None]
        return state.replace(
            slot_replica=jnp.where(member, replica[:, None], state.slot_replica),
            free_s=jnp.where(pick, done_s[:, None], state.free_s),
            free_lo_s=jnp.where(pick, done_lo_s[:, None], state.free_lo_s),
            batch_size=jnp.where(pick, size[:, None], state.batch_size),
        )


def _drops_ahead(pos: jax.Array, dropped: jax.Array) -> jax.Array:
    """For each slot (K, S), how many dropped requests were ahead of it in FIFO order.

    A histogram of dropped positions, its exclusive prefix sum, read back at each position:
    O(S) per model instead of comparing all pairs.
    """
    k, s = pos.shape
    rows = jnp.arange(k)[:, None]
    by_pos = (
        jnp.zeros((k, s), jnp.int32)
        .at[rows, jnp.clip(pos, 0, s - 1)]
        .add(dropped.astype(jnp.int32))
    )
    ahead = jnp.cumsum(by_pos, axis=1) - by_pos
    return jnp.take_along_axis(ahead, jnp.clip(pos, 0, s - 1), axis=1)


__all__ = ["EventsMixin", "add_time"]  # add_time: rules.py, re-exported for older imports
