"""Fluid LP upper bound (docs/spec.md §4) on hand-computed cases, and the lp routing table."""

import math

import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.policies import lp
from jaxserve.sim import scenarios as S


def test_one_model_one_task():
    # q = 0.8, μ = 10/s, λ = 20/s: half the requests can be served → 0.4 per arrival.
    value, x = lp.fluid_upper_bound(([[0.8]], [10.0]), rate=20.0)
    assert value == pytest.approx(0.4)
    np.testing.assert_allclose(x, [[0.5]], atol=1e-9)


def test_one_model_under_capacity_serves_everything():
    value, x = lp.fluid_upper_bound(([[0.8]], [10.0]), rate=5.0)
    assert value == pytest.approx(0.8)
    np.testing.assert_allclose(x, [[1.0]], atol=1e-9)


def test_two_models_big_one_saturates():
    # q = (0.5, 0.9), μ = (100, 10), λ = 50: 10/50 = 0.2 to the big model, 0.8 to the small.
    value, x = lp.fluid_upper_bound(([[0.5, 0.9]], [100.0, 10.0]), rate=50.0)
    assert value == pytest.approx(0.2 * 0.9 + 0.8 * 0.5)
    np.testing.assert_allclose(x, [[0.8, 0.2]], atol=1e-9)


def test_two_tasks_big_model_goes_to_the_task_that_gains_most():
    # Task A gains 0.4 from the big model, task B 0.1. λ = 40, mix 1/2: task A brings 20/s,
    # the big model takes 10/s of it (x = 0.5); everything else goes to the small model.
    quality = [[0.5, 0.9], [0.5, 0.6]]
    value, x = lp.fluid_upper_bound((quality, [1000.0, 10.0]), rate=40.0, task_mix=[0.5, 0.5])
    assert value == pytest.approx(0.5 * (0.5 * 0.9 + 0.5 * 0.5) + 0.5 * 0.5)
    np.testing.assert_allclose(x, [[0.5, 0.5], [1.0, 0.0]], atol=1e-9)


def test_miss_penalty_counts_unserved_requests():
    # Half served at 0.8, half unserved at -0.25: 0.4 - 0.125.
    value, _ = lp.fluid_upper_bound(([[0.8]], [10.0], 0.25), rate=20.0)
    assert value == pytest.approx(0.275)


def test_bound_equals_peak_at_tiny_rate_and_falls_with_rate():
    s = S.get_scenario()
    rates = np.geomspace(1.0, 1e5, 25)
    values = [lp.fluid_upper_bound(s, float(r))[0] for r in rates]
    assert values[0] == pytest.approx(s.peak_quality())
    assert all(b <= a + 1e-9 for a, b in zip(values, values[1:], strict=False))
    assert values[-1] < 0.5 * s.peak_quality()


def test_routing_table_shape_and_feasibility():
    s = S.get_scenario()
    rates = lp.rate_grid(s, num_rates=9)
    table = lp.lp_routing_table(s, rates)
    assert table.shape == (9, 4, 3) and table.dtype == np.float32
    assert np.all(table >= 0) and np.all(table.sum(-1) <= 1 + 1e-5)
    load = rates[:, None] * (s.task_mix()[None, :, None] * table).sum(1)  # (R, K)
    assert np.all(load <= s.capacity_per_model()[None] * (1 + 1e-5))
    np.testing.assert_allclose(table[0].argmax(-1), [2, 2, 2, 2])  # low rate: all to 6.7B


@pytest.mark.parametrize("rate", [-1.0, math.nan, math.inf, "10"])
def test_bad_rate(rate):
    with pytest.raises(InputError, match="rate = "):
        lp.fluid_upper_bound(S.get_scenario("two-model-example"), rate)


def test_bad_arrays_and_grid():
    with pytest.raises(InputError, match="shapes"):
        lp.fluid_upper_bound(([[0.5, 0.9]], [10.0]), rate=1.0)
    with pytest.raises(InputError, match="quality"):
        lp.fluid_upper_bound(([[1.5]], [10.0]), rate=1.0)
    with pytest.raises(InputError, match="task_mix"):
        lp.fluid_upper_bound(([[0.5]], [10.0]), rate=1.0, task_mix=[0.5, 0.5])
    with pytest.raises(InputError, match="rates = "):
        lp.lp_routing_table(S.get_scenario("two-model-example"), [2.0, 1.0])
