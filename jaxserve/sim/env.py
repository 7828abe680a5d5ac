"""The serving environment: gymnax-style pure reset/step, jit- and vmap-able (docs/spec.md §3).

Semantics are pinned down in docs/simulator.md; the plain-Python oracle is sim/reference.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.sim.events import EventsMixin, add_time, first_true, unit
from jaxserve.sim.types import (
    FREE,
    NEVER_S,
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


class ServingEnv(EventsMixin):
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
        rejected = ~jnp.any(on_model) | (pick(state.queue_len) >= pick(self._capacity))
        free = (state.slot_replica == FREE) & self._slot_mask  # (K, S)
        slot = (
            on_model[:, None]
            & (jnp.arange(cfg.pad_slots) == first_true(free)[:, None])
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

    # ------------------------------------------------------------ observation
    def observe(self, state: EnvState, params: SimParams) -> jax.Array:
        """Observation for the current decision (docs/spec.md §3.6; layout in docs/simulator.md)."""
        cfg = self.config
        task = current_task(state)
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


def start_clock(arrivals: Arrivals, params: SimParams) -> dict:
    """State fields of the clock at the first arrival: origin_s, now_s, now_lo_s, rate_est."""
    first_s = arrivals.gap_s[0].astype(jnp.float32)
    origin_s = jnp.floor(first_s).astype(jnp.int32)
    return {
        "origin_s": origin_s,
        "now_s": first_s - origin_s.astype(jnp.float32),  # exact: no lo part
        "now_lo_s": jnp.float32(0.0),
        "rate_est": 1.0 / params.rate_window_s.astype(jnp.float32),
    }


def next_arrival_s(state, gap_s, has_next) -> tuple[jax.Array, jax.Array]:
    """Time of the next arrival as (hi, lo) relative to the origin; NEVER_S if there is none.

    The arrival clock is compensated (`add_time`): summing float32 gaps directly drifts by
    microseconds per 10^5 arrivals (docs/simulator.md, "Clock precision"). After an origin
    shift `now_lo_s` can exceed half an ulp of the smaller `now_s`, so a gap of 0 (or one
    below that lo) could round to a time before `now_s`: such an arrival is at `now_s`,
    with the rest in its lo part, so simultaneous arrivals share one float32 time.
    """
    t_next, t_next_lo = add_time(state.now_s, state.now_lo_s, gap_s)
    at_now = (gap_s == 0) | (t_next < state.now_s)
    t_next_lo = jnp.where(at_now, state.now_lo_s + gap_s, t_next_lo)
    t_next = jnp.where(at_now, state.now_s, t_next)
    return jnp.where(has_next, t_next, NEVER_S), jnp.where(has_next, t_next_lo, 0.0)


def next_clock(state, params: SimParams, t_next, gap_s, moves) -> tuple[dict, jax.Array]:
    """Clock fields (now_s, now_lo_s, origin_s, rate_est) at the next arrival, and the shift.

    `t_next` is the arrival time as (hi, lo). Whole seconds move into the integer origin;
    the caller subtracts the returned shift from every other stored time. Subtracting an
    integer from a float32 time that is at least that integer (the clock, busy replicas,
    future deadlines) is exact, and a lo part is unchanged by a shift.
    """
    window = params.rate_window_s.astype(jnp.float32)
    rate = jnp.where(
        moves, state.rate_est * jnp.exp(-gap_s / window) + 1.0 / window, state.rate_est
    )
    t_next_s, t_next_lo = t_next
    now = jnp.where(moves, t_next_s, state.now_s)
    shift = jnp.where(now >= 1.0, jnp.floor(now), 0.0)
    clock = {
        "now_s": now - shift,
        "now_lo_s": jnp.where(moves, t_next_lo, state.now_lo_s),
        "origin_s": state.origin_s + shift.astype(jnp.int32),
        "rate_est": rate,
    }
    return clock, shift


def empty_counters(num_actions: int) -> Counters:
    """Running totals at the start of an episode."""
    return Counters(
        num_arrived=jnp.int32(0),
        num_outcome=jnp.zeros(4, jnp.int32),
        sum_utility=jnp.float32(0.0),
        sum_peak=jnp.float32(0.0),
        sum_latency_s=jnp.float32(0.0),
        num_routed=jnp.zeros(num_actions, jnp.int32),
    )


def current_task(state: EnvState) -> jax.Array:
    """Task of the request being routed."""
    return state.arrivals.task[jnp.minimum(state.step, state.arrivals.task.shape[0] - 1)]


def deadline_scale(state: EnvState) -> jax.Array:
    """Deadline factor of the current request (1 without dynamic deadlines)."""
    scale = state.arrivals.deadline_scale
    if scale is None:
        return jnp.float32(1.0)
    return scale[jnp.minimum(state.step, scale.shape[0] - 1)]


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
