"""Every queueing rule of docs/simulator.md, once: small pure functions both JAX simulators call.

`ServingEnv` (env.py, events.py) and `CounterEnv` (counter_env.py) differ in how they store
requests (slots vs ring buffers) and in what they vectorise over, so each rule takes the
arrays it needs and broadcasts: a leading model axis or not, the queue on the last axis.
`reference.py` does not use this module on purpose: it is the independent oracle.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.sim.types import NEVER_S

INF = jnp.float32(np.inf)


# ------------------------------------------------------------------ requests
def request_deadline_s(arrival_s, task_deadline_s, deadline_scale):
    """Absolute deadline of a request: arrival + its task's deadline x its deadline factor."""
    return arrival_s + task_deadline_s * deadline_scale


def ready_time_s(oldest_arrival_s, queue_len, max_batch, max_wait_s):
    """Earliest time a model's queue may start a batch (`ready_k`, docs/simulator.md step 2).

    -inf when the model does not wait (`max_wait_s == 0`) or the queue already fills a
    batch; otherwise the oldest queued request's arrival + `max_wait_s`. Shapes broadcast.
    """
    ready_now = (max_wait_s <= 0) | (queue_len >= max_batch)
    return jnp.where(ready_now, -INF, oldest_arrival_s + max_wait_s)


def expired(start_s, deadline_s, latency_one_s):
    """Drop predicate at a batch start: even a batch of one would finish after the deadline."""
    return start_s + latency_one_s > deadline_s


# ------------------------------------------------------------------ batch size
def max_rule_batch_size(queue_len, max_batch):
    """`max` rule: as many as are queued, up to `max_batch` (also the `deadline` rule's bound)."""
    return jnp.minimum(queue_len, max_batch)


def deadline_rule_batch_size(finish_s, deadline_s, pos, keep, limit):
    """`deadline` rule: the largest b <= limit with start + latency[b] <= the b oldest's deadlines.

    Request j (FIFO position p_j) tolerates batches up to m_j = #{b: finish[b] <= deadline_j};
    it is in a batch of b iff p_j < b, so b is feasible iff b <= max(p_j, m_j) for every j,
    and the largest feasible b is min_j max(p_j, m_j). At least 1 when something is queued.

    Args:
      finish_s: (..., B) start + nominal latency of a batch of b = 1..B.
      deadline_s, pos, keep: (..., S) each queue entry's deadline, FIFO position, and
        whether it is a queued request (entries that are not are ignored).
      limit: (...,) `max_rule_batch_size` of the queue.
    """
    tolerated = jnp.sum(finish_s[..., None, :] <= deadline_s[..., :, None], axis=-1)
    never = pos.shape[-1] + finish_s.shape[-1] + 1  # above any feasible size
    bound = jnp.min(jnp.where(keep, jnp.maximum(pos, tolerated), never), axis=-1)
    return _at_least_one(bound, limit)


def deadline_rule_batch_size_fifo(finish_s, earliest_deadline_s, limit):
    """`deadline` rule when the oldest queued request has the earliest deadline (FIFO deadlines).

    Then b fits iff finish[b] <= that deadline. `finish_s` (..., B), the others (...,).
    """
    fits = jnp.sum(finish_s <= earliest_deadline_s[..., None], axis=-1)
    return _at_least_one(fits, limit)


def _at_least_one(fits, limit):
    """`fits` clipped to 1..limit (a batch starts even if it misses), 0 for an empty queue."""
    return jnp.clip(fits, 1, jnp.maximum(limit, 1)).astype(jnp.int32) * (limit > 0)


# ------------------------------------------------------------------ outcomes
def utility(quality, grace_s, lateness_s, miss_penalty, deadline_kind: str, decay_kind: str):
    """Utility of a completed request (docs/simulator.md step 3.4); shapes broadcast.

    Hard deadlines: `quality` if on time (lateness <= 0), else `-miss_penalty`. Soft:
    `quality x decay(lateness)`.
    """
    if deadline_kind == "hard":
        return jnp.where(lateness_s <= 0, quality, -miss_penalty.astype(jnp.float32))
    return quality * decay(jnp.maximum(lateness_s, 0.0), grace_s, decay_kind)


