"""Intervals (jaxserve/evaluation/stats.py) against hand-computed values and coverage."""

import numpy as np
import pytest

from jaxserve.evaluation.stats import mean_ci, nested_mean_ci, ratio_ci


def test_mean_ci_by_hand():
    # n = 2: mean 1, sd sqrt(2), half-width t(0.975, 1) * sd / sqrt(2) = 12.7062.
    mean, ci = mean_ci([0.0, 2.0])
    assert mean == 1.0
    np.testing.assert_allclose(ci, [1 - 12.7062047, 1 + 12.7062047], rtol=1e-6)
    mean, ci = mean_ci([[0.5], [0.7]], axis=-1)  # one value per row: zero width
    np.testing.assert_allclose(ci, [[0.5, 0.5], [0.7, 0.7]])


def test_ratio_ci_edges():
    same = [np.array([0.99, 0.5, 0.97, 0.2])] * 3
    r = ratio_ci(same, same, 0.96)
    assert r["ratio"] == 1.0 and r["ci"][0] <= 1.0 <= r["ci"][1]
    never = ratio_ci([np.ones(5)] * 2, [np.zeros(5)] * 2, 0.96)
    assert never["ratio"] is None and never["ci"][1] is None  # unbounded above


def test_ratio_ci_covers_the_true_ratio():
    # Windows above with probability 0.6 (numerator) and 0.3 (denominator): true ratio 2.
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        num = [rng.random(40) < 0.6 for _ in range(8)]
        den = [rng.random(40) < 0.3 for _ in range(8)]
        lo, hi = ratio_ci(num, den, 0.5, draws=1000, seed=trial)["ci"]
        covered += lo <= 2.0 <= hi
    assert covered >= 88  # a 95 % interval: 88 or more of 100 (binomial 1 % tail)


@pytest.mark.parametrize("bad", [[], [np.array([])]])
def test_ratio_ci_needs_windows(bad):
    with pytest.raises(ValueError, match="at least one window"):
        ratio_ci(bad, [np.ones(3)], 0.5)


def test_nested_mean_ci_is_a_t_interval_over_group_means():
    # Group means 1, 2, 3 (each the mean of its replicates): mean 2, sd 1, half-width
    # t(0.975, 2) * 1 / sqrt(3) = 4.30265 / 1.73205 = 2.48414.
    values = [[0.0, 2.0], [2.0, 2.0], [3.5, 2.5]]
    mean, ci = nested_mean_ci(values)
    assert mean == 2.0
    np.testing.assert_allclose(ci, [2 - 2.4841377, 2 + 2.4841377], rtol=1e-6)
    one = nested_mean_ci([[0.0, 2.0]])  # one group: the t interval over its replicates
    np.testing.assert_allclose(one[1], mean_ci([0.0, 2.0])[1])
    per_rate = nested_mean_ci(np.zeros((4, 3, 2)))  # leading axes are kept
    assert per_rate[0].shape == (4,) and per_rate[1].shape == (4, 2)


def test_grouped_ratio_ci_point_and_groups_widen_the_interval():
    rng = np.random.default_rng(1)
    den = [rng.random(50) < 0.3 for _ in range(8)]
    # Three training seeds whose episodes sit at 0.3, 0.6, 0.9 above: pooled 0.6, ratio ~2.
    groups = [[rng.random(50) < p for _ in range(8)] for p in (0.3, 0.6, 0.9)]
    grouped = ratio_ci(groups, den, 0.5)
    pooled = ratio_ci([s for g in groups for s in g], den, 0.5)
    assert grouped["ratio"] == pooled["ratio"]  # the point pools every window either way
    width = lambda r: r["ci"][1] - r["ci"][0]  # noqa: E731
    assert width(grouped) > 1.5 * width(pooled)  # seed-to-seed spread counts, not just windows


def test_grouped_ratio_ci_covers_the_true_ratio():
    # Each group (training seed) has its own level around 0.6; true mean ratio 2.
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(100):
        levels = rng.uniform(0.5, 0.7, 6)
        num = [[rng.random(40) < p for _ in range(4)] for p in levels]
        den = [rng.random(40) < 0.3 for _ in range(8)]
        lo, hi = ratio_ci(num, den, 0.5, draws=1000, seed=trial)["ci"]
        covered += lo <= 2.0 <= hi
    assert covered >= 85
