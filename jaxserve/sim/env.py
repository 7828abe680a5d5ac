"""The serving environment: gymnax-style pure reset/step, jit- and vmap-able (docs/spec.md §3).

Semantics are pinned down in docs/simulator.md; the plain-Python oracle is sim/reference.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.sim.base import (
    EnvBase,
    active_capacity,
    current_task,
    deadline_scale,
    empty_counters,
    first_true,
    unit,
)
from jaxserve.sim.events import EventsMixin
from jaxserve.sim.rules import next_arrival_s, next_clock, request_deadline_s, start_clock
from jaxserve.sim.types import (
    FREE,
    REJECTED,
    WAITING,
    Arrivals,
    EnvState,
    Records,
    SimConfig,
    SimParams,
)


class ServingEnv(EventsMixin, EnvBase):
    """Multi-model LLM serving with FIFO queues, replicas and batching; one step = one decision."""

    def __init__(self, config: SimConfig):
        super().__init__(config)
        self._slot_mask = (
            np.arange(config.pad_slots)[None, :]
            < np.asarray(
                [
                    c + r * b
                    for c, r, b in zip(
                        config.queue_capacity, config.replicas, config.max_batch, strict=True
                    )
                ]
            )[:, None]
        )  # (K, S)

    # ------------------------------------------------------------------ reset
    def reset(self, key: jax.Array, params: SimParams, arrivals: Arrivals):
        """Empty system at the first arrival; returns (obs, state)."""
        del key  # the workload is already drawn; reset itself is deterministic
        cfg = self.config
        k, r, s = cfg.num_models, cfg.pad_replicas, cfg.pad_slots
        zeros = jnp.zeros((k, s), jnp.float32)
        state = EnvState(
            arrivals=arrivals,
            step=jnp.int32(0),
            **start_clock(arrivals, params),
            queue_len=jnp.zeros(k, jnp.int32),
            slot_replica=jnp.full((k, s), FREE, jnp.int32),
            slot_pos=jnp.zeros((k, s), jnp.int32),
            slot_arrival_s=zeros,
            slot_deadline_s=zeros,
            slot_quality=zeros,
            slot_grace_s=jnp.ones((k, s), jnp.float32),
            slot_decision=jnp.zeros((k, s), jnp.int32),
            free_s=jnp.zeros((k, r), jnp.float32),
            batch_size=jnp.zeros((k, r), jnp.int32),
            counters=empty_counters(cfg.num_actions),
            free_lo_s=jnp.zeros((k, r), jnp.float32),
        )
        return self.observe(state, params), state

    # ------------------------------------------------------------------- step
    def step(self, key: jax.Array, state: EnvState, action: jax.Array, params: SimParams):
        """Route the current request and advance to the next arrival.

        Returns (obs, state, reward, done, info).
        """
        arrivals = state.arrivals
        num_arrivals = arrivals.gap_s.shape[0]
        i = state.step
        active = (i < num_arrivals) & arrivals.valid[jnp.minimum(i, num_arrivals - 1)]
        nxt = jnp.minimum(i + 1, num_arrivals - 1)
        has_next = (i + 1 < num_arrivals) & arrivals.valid[nxt]
        gap_s = arrivals.gap_s[nxt].astype(jnp.float32)
        t_next, t_next_lo = next_arrival_s(state, gap_s, has_next)

        records = self._empty_records()
        new_state, records, reward = self._admit(state, action, params, records)
        new_state, records, reward, iterations = self._advance(
            key, new_state, params, t_next, records, reward
        )
        new_state = self._next_arrival(new_state, params, (t_next, t_next_lo), gap_s, has_next)

        # A step after the episode's end changes nothing (padded traces, finished lanes).
        new_state = jax.tree.map(
            lambda a, b: jnp.where(active, a, b),
            new_state.replace(arrivals=None),
            state.replace(arrivals=None),
        )
        new_state = new_state.replace(arrivals=arrivals, step=i + active.astype(jnp.int32))
        reward = jnp.where(active, reward, 0.0)
        info = {"active": active, "event_iterations": iterations}
        if self.config.emit_records:
            info["records"] = records.replace(mask=records.mask & active)
        done = ~has_next | ~active
        return self.observe(new_state, params), new_state, reward, done, info

    # ------------------------------------------------------------- admission
    def _admit(self, state: EnvState, action, params: SimParams, records: Records):
        """Reject (action or full queue) or put the current request in a free slot of `action`.

        Lookups by model and task are one-hot dot products: on CPU, a vmapped gather or
        scatter of a few elements costs far more than a short masked sum.
        """
        cfg = self.config
        i = state.step
        task = current_task(state)
        on_task = jax.nn.one_hot(task, cfg.num_tasks, dtype=jnp.float32)  # (T,)
        on_model = self._models == action  # (K,); all False for the reject action
        pick = lambda row: jnp.sum(jnp.where(on_model, row, 0))
        capacity = active_capacity(cfg, params)
        rejected = ~jnp.any(on_model) | (pick(state.queue_len) >= pick(capacity))
        free = (state.slot_replica == FREE) & self._slot_mask  # (K, S)
        slot = (
            on_model[:, None]
            & (jnp.arange(cfg.pad_slots) == first_true(free)[:, None])
            & (~rejected)
        )  # (K, S)
        put = lambda old, new: jnp.where(slot, new, old)
        quality = on_task @ params.quality  # (K,) quality of this task on each model
        deadline_s = request_deadline_s(
            state.now_s, on_task @ params.deadline_s, deadline_scale(state)
        )
        grace_s = on_task @ params.grace_s
        c = state.counters
        penalty = -params.miss_penalty.astype(jnp.float32)
        counters = c.replace(
            num_arrived=c.num_arrived + 1,
            num_outcome=c.num_outcome + rejected * unit(4, REJECTED),
            sum_utility=c.sum_utility + jnp.where(rejected, penalty, 0.0),
            sum_peak=c.sum_peak + jnp.max(quality),
            num_routed=c.num_routed
            + (jnp.arange(cfg.num_actions) == jnp.minimum(action, cfg.num_actions - 1)),
        )
        state = state.replace(
            slot_replica=put(state.slot_replica, WAITING),
            slot_pos=put(state.slot_pos, state.queue_len[:, None]),
            slot_arrival_s=put(state.slot_arrival_s, state.now_s),
            slot_deadline_s=put(state.slot_deadline_s, deadline_s),
            slot_quality=put(state.slot_quality, quality[:, None]),
            slot_grace_s=put(state.slot_grace_s, grace_s),
            slot_decision=put(state.slot_decision, i),
            queue_len=state.queue_len + jnp.any(slot, axis=1),
            counters=counters,
        )
        model = jnp.where(jnp.any(on_model), action, -1)
        records = self._append(
            records,
            rejected[None],
            i[None],
            jnp.full((1,), penalty),
            jnp.full((1,), REJECTED),
            model[None],
            jnp.zeros((1,)),
        )
        return state, records, jnp.where(rejected, penalty, 0.0)

    # ------------------------------------------------------------ bookkeeping
    def _next_arrival(self, state: EnvState, params: SimParams, t_next, gap_s, has_next):
        """Move the clock to `t_next` (hi, lo), update the rate estimate, shift the origin."""
        clock, shift = next_clock(state, params, t_next, gap_s, has_next)
        return state.replace(
            **clock,
            free_s=state.free_s - shift,
            slot_arrival_s=state.slot_arrival_s - shift,
            slot_deadline_s=state.slot_deadline_s - shift,
        )

    def _empty_records(self) -> Records:
        m = self.config.max_records if self.config.emit_records else 1
        return Records(
            mask=jnp.zeros(m, bool),
            decision=jnp.zeros(m, jnp.int32),
            utility=jnp.zeros(m, jnp.float32),
            outcome=jnp.zeros(m, jnp.int32),
            model=jnp.zeros(m, jnp.int32),
            latency_s=jnp.zeros(m, jnp.float32),
        )

    def _append(self, records: Records, mask, decision, utility, outcome, model, latency_s):
        """Append the masked entries at the first free positions (no-op without records)."""
        if not self.config.emit_records:
            return records
        m = records.mask.shape[0]
        count = jnp.sum(records.mask)
        pos = jnp.where(mask, count + jnp.cumsum(mask) - 1, m)  # out of range = dropped
        put = lambda buf, val: buf.at[pos].set(val.astype(buf.dtype), mode="drop")
        return Records(
            mask=put(records.mask, mask),
            decision=put(records.decision, decision),
            utility=put(records.utility, utility),
            outcome=put(records.outcome, outcome),
            model=put(records.model, model),
            latency_s=put(records.latency_s, latency_s),
        )


def in_system(state: EnvState) -> jax.Array:
    """Requests currently queued or in service."""
    return jnp.sum(state.queue_len) + jnp.sum(state.batch_size)


__all__ = [
    "ServingEnv",
    "current_task",
    "deadline_scale",
    "empty_counters",
    "in_system",
    "next_arrival_s",
    "next_clock",
    "start_clock",
]
