"""The simulators' clocks over a simulated hour, against the float64 reference.

Every time is float32 relative to a whole-second origin; the clocks that advance by sums
(arrival after arrival, back-to-back batches on a replica) are compensated (`add_time`:
the float32 part plus the rounding error carried along), so they must not drift from the
reference (docs/simulator.md, "Clock precision"). Before compensation the busy replica
below drifted by ~3.8 ms per simulated hour.

The scenario keeps one replica busy for an hour with batches of one request, so that every
completion time is the previous one plus the same float32 service time: one model, one
replica, `max` batching with max_batch 1, no drops, a static policy (every request to the
model) at 1.0001x the replica's capacity. Each completion is max(arrival, previous
completion) + service time, a continuous function of the times: an arrival and a
completion that nearly tie give the same answer in either order, so the only differences
from the reference are rounding, and the check can be exact to 1e-6 s. The queue grows
by ~32 requests over the hour and holds 64, so nobody is rejected (a rejection would turn
a near tie into a different request being served).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.sim.counter_env import CounterEnv, lane_rollout
from jaxserve.sim.env import ServingEnv, next_arrival_s
from jaxserve.sim.events import add_time
from jaxserve.sim.reference import ReferenceResult, simulate
from jaxserve.sim.rollout import run_actions
from jaxserve.sim.types import ON_TIME, SimConfig, SimParams, to_jnp_tuple
from jaxserve.testing.toy import absolute_times_s, arrivals_from_gaps

HOUR_S = 3600.0
SERVICE_S = float(np.float32(0.0113))  # one request on a busy OPT-125M replica; 24-bit mantissa
LOAD = 1.0001  # offered load / capacity
TOLERANCE_S = 1e-6  # per simulated hour

BUSY_CONFIG = SimConfig(
    num_tasks=1,
    max_batch=(1,),
    replicas=(1,),
    queue_capacity=(64,),
    batching="max",
    drop_expired=False,
    max_wait=False,
)


def busy_params() -> SimParams:
    """Service time SERVICE_S for a batch of one; a deadline no request misses."""
    return SimParams(
        quality=to_jnp_tuple([[1.0]]),
        latency_s=to_jnp_tuple([[SERVICE_S]]),
        deadline_s=to_jnp_tuple([60.0]),
        grace_s=to_jnp_tuple([1.0]),
        max_wait_s=to_jnp_tuple([0.0]),
        miss_penalty=to_jnp_tuple(1.0),
        noise_sigma=to_jnp_tuple(0.0),
        reference_rate=to_jnp_tuple(1.0),
        rate_window_s=to_jnp_tuple(1.0),
    )


def busy_gaps_s(hours: float = 1.0) -> np.ndarray:
    """Float32 gaps: first arrival at 0.37 s, 8 at once (a backlog), then jittered gaps."""
    num_arrivals = int(hours * HOUR_S / SERVICE_S * LOAD) + 8
    rng = np.random.default_rng(15)
    gap_s = SERVICE_S / LOAD * rng.uniform(0.99, 1.01, num_arrivals)
    gap_s[0], gap_s[1:8] = 0.37, 0.0
    return gap_s.astype(np.float32)


@pytest.fixture(scope="module")
def busy_hour() -> tuple[np.ndarray, ReferenceResult]:
    """The hour's gaps and the reference's outcome (shared: ~3 s of plain Python)."""
    gap_s = busy_gaps_s()
    n = len(gap_s)
    zeros = np.zeros(n, np.int64)
    ref = simulate(BUSY_CONFIG, busy_params(), absolute_times_s(gap_s), zeros, zeros)
    # The scenario is what it claims: everyone served, the replica never idle for an hour.
    assert np.all(ref.outcome == ON_TIME)
    completion_s = np.sort(ref.completion_s)
    np.testing.assert_allclose(np.diff(completion_s), SERVICE_S, rtol=0, atol=1e-9)
    assert completion_s[-1] - completion_s[0] > HOUR_S
    return gap_s, ref


def test_serving_env_latencies_exact_over_an_hour(busy_hour):
    """Every request's ledger latency (completion - arrival) within 1e-6 s of the reference."""
    gap_s, ref = busy_hour
    n = len(gap_s)
    ledger = run_actions(
        ServingEnv(BUSY_CONFIG), busy_params(), arrivals_from_gaps(gap_s, np.zeros(n)), np.zeros(n)
    )
    np.testing.assert_array_equal(ledger["outcome"], ref.outcome)
    error_s = ledger["latency_s"].astype(np.float64) - ref.latency_s
    assert np.abs(error_s).max() <= TOLERANCE_S, np.abs(error_s).max()
    np.testing.assert_array_equal(ledger["counters"].num_outcome, ref.num_outcome())