def decay(late_s, grace_s, kind: str):
    """Soft-deadline decay of a request `late_s` >= 0 late: linear or exponential in late/grace."""
    if kind == "linear":
        return jnp.maximum(0.0, 1.0 - late_s / grace_s)
    return jnp.exp(-late_s / grace_s)


# ------------------------------------------------------------------ rate and clock
def initial_rate(window_s):
    """Arrival-rate estimate at reset: the first arrival counted."""
    return 1.0 / window_s


def update_rate(rate_est, gap_s, window_s):
    """Arrival-rate estimate after an arrival `gap_s` after the previous one (step 4)."""
    return rate_est * jnp.exp(-gap_s / window_s) + 1.0 / window_s


def add_time(t_s, t_lo_s, dt_s):
    """The time `t_s + t_lo_s + dt_s` as a float32 pair (hi, lo): the compensated clock.

    `hi = t_s + (dt_s + t_lo_s)` in float32 (two adds, so the comparisons, lateness and
    latency that read it cost what they did before compensation) and `lo` is exactly what
    those adds rounded off (TwoSum), so `hi + lo` is the exact time to ~1e-15 s and a
    chain of sums (back-to-back batches, arrival after arrival) carries no error forward:
    summing directly loses up to half a float32 ulp (6e-8 s below 1 s) per sum, which
    piles up (docs/simulator.md, "Clock precision"). `|lo|` is at most an ulp of `hi`, and
    the carried `t_lo_s` is absorbed, so it never grows. XLA does not reassociate float
    arithmetic, so the error terms survive compilation. Shapes broadcast.
    """
    dt_lo_s = dt_s + t_lo_s
    hi = t_s + dt_lo_s
    return hi, _two_sum_error(t_s, dt_lo_s, hi) + _two_sum_error(dt_s, t_lo_s, dt_lo_s)


def _two_sum_error(a, b, total):
    """`a + b - total` exactly, where `total` is the float32 sum of a and b (TwoSum)."""
    b_part = total - a
    return (a - (total - b_part)) + (b - b_part)


def start_clock(arrivals, params) -> dict:
    """State fields of the clock at the first arrival: origin_s, now_s, now_lo_s, rate_est."""
    first_s = arrivals.gap_s[0].astype(jnp.float32)
    origin_s = jnp.floor(first_s).astype(jnp.int32)
    return {
        "origin_s": origin_s,
        "now_s": first_s - origin_s.astype(jnp.float32),  # exact: no lo part
        "now_lo_s": jnp.float32(0.0),
        "rate_est": initial_rate(params.rate_window_s.astype(jnp.float32)),
    }


def next_arrival_s(state, gap_s, has_next) -> tuple[jax.Array, jax.Array]:
    """Time of the next arrival as (hi, lo) relative to the origin; NEVER_S if there is none.

    `state` is anything with the clock fields `now_s`, `now_lo_s`. The arrival clock is
    compensated (`add_time`). After an origin shift `now_lo_s` can exceed half an ulp of
    the smaller `now_s`, so a gap of 0 (or one below that lo) could round to a time before
    `now_s`: such an arrival is at `now_s`, with the rest in its lo part, so simultaneous
    arrivals share one float32 time.
    """
    t_next, t_next_lo = add_time(state.now_s, state.now_lo_s, gap_s)
    at_now = (gap_s == 0) | (t_next < state.now_s)
    t_next_lo = jnp.where(at_now, state.now_lo_s + gap_s, t_next_lo)
    t_next = jnp.where(at_now, state.now_s, t_next)
    return jnp.where(has_next, t_next, NEVER_S), jnp.where(has_next, t_next_lo, 0.0)


def next_clock(state, params, t_next, gap_s, moves) -> tuple[dict, jax.Array]:
    """Clock fields (now_s, now_lo_s, origin_s, rate_est) at the next arrival, and the shift.

    `t_next` is the arrival time as (hi, lo). Whole seconds move into the integer origin;
    the caller subtracts the returned shift from every other stored time. Subtracting an
    integer from a float32 time that is at least that integer (the clock, busy replicas,
    future deadlines) is exact, and a lo part is unchanged by a shift.
    """
    window = params.rate_window_s.astype(jnp.float32)
    rate = jnp.where(moves, update_rate(state.rate_est, gap_s, window), state.rate_est)
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
