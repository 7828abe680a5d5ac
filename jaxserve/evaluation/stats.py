"""Intervals for every reported number (docs/results.md, "How numbers are reported").

* `mean_ci`: mean over seeds with a two-sided Student-t interval (seeds are independent
  episodes; the t interval is exact for normal means and conservative enough at n ≥ 8).
* `nested_mean_ci`: a two-level sample (training seeds x evaluation episodes): the grand
  mean with a Student-t interval over the training seeds' means (each seed's mean carries
  its episodes' noise, so the interval covers both levels; exact for a balanced normal
  random-effects design, and wide when there are few training seeds, as it should be).
* `ratio_ci`: a ratio of two "time above X % of peak" fractions, with a percentile
  bootstrap that resamples seeds, then windows within each seed (a two-level bootstrap:
  the windows of one episode are not independent of its seed's load path); a side given
  as groups of episodes (training seeds x episodes) resamples groups first.
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


def nested_mean_ci(values, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(mean, (…, 2) interval) of `values` (…, groups, replicates): Student-t over the groups'
    means (e.g. training seeds, each the mean of its evaluation episodes); one group is
    `mean_ci` over its replicates."""
    values = np.asarray(values, np.float64)
    if values.shape[-2] == 1:
        return mean_ci(values[..., 0, :], level=level)
    return mean_ci(values.mean(axis=-1), level=level)


def _is_grouped(side: list) -> bool:
    """A side given as groups of series (e.g. training seeds x episodes) rather than series."""
    first = side[0] if len(side) else ()
    return len(first) > 0 and np.ndim(first[0]) == 1


def _resampled_group_fractions(rng, groups: list, threshold: float, draws: int):
    """(draws,) fractions of windows ≥ threshold: groups resampled, then the series within
    each chosen group, then windows (a Binomial draw, as in `_resampled_fractions`)."""
    sizes = np.asarray([len(g) for g in groups])
    series = [np.asarray(s, np.float64) for g in groups for s in g]
    length = np.asarray([len(s) for s in series])
    above = np.asarray([np.mean(s >= threshold) if len(s) else 0.0 for s in series])
    offset = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    group = rng.integers(0, len(groups), (draws, len(groups)))  # (D, G)
    size = sizes[group][..., None]  # (D, G, 1)
    slot = np.arange(sizes.max())  # (S,): a group of fewer series uses its first slots
    within = np.floor(rng.random((draws, len(groups), slot.size)) * size).astype(int)
    pick = offset[group][..., None] + within  # (D, G, S) series indices
    used = np.where(slot < size, length[pick], 0)
    counts = rng.binomial(used, above[pick])
    return counts.sum(axis=(1, 2)) / np.maximum(used.sum(axis=(1, 2)), 1)


def _resampled_fractions(rng, series: list[np.ndarray], threshold: float, draws: int):
    """(draws,) fractions of windows ≥ threshold: seeds resampled, then windows within each.

    Resampling the L windows of a series with replacement and counting those above the
    threshold is a Binomial(L, p) draw (p: the series' fraction above), so each level of
    the bootstrap is one vectorised draw.
    """
    length = np.asarray([len(s) for s in series])
    above = np.asarray([np.mean(np.asarray(s) >= threshold) if len(s) else 0.0 for s in series])
    seeds = rng.integers(0, len(series), (draws, len(series)))
    counts = rng.binomial(length[seeds], above[seeds])
    return counts.sum(axis=1) / np.maximum(length[seeds].sum(axis=1), 1)


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
    share arrivals), or groups of such series (one list of episodes per training seed),
    which resamples the groups first.
    A resample whose denominator is 0 gives an infinite ratio (kept: it is the truth that
    the baseline never got there); the point value is None when the denominator is 0.
    """
    sides = [numerator, denominator]
    flat = [[np.asarray(s, np.float64) for s in _flatten(side)] for side in sides]
    if not sum(map(len, flat[0])) or not sum(map(len, flat[1])):
        raise ValueError("ratio_ci: each side needs at least one window")
    rng = np.random.default_rng(seed)
    top, bottom = (np.mean(np.concatenate(f) >= threshold) for f in flat)
    a, b = (
        _resampled_group_fractions(rng, side, threshold, draws)
        if _is_grouped(side)
        else _resampled_fractions(rng, f, threshold, draws)
        for side, f in zip(sides, flat, strict=True)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(b > 0, a / np.where(b > 0, b, 1.0), np.where(a > 0, np.inf, 1.0))
    finite = np.minimum(ratios, UNBOUNDED)  # inf - inf would poison the interpolation
    lo, hi = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return {
        "ratio": float(top / bottom) if bottom > 0 else None,
        "ci": [float(lo), None if hi >= UNBOUNDED else float(hi)],  # None: unbounded above
        "numerator": float(top),
        "denominator": float(bottom),
    }


def _flatten(side: list) -> list:
    """Every series of a side, whether given as series or as groups of series."""
    return [s for group in side for s in group] if _is_grouped(side) else list(side)


def format_interval(ci, digits: int = 2) -> str:
    """'[0.91, 1.14]'; an upper end of None (unbounded) is 'inf'."""
    high = "inf" if ci[1] is None else f"{ci[1]:.{digits}f}"
    return f"[{ci[0]:.{digits}f}, {high}]"


def format_ratio(r: dict, never: str = "n/a (baseline never above)") -> str:
    """A `ratio_ci` result as '1.23x [1.10, 1.40]', or `never` when the baseline never got there."""
    if r["ratio"] is None:
        return never
    return f"{r['ratio']:.2f}x {format_interval(r['ci'])}"


__all__ = ["LEVEL", "format_interval", "format_ratio", "mean_ci", "nested_mean_ci", "ratio_ci"]
