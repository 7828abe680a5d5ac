"""Intervals for every reported number (docs/results.md, "How numbers are reported").

* `mean_ci`: mean over seeds with a two-sided Student-t interval (seeds are independent
  episodes; the t interval is exact for normal means and conservative enough at n ≥ 8).
* `ratio_ci`: a ratio of two "time above X % of peak" fractions, with a percentile
  bootstrap that resamples seeds, then windows within each seed (a two-level bootstrap:
  the windows of one episode are not independent of its seed's load path).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

LEVEL = 0.95
BOOTSTRAP_DRAWS = 2000
UNBOUNDED = 1e300  # a resampled ratio over a zero denominator


def mean_ci(values, axis: int = -1, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(mean, (…, 2) interval [lo, hi]) over `axis`; a single value has a zero-width interval."""
    values = np.asarray(values, np.float64)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.stack([mean, mean], axis=-1)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(axis=axis, ddof=1) / np.sqrt(n)
    return mean, np.stack([mean - half, mean + half], axis=-1)


def _resampled_fraction(rng, series: list[np.ndarray], threshold: float, seeds) -> float:
    """Fraction of windows ≥ threshold after resampling windows within the chosen seeds."""
    above = [rng.choice(series[s] >= threshold, size=len(series[s])) for s in seeds]
    return float(np.mean(np.concatenate(above)))


def ratio_ci(
    numerator: list,
    denominator: list,
    threshold: float,
    level: float = LEVEL,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> dict:
    """Ratio of time above `threshold` (numerator / denominator) with a bootstrap interval.

    `numerator`, `denominator`: one windowed-performance series per episode (any number on
    each side; the two sides are resampled independently, which is conservative when they
    share arrivals).
    A resample whose denominator is 0 gives an infinite ratio (kept: it is the truth that
    the baseline never got there); the point value is None when the denominator is 0.
    """
    num = [np.asarray(s, np.float64) for s in numerator]
    den = [np.asarray(s, np.float64) for s in denominator]
    rng = np.random.default_rng(seed)
    top = np.mean(np.concatenate(num) >= threshold)
    bottom = np.mean(np.concatenate(den) >= threshold)
    ratios = []
    for _ in range(draws):
        a = _resampled_fraction(rng, num, threshold, rng.integers(0, len(num), len(num)))
        b = _resampled_fraction(rng, den, threshold, rng.integers(0, len(den), len(den)))
        ratios.append(a / b if b > 0 else (np.inf if a > 0 else 1.0))
    finite = np.minimum(ratios, UNBOUNDED)  # inf - inf would poison the interpolation
    lo, hi = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return {
        "ratio": float(top / bottom) if bottom > 0 else None,
        "ci": [float(lo), None if hi >= UNBOUNDED else float(hi)],  # None: unbounded above
        "numerator": float(top),
        "denominator": float(bottom),
    }


__all__ = ["LEVEL", "mean_ci", "ratio_ci"]
