"""Workloads with a stated peak: the unpredictable generator and an MAF-derived schedule,
scaled so that their peak arrival rate is a chosen multiple of a capacity.

The *peak* of a workload (docs/workloads.md, "Peak"): the largest offered arrival rate
averaged over a window of W seconds, peak_W = max_t Λ(t, t + W) / W, where Λ counts
*expected* arrivals (the integral of the rate function, not a realised Poisson count).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxserve.data import data_path
from jaxserve.sim.traces import load_maf2019_counts
from jaxserve.sim.workloads import WorkloadSpec, mean_rate, rate_at

MAF_SAMPLE = data_path("traces") / "azure_functions_2019_invitro_sample/100/invocations.csv"
MAF_COMPRESSION = 30.0  # a trace minute lasts 2 s
MAF_BIN_S = 60.0 / MAF_COMPRESSION
MAF_LEAD_MINUTES = 2  # the MAF window starts this many minutes before the busiest minute
UNPREDICTABLE_SPAN = 30.0  # max_rate / min_rate of the unpredictable family
UNPREDICTABLE_SEGMENT_S = 30.0


def unpredictable_peak_spec(peak_rate: float) -> WorkloadSpec:
    """Unpredictable load whose rate function peaks at `peak_rate`: segments of mean 30 s,
    rates log-uniform over a 30x span up to `peak_rate`, no spikes (a spike would put the
    peak above max_rate)."""
    return WorkloadSpec(
        kind="unpredictable",
        min_rate=peak_rate / UNPREDICTABLE_SPAN,
        max_rate=peak_rate,
        mean_segment_s=UNPREDICTABLE_SEGMENT_S,
    )


def maf_window_counts(minutes: int) -> np.ndarray:
    """Invocations per minute of the shipped MAF 2019 sample (100 functions, summed) over
    `minutes` consecutive minutes starting MAF_LEAD_MINUTES before its busiest minute."""
    counts = load_maf2019_counts(MAF_SAMPLE).sum(axis=0).astype(np.float64)
    start = max(int(np.argmax(counts)) - MAF_LEAD_MINUTES, 0)
    window = counts[start : start + minutes]
    if window.size < minutes:
        raise ValueError(f"maf_window_counts: {minutes} minutes run past the trace's end")
    return window


def maf_peak_spec(peak_rate: float, counts: np.ndarray) -> WorkloadSpec:
    """MAF-derived load: a Poisson process whose rate in each compressed trace minute (2 s)
    is proportional to that minute's invocations, scaled so the busiest minute's rate is
    `peak_rate` (the schedule repeats if an episode outlives it)."""
    rates = np.asarray(counts, np.float64) * peak_rate / float(np.max(counts))
    return WorkloadSpec(kind="piecewise", schedule=tuple((MAF_BIN_S, float(r)) for r in rates))


def maf_pass_requests(spec: WorkloadSpec) -> int:
    """Expected arrivals in one pass over a piecewise schedule (one replay of the window)."""
    return int(round(sum(d * r for d, r in spec.schedule) * spec.rate_scale))


def stated_peak(spec: WorkloadSpec, window_s: float) -> float:
    """peak_W of the rate function, req/s: for the unpredictable kind its supremum (the top
    of the rate range, spikes included), reached by segments at the top of the range; for a
    piecewise schedule the largest W-second moving average of the schedule."""
    if spec.kind == "unpredictable":
        spike = spec.spike_mult if spec.spike_prob > 0 else 1.0
        return spec.max_rate * spike * spec.rate_scale
    if spec.kind != "piecewise":
        raise ValueError(f"stated_peak: kind {spec.kind!r} has no stated peak")
    duration_s, rate = np.asarray(spec.schedule, np.float64).T
    return _moving_peak(duration_s, rate * spec.rate_scale, window_s)


def _moving_peak(duration_s: np.ndarray, rate: np.ndarray, window_s: float) -> float:
    """max over t of the mean rate in [t, t + W] of a piecewise-constant rate (one pass;
    the maximum is attained with a window edge on a segment boundary)."""
    edges = np.concatenate([[0.0], np.cumsum(duration_s)])
    mass = np.concatenate([[0.0], np.cumsum(duration_s * rate)])
    starts = np.concatenate([edges, edges - window_s])
    starts = np.clip(starts, 0.0, max(edges[-1] - window_s, 0.0))
    cum = lambda t: np.interp(t, edges, mass)  # noqa: E731  (Λ is piecewise linear)
    width = min(window_s, edges[-1])
    return float(np.max((cum(starts + width) - cum(starts)) / width))


def peak_to_mean(spec: WorkloadSpec, window_s: float) -> float:
    """stated_peak / the time-average rate (for a schedule: over one pass)."""
    return stated_peak(spec, window_s) / mean_rate(spec)


def realised_peaks(spec: WorkloadSpec, num_requests: int, seeds, window_s: float) -> list:
    """peak_W of the rate function each evaluation episode drew (unpredictable kind: the
    segments of episode `seed`, as `simulate_seeds` draws them, over its expected horizon);
    a fixed schedule draws the same rate function every episode."""
    if spec.kind != "unpredictable":
        return [stated_peak(spec, window_s)] * len(seeds)
    horizon_s = num_requests / mean_rate(spec)
    grid_s = np.arange(0.0, horizon_s, 0.5)
    out = []
    for seed in seeds:
        key = jax.random.split(jax.random.key(seed))[0]  # simulate_seeds' arrival key
        rate = rate_at(spec, grid_s, key=key, num_arrivals=num_requests)
        out.append(_moving_peak(np.full(grid_s.size, 0.5), rate, window_s))
    return out
