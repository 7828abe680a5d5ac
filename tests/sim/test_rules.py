"""Each queueing rule of `jaxserve.sim.rules` on small inputs with answers worked out by hand."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.sim import rules
from jaxserve.sim.types import NEVER_S


def test_request_deadline_is_arrival_plus_task_deadline_times_scale():
    # 2.0 + 0.5 * 1.5 = 2.75
    assert float(rules.request_deadline_s(jnp.float32(2.0), 0.5, 1.5)) == 2.75


def test_ready_time_waits_max_wait_after_the_oldest_unless_full_or_no_wait():
    oldest_s = jnp.asarray([1.0, 1.0, 1.0])
    queue_len = jnp.asarray([2, 4, 2])  # model 1's queue fills its batch of 4
    max_batch = jnp.asarray([4, 4, 4])
    max_wait_s = jnp.asarray([0.25, 0.25, 0.0])  # model 2 does not wait
    ready = rules.ready_time_s(oldest_s, queue_len, max_batch, max_wait_s)
    np.testing.assert_array_equal(ready, [1.25, -np.inf, -np.inf])


def test_expired_when_even_a_batch_of_one_misses():
    # start 1.0, batch of one takes 0.2: done at 1.2; deadlines 1.1 (miss), 1.2 (exactly), 1.3
    deadline_s = jnp.asarray([1.1, 1.2, 1.3], jnp.float32)
    got = rules.expired(jnp.float32(1.0), deadline_s, jnp.float32(0.2))
    np.testing.assert_array_equal(got, [True, False, False])


def test_max_rule_takes_what_is_queued_up_to_max_batch():
    np.testing.assert_array_equal(rules.max_rule_batch_size(jnp.asarray([0, 3, 9]), 4), [0, 3, 4])


# Deadline rule on one model, start t = 0, latency of a batch of b = 0.1 b (b = 1..4):
# finish = [0.1, 0.2, 0.3, 0.4]. Queue (FIFO positions p = 0..3) with deadlines
# [0.35, 0.15, 0.9, 0.9], so the largest batch each tolerates is m = [3, 1, 4, 4]. Request j
# is in a batch of b iff p_j < b, so b is feasible iff b <= max(p_j, m_j) for every j:
# min(max(0, 3), max(1, 1), max(2, 4), max(3, 4)) = 1 (request 1 allows no second member).
FINISH_S = jnp.asarray([0.1, 0.2, 0.3, 0.4], jnp.float32)


def test_deadline_rule_takes_the_largest_batch_every_member_tolerates():
    deadline_s = jnp.asarray([0.35, 0.15, 0.9, 0.9], jnp.float32)
    pos = jnp.arange(4)
    keep = jnp.ones(4, bool)
    size = rules.deadline_rule_batch_size(FINISH_S, deadline_s, pos, keep, jnp.int32(4))
    assert int(size) == 1
    # Without request 1 (not kept): min(max(0,3), max(2,4), max(3,4)) = 3.
    keep = jnp.asarray([True, False, True, True])
    size = rules.deadline_rule_batch_size(FINISH_S, deadline_s, pos, keep, jnp.int32(4))
    assert int(size) == 3


def test_deadline_rule_starts_at_least_one_and_none_for_an_empty_queue():
    deadline_s = jnp.asarray([0.05, 0.05, 0.0, 0.0], jnp.float32)  # nothing fits
    pos, keep = jnp.arange(4), jnp.asarray([True, True, False, False])
    assert int(rules.deadline_rule_batch_size(FINISH_S, deadline_s, pos, keep, 2)) == 1
    assert int(rules.deadline_rule_batch_size(FINISH_S, deadline_s, pos, keep & False, 0)) == 0
    # And never above the limit (queue of 2): every deadline is far away.
    far = jnp.full(4, 9.0, jnp.float32)
    assert int(rules.deadline_rule_batch_size(FINISH_S, far, pos, keep, 2)) == 2


def test_fifo_deadline_rule_counts_batches_that_meet_the_oldest_deadline():
    # Oldest deadline 0.25: batches of 1 and 2 finish in time (0.1, 0.2), 3 does not.
    limits = jnp.asarray([4, 1, 0])
    earliest = jnp.asarray([0.25, 0.25, np.inf], jnp.float32)
    finish_s = jnp.broadcast_to(FINISH_S, (3, 4))
    got = rules.deadline_rule_batch_size_fifo(finish_s, earliest, limits)
    np.testing.assert_array_equal(got, [2, 1, 0])
    assert int(rules.deadline_rule_batch_size_fifo(FINISH_S, jnp.float32(0.01), 4)) == 1


def test_hard_utility_is_quality_on_time_else_minus_penalty():
    lateness = jnp.asarray([-0.1, 0.0, 0.1])
    got = rules.utility(0.8, 1.0, lateness, jnp.float32(2.0), "hard", "linear")
    np.testing.assert_allclose(got, [0.8, 0.8, -2.0])


@pytest.mark.parametrize(
    ("decay", "expected"),
    [
        # grace 0.5: linear 1 - x/0.5 floored at 0; exponential exp(-x/0.5)
        ("linear", [0.8, 0.8, 0.8 * 0.5, 0.0]),
        ("exponential", [0.8, 0.8, 0.8 * math.exp(-0.5), 0.8 * math.exp(-2.0)]),
    ],
)
def test_soft_utility_decays_quality_with_lateness(decay, expected):
    lateness = jnp.asarray([-0.3, 0.0, 0.25, 1.0])
    got = rules.utility(0.8, 0.5, lateness, jnp.float32(2.0), "soft", decay)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_rate_estimate_decays_and_counts_the_arrival():
    # window 2 s: start 1/2; after a gap of 2 s: 0.5 e^-1 + 0.5
    rate = rules.initial_rate(2.0)
    assert rate == 0.5
    got = rules.update_rate(jnp.float32(rate), jnp.float32(2.0), jnp.float32(2.0))
    np.testing.assert_allclose(got, 0.5 * math.exp(-1.0) + 0.5, rtol=1e-6)


def test_add_time_keeps_what_float32_rounds_off():
    # 1 + 2^-30 is not a float32: hi = 1, lo = 2^-30 exactly.
    hi, lo = rules.add_time(jnp.float32(1.0), jnp.float32(0.0), jnp.float32(2.0**-30))
    assert float(hi) == 1.0 and float(lo) == 2.0**-30
    # The carried lo goes into the next sum and stays exact: 1 + 2^-30 + 0.5.
    hi, lo = rules.add_time(hi, lo, jnp.float32(0.5))
    assert float(hi) == 1.5 and float(lo) == 2.0**-30


class _Clock:
    def __init__(self, now_s, now_lo_s=0.0, rate_est=0.5, origin_s=3):
        self.now_s, self.now_lo_s = jnp.float32(now_s), jnp.float32(now_lo_s)
        self.rate_est, self.origin_s = jnp.float32(rate_est), jnp.int32(origin_s)


def test_next_arrival_is_never_without_a_next_and_now_for_a_zero_gap():
    clock = _Clock(0.5)
    assert float(rules.next_arrival_s(clock, jnp.float32(0.25), True)[0]) == 0.75
    assert float(rules.next_arrival_s(clock, jnp.float32(0.25), False)[0]) == NEVER_S
    assert float(rules.next_arrival_s(clock, jnp.float32(0.0), True)[0]) == 0.5


def test_next_clock_moves_whole_seconds_into_the_origin():
    # now 0.5 + gap 0.75 = 1.25: the origin takes 1 s, now is 0.25; rate 0.5 e^-0.375 + 0.5.
    params = type("P", (), {"rate_window_s": jnp.float32(2.0)})()
    clock, shift = rules.next_clock(
        _Clock(0.5), params, (jnp.float32(1.25), jnp.float32(0.0)), jnp.float32(0.75), True
    )
    assert float(shift) == 1.0 and float(clock["now_s"]) == 0.25 and int(clock["origin_s"]) == 4
    np.testing.assert_allclose(clock["rate_est"], 0.5 * math.exp(-0.375) + 0.5, rtol=1e-6)