@jax.jit
def _counter_clock_run(params: SimParams, arrivals):
    """CounterEnv step by step; per decision, absolute times as (whole s, hi, lo) parts."""
    env = CounterEnv(dataclasses.replace(BUSY_CONFIG, emit_records=False, fifo_deadlines=True))
    _, state = env.reset(jax.random.key(0), params, arrivals)

    def one_step(state, index):
        key = jax.random.fold_in(jax.random.key(1), index)
        _, state, _, _, _ = env.step(key, state, jnp.int32(0), params)
        clock = (state.origin_s, state.now_s, state.now_lo_s)
        replica = (state.origin_s, state.free_s[0, 0], state.free_lo_s[0, 0])
        # Batches started so far (outcomes are fixed at a batch's start).
        return state, (clock, replica, state.counters.num_outcome[ON_TIME])

    num_arrivals = arrivals.gap_s.shape[0]
    return jax.lax.scan(one_step, state, jnp.arange(num_arrivals))


def _absolute_s(parts) -> np.ndarray:
    whole, hi, lo = (np.asarray(p, np.float64) for p in parts)
    return whole + hi + lo


def test_counter_env_clocks_exact_over_an_hour(busy_hour):
    """CounterEnv's arrival clock and replica completions within 1e-6 s, and its totals.

    After decision i the clock is at arrival i + 1 and the replica's time is the
    completion of the latest started batch (the k-th, k = batches started so far).
    """
    gap_s, ref = busy_hour
    n = len(gap_s)
    arrivals = arrivals_from_gaps(gap_s, np.zeros(n))
    state, (clock, replica, started) = _counter_clock_run(busy_params(), arrivals)
    arrival_error_s = _absolute_s(clock)[:-1] - absolute_times_s(gap_s)[1:]
    assert np.abs(arrival_error_s).max() <= TOLERANCE_S, np.abs(arrival_error_s).max()
    completion_s = np.sort(ref.completion_s)  # everyone is served (the fixture checks)
    completion_error_s = _absolute_s(replica) - completion_s[np.asarray(started) - 1]
    assert np.abs(completion_error_s).max() <= TOLERANCE_S, np.abs(completion_error_s).max()

    counters = state.counters
    np.testing.assert_array_equal(counters.num_outcome, ref.num_outcome())
    assert float(counters.sum_utility) == ref.utility.sum()
    # A float32 running sum of 318k latencies: its own rounding (~n * 2^-24 relative at
    # worst) is far above the clock's; the clock is checked above, this is the total.
    np.testing.assert_allclose(float(counters.sum_latency_s), ref.latency_s.sum(), rtol=1e-3)
    # The micro-step rollout that sweeps and `evaluate` use runs the same clock.
    policy = lambda key, obs, state, params: jnp.int32(0)
    lane = jax.jit(lane_rollout, static_argnums=(0, 1))(
        CounterEnv(dataclasses.replace(BUSY_CONFIG, emit_records=False, fifo_deadlines=True)),
        policy,
        jax.random.key(2),
        busy_params(),
        arrivals,
    )
    for name in ("num_outcome", "sum_utility", "sum_latency_s"):
        np.testing.assert_array_equal(getattr(lane, name), getattr(counters, name), err_msg=name)


def test_add_time_is_exact_over_an_hour_of_sums():
    """An hour of back-to-back 11.3 ms batches, compiled: exact to 1e-9 s; plain float32 not."""
    num_sums = int(HOUR_S / SERVICE_S)

    @jax.jit
    def chains(dt_s):
        def one(clocks, _):
            (hi, lo, origin), (plain, plain_origin) = clocks
            hi, lo = add_time(hi, lo, dt_s)
            shift = jnp.floor(hi)  # whole seconds into the origin, as the envs do
            hi = hi - shift
            plain = plain + dt_s  # the clock before compensation
            plain_shift = jnp.floor(plain)
            plain = plain - plain_shift
            compensated = (hi, lo, origin + shift.astype(jnp.int32))
            return (compensated, (plain, plain_origin + plain_shift.astype(jnp.int32))), None

        zero, whole = jnp.float32(0.0), jnp.int32(0)
        return jax.lax.scan(one, ((zero, zero, whole), (zero, whole)), None, length=num_sums)[0]

    (hi, lo, origin), (plain, plain_origin) = chains(jnp.float32(SERVICE_S))
    exact_s = num_sums * SERVICE_S  # float64: exact to ~1e-12 here
    assert abs(float(origin) + float(hi) + float(lo) - exact_s) < 1e-9
    assert abs(float(plain_origin) + float(plain) - exact_s) > 1e-4


def test_arrival_after_a_gap_of_zero_is_at_the_same_time():
    """Simultaneous arrivals share one float32 time, even right after an origin shift.

    A shift leaves the lo part as it was, which can exceed half an ulp of the now smaller
    float32 part: 0.0026115 + 3.7e-8 would round to another float32 (here an earlier one
    first, which once kept a batch from starting before the next arrival).
    """
    now_s, now_lo_s = jnp.float32(1.0026115) - 1.0, jnp.float32(-3.7e-8)
    clock = SimpleNamespace(now_s=now_s, now_lo_s=now_lo_s)
    for gap_s in (0.0, 1e-8, 1e-3):
        t_next, t_next_lo = next_arrival_s(clock, jnp.float32(gap_s), jnp.bool_(True))
        assert (t_next == now_s) == (gap_s < 1e-3)
        exact_s = float(now_s) + float(now_lo_s) + float(np.float32(gap_s))
        assert float(t_next) + float(t_next_lo) == pytest.approx(exact_s, abs=1e-15)
