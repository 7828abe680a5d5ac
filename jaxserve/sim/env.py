"""The serving environment: gymnax-style pure reset/step, jit- and vmap-able (SPEC §3).

Semantics are pinned down in docs/simulator.md; the plain-Python oracle is sim/reference.py.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.sim import types
from jaxserve.sim.types import (
    DROPPED,
    FREE,
    LATE,
    NEVER_S,
    ON_TIME,
    REJECTED,
    WAITING,
    Arrivals,
    Counters,
    EnvState,
    Records,
    SimConfig,
    SimParams,
)

_INF = jnp.float32(np.inf)


class ServingEnv:
    """Multi-model LLM serving with FIFO queues, replicas and batching; one step = one decision."""

    def __init__(self, config: SimConfig):
        self.config = config
        k, s = config.num_models, config.pad_slots
        self._max_batch = np.asarray(config.max_batch, np.int32)  # (K,)
        self._capacity = np.asarray(config.queue_capacity, np.int32)  # (K,)
        self._replica_mask = (
            np.arange(config.pad_replicas)[None, :] < np.asarray(config.replicas)[:, None]
        )  # (K, R)
        self._slot_mask = (
            np.arange(s)[None, :]
            < np.asarray(
                [
                    c + r * b
                    for c, r, b in zip(
                        config.queue_capacity, config.replicas, config.max_batch, strict=True
                    )
                ]
            )[:, None]
        )  # (K, S)
        self._sizes = np.arange(1, config.pad_batch + 1, dtype=np.int32)  # (B,) batch sizes
        self._models = np.arange(k, dtype=np.int32)

    def __hash__(self):  # equal configs share compiled code (env is a static jit argument)
        return hash(self.config)

    def __eq__(self, other):
        return isinstance(other, ServingEnv) and other.config == self.config

    @property
    def num_actions(self) -> int:
        return self.config.num_actions

    @property
    def obs_size(self) -> int:
        return self.config.obs_size

    # ------------------------------------------------------------------ reset
    def reset(self, key: jax.Array, params: SimParams, arrivals: Arrivals):
        """Empty system at the first arrival; returns (obs, state)."""
        del key  # the workload is already drawn; reset itself is deterministic
        cfg = self.config
        k, r, s = cfg.num_models, cfg.pad_replicas, cfg.pad_slots
        first_s = arrivals.gap_s[0].astype(jnp.float32)
        origin_s = jnp.floor(first_s).astype(jnp.int32)
        counters = Counters(
            num_arrived=jnp.int32(0),
            num_outcome=jnp.zeros(4, jnp.int32),
            sum_utility=jnp.float32(0.0),
            sum_peak=jnp.float32(0.0),
            sum_latency_s=jnp.float32(0.0),
            num_routed=jnp.zeros(cfg.num_actions, jnp.int32),
        )
        zeros = jnp.zeros((k, s), jnp.float32)
        state = EnvState(
            arrivals=arrivals,
            step=jnp.int32(0),
            origin_s=origin_s,
            now_s=first_s - origin_s.astype(jnp.float32),
            rate_est=1.0 / params.rate_window_s.astype(jnp.float32),
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
            counters=counters,
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
        t_next = jnp.where(has_next, state.now_s + gap_s, NEVER_S)

        records = self._empty_records()
        new_state, records, reward = self._admit(state, action, params, records)
        new_state, records, reward, iterations = self._advance(
            key, new_state, params, t_next, records, reward
        )
        new_state = self._next_arrival(new_state, params, t_next, gap_s, has_next)

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
        task = state.arrivals.task[jnp.minimum(i, state.arrivals.task.shape[0] - 1)]
        on_task = jax.nn.one_hot(task, cfg.num_tasks, dtype=jnp.float32)  # (T,)
        on_model = self._models == action  # (K,); all False for the reject action
        pick = lambda row: jnp.sum(jnp.where(on_model, row, 0))
        rejected = ~jnp.any(on_model) | (pick(state.queue_len) >= pick(self._capacity))
        free = (state.slot_replica == FREE) & self._slot_mask  # (K, S)
        slot = (
            on_model[:, None]
            & (jnp.arange(cfg.pad_slots) == _first_true(free)[:, None])
            & (~rejected)
        )  # (K, S)
        put = lambda old, new: jnp.where(slot, new, old)
        quality = on_task @ params.quality  # (K,) quality of this task on each model
        deadline_s = (on_task @ params.deadline_s) * deadline_scale(state)
        grace_s = on_task @ params.grace_s
        c = state.counters
        penalty = -params.miss_penalty.astype(jnp.float32)
        counters = c.replace(
            num_arrived=c.num_arrived + 1,
            num_outcome=c.num_outcome + rejected * _unit(4, REJECTED),
            sum_utility=c.sum_utility + jnp.where(rejected, penalty, 0.0),
            sum_peak=c.sum_peak + jnp.max(quality),
            num_routed=c.num_routed
            + (jnp.arange(cfg.num_actions) == jnp.minimum(action, cfg.num_actions - 1)),
        )
        state = state.replace(
            slot_replica=put(state.slot_replica, WAITING),
            slot_pos=put(state.slot_pos, state.queue_len[:, None]),
            slot_arrival_s=put(state.slot_arrival_s, state.now_s),
            slot_deadline_s=put(state.slot_deadline_s, state.now_s + deadline_s),
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

    # --------------------------------------------------------------- advance
    def _advance(self, key, state: EnvState, params: SimParams, t_next, records, reward):
        """Process every completion and batch start at times <= t_next, models in parallel.

        One loop iteration handles, per model, its next event: a completion, then (at the
        same instant, as the separate-event order would) a batch start if one is due.
        Only the fields that events change travel in the loop carry: under vmap a batched
        while_loop re-selects its whole carry at every iteration, so a lean carry is fast.
        """
        fixed = state

        def unpack(carry) -> EnvState:
            slot_replica, slot_pos, queue_len, free_s, batch_size, counters = carry
            return fixed.replace(
                slot_replica=slot_replica,
                slot_pos=slot_pos,
                queue_len=queue_len,
                free_s=free_s,
                batch_size=batch_size,
                counters=counters,
            )

        def pack(state: EnvState):
            return (
                state.slot_replica,
                state.slot_pos,
                state.queue_len,
                state.free_s,
                state.batch_size,
                state.counters,
            )

        def cond(carry):
            fields, t_cur, *_ = carry
            t_complete, t_start = self._event_times(unpack(fields), params, t_cur)
            return jnp.any(jnp.minimum(t_complete, t_start) <= t_next)

        def body(carry):
            fields, t_cur, records, reward, it = carry
            state = unpack(fields)
            t_complete, t_start = self._event_times(state, params, t_cur)
            t_event = jnp.minimum(t_complete, t_start)
            happens = t_event <= t_next  # (K,)
            complete = happens & (t_complete <= t_start)  # ties: completion first
            state, records, reward = self._complete(
                params, state, complete, t_event, records, reward
            )
            _, t_start = self._event_times(state, params, t_event)
            start = happens & (t_start <= t_event)
            key_it = jax.random.fold_in(key, it) if self.config.service_noise else key
            state, records, reward = self._start(
                key_it, state, params, start, t_event, records, reward
            )
            return pack(state), jnp.where(happens, t_event, t_cur), records, reward, it + 1

        t_cur = jnp.full((self.config.num_models,), state.now_s)
        carry = (pack(state), t_cur, records, reward, jnp.int32(0))
        fields, _, records, reward, iterations = jax.lax.while_loop(cond, body, carry)
        return unpack(fields), records, reward, iterations

    def _event_times(self, state: EnvState, params: SimParams, t_cur):
        """Per model (K,): next completion time and next possible batch-start time."""
        busy = state.batch_size > 0  # (K, R)
        t_complete = jnp.min(jnp.where(busy, state.free_s, _INF), axis=1)
        any_idle = jnp.any(~busy & self._replica_mask, axis=1)
        waiting = state.slot_replica == WAITING
        oldest_s = jnp.min(jnp.where(waiting, state.slot_arrival_s, _INF), axis=1)
        ready_now = (params.max_wait_s <= 0) | (state.queue_len >= self._max_batch)
        ready_s = jnp.where(ready_now, -_INF, oldest_s + params.max_wait_s)
        can_start = any_idle & (state.queue_len > 0)
        return t_complete, jnp.where(can_start, jnp.maximum(t_cur, ready_s), _INF)

    def _complete(self, params: SimParams, state: EnvState, complete, t_s, records, reward):
        """Finish, at t_s (K,), the earliest-completing batch of each model in `complete`."""
        busy_free_s = jnp.where(state.batch_size > 0, state.free_s, _INF)
        replica = _first_true(busy_free_s == jnp.min(busy_free_s, axis=1, keepdims=True))
        done = complete[:, None] & (state.slot_replica == replica[:, None])  # (K, S)
        pick = complete[:, None] & (jnp.arange(self.config.pad_replicas) == replica[:, None])
        lateness = t_s[:, None] - state.slot_deadline_s
        utility = self._utility(params, state.slot_quality, state.slot_grace_s, lateness)
        on_time = lateness <= 0
        latency = t_s[:, None] - state.slot_arrival_s
        records = self._append(
            records,
            done.ravel(),
            state.slot_decision.ravel(),
            utility.ravel(),
            jnp.where(on_time, ON_TIME, LATE).ravel(),
            jnp.broadcast_to(self._models[:, None], done.shape).ravel(),
            latency.ravel(),
        )
        c = state.counters
        gained = jnp.sum(jnp.where(done, utility, 0.0))
        num_done, num_on_time = jnp.sum(done), jnp.sum(done & on_time)
        counters = c.replace(
            num_outcome=c.num_outcome
            + num_on_time * _unit(4, ON_TIME)
            + (num_done - num_on_time) * _unit(4, LATE),
            sum_utility=c.sum_utility + gained,
            sum_latency_s=c.sum_latency_s + jnp.sum(jnp.where(done, latency, 0.0)),
        )
        state = state.replace(
            slot_replica=jnp.where(done, FREE, state.slot_replica),
            batch_size=jnp.where(pick, 0, state.batch_size),
            counters=counters,
        )
        return state, records, reward + gained

    def _start(self, key, state: EnvState, params: SimParams, start, t_s, records, reward):
        """Drop expired requests, then start one batch per model flagged in `start` (K,)."""
        cfg = self.config
        waiting = state.slot_replica == WAITING  # (K, S)
        pos = state.slot_pos
        if cfg.drop_expired:
            lat1 = params.latency_s[:, :1]
            dropped = waiting & start[:, None] & (t_s[:, None] + lat1 > state.slot_deadline_s)
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
                num_outcome=c.num_outcome + num_dropped * _unit(4, DROPPED),
                sum_utility=c.sum_utility + penalty * num_dropped,
            ),
        )
        state = self._load_batch(key, state, params, t_s, size, keep & (pos < size[:, None]))
        state = state.replace(
            slot_pos=jnp.where(keep, state.slot_pos - size[:, None], state.slot_pos),
            queue_len=num_keep - size,
        )
        return state, records, reward + penalty * num_dropped

    def _batch_size(self, params: SimParams, t_s, num_keep, keep, pos, state: EnvState):
        """Batch size under the `max` or `deadline` rule (SPEC §3.3), per model (K,).

        Deadline rule: request j (FIFO position p_j) tolerates batches up to m_j = #{b:
        t + latency[b] <= deadline_j}; it is in a batch of b iff p_j < b, so b is feasible
        iff b <= max(p_j, m_j) for all j, and the largest feasible b is min_j max(p_j, m_j).
        """
        limit = jnp.minimum(num_keep, self._max_batch)  # (K,)
        if self.config.batching == "max":
            return limit
        finish_s = t_s[:, None] + params.latency_s  # (K, B)
        if self.config.fifo_deadlines:  # the oldest kept request has the earliest deadline
            earliest = jnp.min(jnp.where(keep, state.slot_deadline_s, _INF), axis=1)
            fits = jnp.sum(finish_s <= earliest[:, None], axis=1)
            return jnp.clip(fits, 1, jnp.maximum(limit, 1)).astype(jnp.int32) * (limit > 0)
        tolerated = jnp.sum(finish_s[:, None, :] <= state.slot_deadline_s[:, :, None], axis=2)
        bound = jnp.min(jnp.where(keep, jnp.maximum(pos, tolerated), cfg_big(self)), axis=1)
        return jnp.clip(bound, 1, jnp.maximum(limit, 1)).astype(jnp.int32) * (limit > 0)

    def _load_batch(self, key, state: EnvState, params: SimParams, t_s, size, member):
        """Put `member` requests (K, S) on the lowest-index idle replica of each model."""
        cfg = self.config
        base_s = jnp.sum(jnp.where(self._sizes == size[:, None], params.latency_s, 0.0), axis=1)
        if cfg.service_noise:
            base_s = base_s * jnp.exp(
                params.noise_sigma * jax.random.normal(key, (cfg.num_models,))
            )
        done_s = t_s + base_s  # (K,)
        idle = (state.batch_size == 0) & self._replica_mask
        replica = _first_true(idle)
        pick = (jnp.arange(cfg.pad_replicas) == replica[:, None]) & (size > 0)[:, None]
        return state.replace(
            slot_replica=jnp.where(member, replica[:, None], state.slot_replica),
            free_s=jnp.where(pick, done_s[:, None], state.free_s),
            batch_size=jnp.where(pick, size[:, None], state.batch_size),
        )

    def _utility(self, params: SimParams, quality, grace_s, lateness):
        """Utility of completed requests (SPEC §3.5)."""
        cfg = self.config
        if cfg.deadline_kind == "hard":
            return jnp.where(lateness <= 0, quality, -params.miss_penalty.astype(jnp.float32))
        x = jnp.maximum(lateness, 0.0)
        if cfg.decay == "linear":
            decay = jnp.maximum(0.0, 1.0 - x / grace_s)
        else:
            decay = jnp.exp(-x / grace_s)
        return quality * decay

    # ------------------------------------------------------------ bookkeeping
    def _next_arrival(self, state: EnvState, params: SimParams, t_next, gap_s, has_next):
        """Move the clock to the next arrival, update the rate estimate, shift the origin."""
        window = params.rate_window_s.astype(jnp.float32)
        rate = jnp.where(
            has_next, state.rate_est * jnp.exp(-gap_s / window) + 1.0 / window, state.rate_est
        )
        now = jnp.where(has_next, t_next, state.now_s)
        # Whole seconds move into the integer origin; integer shifts of float32 are exact.
        shift = jnp.where(now >= 1.0, jnp.floor(now), 0.0)
        return state.replace(
            now_s=now - shift,
            origin_s=state.origin_s + shift.astype(jnp.int32),
            rate_est=rate,
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

    # ------------------------------------------------------------ observation
    def observe(self, state: EnvState, params: SimParams) -> jax.Array:
        """Observation for the current decision (SPEC §3.6; layout in docs/simulator.md)."""
        cfg = self.config
        num_arrivals = state.arrivals.task.shape[0]
        task = state.arrivals.task[jnp.minimum(state.step, num_arrivals - 1)]
        one_hot = jax.nn.one_hot(task, cfg.num_tasks, dtype=jnp.float32)
        scale = (self._max_batch * np.asarray(cfg.replicas)).astype(np.float32)
        in_service = jnp.sum(state.batch_size, axis=1).astype(jnp.float32)
        queued = state.queue_len.astype(jnp.float32)
        rate = (state.rate_est / params.reference_rate)[None]
        factor = deadline_scale(state)
        extra = [factor[None]] if cfg.observe_deadline else []
        if cfg.obs_mode == "paper":
            return jnp.concatenate([one_hot, (queued + in_service) / scale, rate, *extra])
        busy = state.batch_size > 0
        earliest = jnp.min(
            jnp.where(self._replica_mask, jnp.where(busy, state.free_s, state.now_s), _INF), axis=1
        )
        wait = jnp.maximum(earliest - state.now_s, 0.0) / (params.deadline_s[task] * factor)
        return jnp.concatenate([one_hot, queued / scale, in_service / scale, wait, rate, *extra])


def deadline_scale(state: EnvState) -> jax.Array:
    """Deadline factor of the current request (1 without dynamic deadlines)."""
    scale = state.arrivals.deadline_scale
    if scale is None:
        return jnp.float32(1.0)
    return scale[jnp.minimum(state.step, scale.shape[0] - 1)]


def _unit(size: int, index: int) -> np.ndarray:
    """Unit vector e_index (int32), for adding to counters without a scatter."""
    return (np.arange(size) == index).astype(np.int32)


def _first_true(mask: jax.Array) -> jax.Array:
    """Index of the first True along the last axis (size if none); cheaper than argmax on CPU."""
    size = mask.shape[-1]
    return jnp.min(jnp.where(mask, jnp.arange(size, dtype=jnp.int32), size), axis=-1)


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


def cfg_big(env: ServingEnv) -> int:
    """An int larger than any batch size or queue position."""
    return env.config.pad_slots + env.config.pad_batch + 1


def in_system(state: EnvState) -> jax.Array:
    """Requests currently queued or in service."""
    return jnp.sum(state.queue_len) + jnp.sum(state.batch_size)


def run_actions(env: ServingEnv, params: SimParams, arrivals: Arrivals, actions, key=None):
    """Replay a fixed action sequence; per-decision outcome ledger as numpy arrays (tests, CLI)."""
    if key is None:
        key = jax.random.key(0)
    result = _replay(env, params, arrivals, jnp.asarray(actions, jnp.int32), key)
    return jax.tree.map(np.asarray, result)


@functools.partial(jax.jit, static_argnames="env")
def _replay(env: ServingEnv, params, arrivals, actions, key):
    from jaxserve.sim.rollout import ledger_rollout

    policy = lambda key, obs, state, params: actions[jnp.minimum(state.step, actions.shape[0] - 1)]
    return ledger_rollout(env, policy, key, params, arrivals)


__all__ = ["ServingEnv", "in_system", "run_actions", "types"]
