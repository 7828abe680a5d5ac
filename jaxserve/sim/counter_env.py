"""Record-free simulator: FIFO ring-buffer queues, outcomes fixed when a batch starts.

`CounterEnv` simulates exactly what `ServingEnv` does (docs/simulator.md) for runs that
only need the running totals (`Counters`) and the observations: sweeps, evaluation,
benchmarks. It uses two facts of those semantics:

* a request's outcome is fixed when its batch starts (the completion time is known then),
  so requests in service need no per-request state: a replica is its completion time and
  batch size, and the batch's utility is counted when it starts;
* between two arrivals the queues only lose requests from the front, so a queue is a ring
  buffer `(num_models, queue_capacity)` that the event loop never writes: the loop carries
  only the head index and length per model, plus the replicas.

The event loop runs one *round* per iteration: each model starts its next batch if one is
due before the next arrival. Completions are not events here: a replica's completion time
is read when the next batch could start on it.

Differences from `ServingEnv`, all by design: no `info["records"]` (use `ServingEnv` for
decision credit and per-request metrics); a step's reward counts batches when they *start*
(episode totals are identical, since the last step drains every queue); and service noise
is drawn from a different key stream (same distribution). Not supported: `drop_expired`
with per-request deadlines that are not in FIFO order (`fifo_deadlines=False`), where
drops would leave holes inside a ring; `make_env` falls back to `ServingEnv` there.
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
    replica_mask,
    unit,
)
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.ring import RingLoop, RingState, fifo_positions
from jaxserve.sim.rollout import lane_rollout, lane_rollouts
from jaxserve.sim.rules import (
    INF,
    add_time,
    deadline_rule_batch_size,
    deadline_rule_batch_size_fifo,
    expired,
    max_rule_batch_size,
    next_arrival_s,
    next_clock,
    ready_time_s,
    request_deadline_s,
    start_clock,
    utility,
)
from jaxserve.sim.types import (
    DROPPED,
    LATE,
    ON_TIME,
    REJECTED,
    Arrivals,
    SimConfig,
    SimParams,
)


class CounterEnv(EnvBase):
    """`ServingEnv` semantics without per-request records, on ring-buffer queues."""

    def __init__(self, config: SimConfig):
        if not self.supports(config):
            raise ValueError(f"CounterEnv cannot simulate {config}; use make_env")
        super().__init__(config)
        self._ring = np.arange(config.pad_queue, dtype=np.int32)

    @staticmethod
    def supports(config: SimConfig) -> bool:
        """Whether `config` is in this simulator's scope (see the module docstring)."""
        return not config.emit_records and (config.fifo_deadlines or not config.drop_expired)

    # ------------------------------------------------------------------ reset
    def reset(self, key: jax.Array, params: SimParams, arrivals: Arrivals):
        """Empty system at the first arrival; returns (obs, state)."""
        del key
        cfg = self.config
        k, r, q = cfg.num_models, cfg.pad_replicas, cfg.pad_queue
        zeros = jnp.zeros((k, q), jnp.float32)
        state = RingState(
            arrivals=arrivals,
            step=jnp.int32(0),
            num_valid=jnp.sum(arrivals.valid, dtype=jnp.int32),
            **start_clock(arrivals, params),
            queue_len=jnp.zeros(k, jnp.int32),
            head=jnp.zeros(k, jnp.int32),
            ring_arrival_s=zeros,
            ring_deadline_s=zeros,
            ring_quality=zeros,
            ring_grace_s=jnp.ones((k, q), jnp.float32),
            ring_shift_s=jnp.float32(0.0),
            free_s=jnp.zeros((k, r), jnp.float32),
            free_lo_s=jnp.zeros((k, r), jnp.float32),
            batch_size=jnp.zeros((k, r), jnp.int32),
            counters=empty_counters(cfg.num_actions),
            pending=jnp.bool_(False),
            t_next_s=jnp.float32(0.0),
            round=jnp.int32(0),
        )
        return self.observe(state, params), state

    # ------------------------------------------------------------------- step
    def step(self, key: jax.Array, state: RingState, action: jax.Array, params: SimParams):
        """Route the current request and advance to the next arrival.

        Returns (obs, state, reward, done, info); `info` has no records.
        """
        active = self.active(state)
        state, reward, rounds = self._step(key, state, action, params, max_rounds=None)
        info = {"active": active, "event_iterations": rounds}
        return self.observe(state, params), state, reward, ~self.active(state), info

    def micro_step(self, key, state: RingState, action, params: SimParams, rounds: int = 1):
        """At most `rounds` event rounds of the current decision; returns the new state.

        The action is used only if the state is not `pending` (a decision waiting for its
        events). A rollout that calls this until `active` is False simulates exactly what
        `step` does, but lanes of a vmapped batch no longer wait at every decision for the
        lane with the most events (see `lane_rollout`).
        """
        return self._step(key, state, action, params, max_rounds=rounds)[0]

    def active(self, state: RingState) -> jax.Array:
        """Whether decisions are left in this episode."""
        return state.step < state.num_valid

    def _step(self, key, state: RingState, action, params: SimParams, max_rounds):
        """Admit (unless pending), run event rounds, finish the decision if none is due."""
        arrivals = state.arrivals
        num_arrivals = arrivals.gap_s.shape[0]
        i = state.step
        active = self.active(state)
        decide = active & ~state.pending
        nxt = jnp.minimum(i + 1, num_arrivals - 1)
        has_next = i + 1 < state.num_valid
        gap_s = arrivals.gap_s[nxt].astype(jnp.float32)
        # After the episode (padding) nothing is left to process: the last real decision
        # drained every queue, so an inactive lane finds nothing due before `now_s`.
        # While pending, `now_s` has not moved, so `t_next_lo` is the same as when computed.
        t_next, t_next_lo = next_arrival_s(state, gap_s, has_next)
        t_next = jnp.where(state.pending, state.t_next_s, jnp.where(active, t_next, state.now_s))

        state, reward = self._admit_ring(state, action, params, decide)
        state, reward, rounds, pending = self._advance_ring(
            key, state, params, t_next, reward, max_rounds
        )
        finish = active & ~pending
        state = self._next_arrival_ring(
            state, params, (t_next, t_next_lo), gap_s, finish & has_next
        )
        state = state.replace(
            step=i + finish.astype(jnp.int32),
            pending=active & pending,
            t_next_s=t_next,
            round=jnp.where(finish | ~active, 0, state.round + rounds),
        )
        return state, reward, rounds

    # ------------------------------------------------------------- admission
    def _admit_ring(self, state: RingState, action, params: SimParams, active):
        """Reject (action or full queue) or append the request at the back of its ring."""
        cfg = self.config
        task = current_task(state)
        on_model = (self._models == action) & active  # (K,)
        pick = lambda row: jnp.sum(jnp.where(on_model, row, 0))
        capacity = active_capacity(cfg, params)
        rejected = active & (~jnp.any(on_model) | (pick(state.queue_len) >= pick(capacity)))
        admitted = on_model & ~rejected  # (K,)
        tail = (state.head + state.queue_len) % cfg.pad_queue
        slot = admitted[:, None] & (self._ring == tail[:, None])  # (K, Q)
        put = lambda old, new: jnp.where(slot, new, old)
        quality = params.quality[task]  # (K,)
        deadline_s = request_deadline_s(state.now_s, params.deadline_s[task], deadline_scale(state))
        penalty = -params.miss_penalty.astype(jnp.float32)
        c = state.counters
        counters = c.replace(
            num_arrived=c.num_arrived + active,
            num_outcome=c.num_outcome + rejected * unit(4, REJECTED),
            sum_utility=c.sum_utility + jnp.where(rejected, penalty, 0.0),
            sum_peak=c.sum_peak + jnp.where(active, jnp.max(quality), 0.0),
            num_routed=c.num_routed
            + active * (jnp.arange(cfg.num_actions) == jnp.minimum(action, cfg.num_actions - 1)),
        )
        state = state.replace(
            ring_arrival_s=put(state.ring_arrival_s - state.ring_shift_s, state.now_s),
            ring_deadline_s=put(state.ring_deadline_s - state.ring_shift_s, deadline_s),
            ring_shift_s=jnp.float32(0.0),
            ring_quality=put(state.ring_quality, quality[:, None]),
            queue_len=state.queue_len + admitted,
            counters=counters,
        )
        if cfg.deadline_kind == "soft":
            state = state.replace(ring_grace_s=put(state.ring_grace_s, params.grace_s[task]))
        return state, jnp.where(rejected, penalty, 0.0)

    # ---------------------------------------------------------------- events
    def _advance_ring(self, key, state: RingState, params: SimParams, t_next, reward, max_rounds):
        """Start batches due at or before `t_next`, one round (all models) per iteration.

        `max_rounds=None` runs rounds until none is due; an int runs at most that many.
        Returns (state, reward, rounds run, whether a start is still due).
        """

        def body(loop: RingLoop) -> RingLoop:
            key_round = jax.random.fold_in(key, loop.round) if self.config.service_noise else key
            loop = self._start_one(key_round, state, params, loop)
            start_s, due = self._next_start(state, params, loop, t_next)
            return loop.replace(start_s=start_s, due=due, round=loop.round + 1)

        loop = RingLoop(
            head=state.head,
            queue_len=state.queue_len,
            free_s=state.free_s,
            free_lo_s=state.free_lo_s,
            batch_size=state.batch_size,
            counters=state.counters,
            reward=reward,
            start_s=jnp.zeros(self.config.num_models, jnp.float32),
            due=jnp.zeros(self.config.num_models, bool),
            round=state.round,
        )
        start_s, due = self._next_start(state, params, loop, t_next)
        loop = loop.replace(start_s=start_s, due=due)
        if max_rounds is None:
            loop = jax.lax.while_loop(lambda loop: jnp.any(loop.due), body, loop)
        else:
            for _ in range(max_rounds):
                loop = body(loop)
        # A replica whose batch completes by t_next is idle at the next decision.
        batch_size = jnp.where(loop.free_s > t_next, loop.batch_size, 0)
        state = state.replace(
            head=loop.head,
            queue_len=loop.queue_len,
            free_s=loop.free_s,
            free_lo_s=loop.free_lo_s,
            batch_size=batch_size,
            counters=loop.counters,
        )
        return state, loop.reward, loop.round - state.round, jnp.any(loop.due)

    def _next_start(self, state: RingState, params: SimParams, loop: RingLoop, t_next):
        """Per model (K,): when its next batch can start, and whether that is <= t_next.

        A batch starts at max(now, earliest replica completion, ready time), where the
        ready time (max_wait) counts from the oldest waiting request's arrival.
        """
        free_min = jnp.min(jnp.where(replica_mask(self.config, params), loop.free_s, INF), axis=1)
        start_s = jnp.maximum(state.now_s, free_min)
        if self.config.max_wait:
            oldest = self._ring == loop.head[:, None]  # (K, Q)
            oldest_s = jnp.sum(jnp.where(oldest, state.ring_arrival_s, 0.0), axis=1)
            ready_s = ready_time_s(oldest_s, loop.queue_len, self._max_batch, params.max_wait_s)
            start_s = jnp.maximum(start_s, ready_s)
        return start_s, (loop.queue_len > 0) & (start_s <= t_next)

    def _start_one(self, key, state: RingState, params: SimParams, loop: RingLoop) -> RingLoop:
        """The first model with a due start drops its expired requests and starts a batch.

        One model per round: its ring row is selected once, and the rest of the round
        works on vectors of length `queue_capacity` instead of every model's ring.
        """
        cfg = self.config
        model = first_true(loop.due)  # num_models when none is due
        on = self._models == model  # (K,)
        # A gather from a row: cheaper on CPU than a masked sum over every model's ring.
        row = lambda a: a[jnp.minimum(model, cfg.num_models - 1)]
        at = lambda a: jnp.sum(jnp.where(on, a, 0))
        due = jnp.any(on)
        # The batch goes to the replica that became free first (the one start_s waited for).
        free_s = jnp.where(replica_mask(cfg, params), loop.free_s, INF)
        free_min = jnp.min(free_s, axis=1, keepdims=True)
        first = jnp.arange(cfg.pad_replicas) == first_true(free_s == free_min)[:, None]  # (K, R)
        t_s, head, queue_len = at(loop.start_s), at(loop.head), at(loop.queue_len)
        t_lo_s = self._start_lo(state, loop, on[:, None] & first)
        deadline_s, arrival_s = row(state.ring_deadline_s), row(state.ring_arrival_s)
        latency_s = row(params.latency_s)  # (B,)

        pos = fifo_positions(self._ring, head, cfg.pad_queue)  # (Q,)
        waiting = due & (pos < queue_len)
        if cfg.drop_expired:  # deadlines in FIFO order: the dropped are a prefix
            num_dropped = jnp.sum(waiting & expired(t_s, deadline_s, latency_s[0])).astype(
                jnp.int32
            )
        else:
            num_dropped = jnp.int32(0)
        pos = pos - num_dropped
        keep = waiting & (pos >= 0)
        limit = max_rule_batch_size(queue_len - num_dropped, at(self._max_batch))
        finish_s = t_s + latency_s  # (B,)
        if cfg.batching == "max":
            size = limit
        elif cfg.fifo_deadlines:  # the oldest kept request has the earliest deadline
            oldest_kept = (head + num_dropped) % cfg.pad_queue
            earliest = jnp.where(limit > 0, deadline_s[oldest_kept], INF)
            size = deadline_rule_batch_size_fifo(finish_s, earliest, limit)
        else:
            size = deadline_rule_batch_size(finish_s, deadline_s, pos, keep, limit)
        size = jnp.where(due, size, 0)
        member = keep & (pos < size)  # (Q,)

        base_s = latency_s[jnp.maximum(size - 1, 0)]
        if cfg.service_noise:
            base_s = base_s * jnp.exp(params.noise_sigma * jax.random.normal(key))
        done_s, done_lo_s = add_time(t_s, t_lo_s, base_s)
        lateness = done_s - deadline_s
        gains = utility(
            row(state.ring_quality),
            row(state.ring_grace_s),
            lateness,
            params.miss_penalty,
            cfg.deadline_kind,
            cfg.decay,
        )
        penalty = -params.miss_penalty.astype(jnp.float32)
        # One reduction for the three batch totals (their masks are computed once).
        totals = jnp.sum(
            jnp.where(
                member[:, None],
                jnp.stack(
                    [gains, (lateness <= 0).astype(jnp.float32), done_s - arrival_s], axis=-1
                ),
                0.0,
            ),
            axis=0,
        )
        gained = totals[0] + penalty * num_dropped
        num_on_time = totals[1].astype(jnp.int32)  # exact: at most queue_capacity
        c = loop.counters
        counters = c.replace(
            num_outcome=c.num_outcome
            + num_on_time * unit(4, ON_TIME)
            + (size - num_on_time) * unit(4, LATE)
            + num_dropped * unit(4, DROPPED),
            sum_utility=c.sum_utility + gained,
            sum_latency_s=c.sum_latency_s + totals[2],
        )
        pick = first & (on & (size > 0))[:, None]
        removed = jnp.where(on, num_dropped + size, 0)
        return loop.replace(
            head=(loop.head + removed) % cfg.pad_queue,
            queue_len=loop.queue_len - removed,
            free_s=jnp.where(pick, done_s, loop.free_s),
            free_lo_s=jnp.where(pick, done_lo_s, loop.free_lo_s),
            batch_size=jnp.where(pick, size, loop.batch_size),
            counters=counters,
            reward=loop.reward + gained,
        )

    def _start_lo(self, state: RingState, loop: RingLoop, replica):
        """Lo part (compensated clock) of the batch start on `replica` (K, R; one True, or none).

        The start is at max(now, that replica's completion, ready): it inherits the lo part
        of the arrival clock or of the completion, whichever it is (the arrival's on a tie,
        as `ServingEnv` has processed such a completion before the arrival); a max_wait
        ready time carries none (without max_wait a start after `now` is at the completion).
        """
        start_s = loop.start_s[:, None]  # (K, 1)
        lo = loop.free_lo_s
        if self.config.max_wait:
            lo = jnp.where(start_s == loop.free_s, lo, 0.0)
        lo = jnp.where(start_s == state.now_s, state.now_lo_s, lo)
        return jnp.sum(jnp.where(replica, lo, 0.0))

    # ------------------------------------------------------------ bookkeeping
    def _next_arrival_ring(self, state: RingState, params: SimParams, t_next, gap_s, moves):
        """Move the clock to `t_next` (hi, lo); the ring's shift waits for the next admission."""
        clock, shift = next_clock(state, params, t_next, gap_s, moves)
        return state.replace(**clock, free_s=state.free_s - shift, ring_shift_s=shift)


def make_env(config: SimConfig) -> ServingEnv | CounterEnv:
    """The fastest simulator for `config`: `CounterEnv` when no records are needed."""
    return CounterEnv(config) if CounterEnv.supports(config) else ServingEnv(config)


# lane_rollout(s) live in rollout.py with the other rollouts; re-exported for older imports.
__all__ = ["CounterEnv", "RingState", "lane_rollout", "lane_rollouts", "make_env"]
