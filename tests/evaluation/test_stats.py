"""Intervals (jaxserve/evaluation/stats.py) against hand-computed values and coverage."""

import numpy as np
import pytest

from jaxserve.evaluation.stats import mean_ci, ratio_ci


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
