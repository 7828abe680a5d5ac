"""What every trace loader shares: the `Trace` record, CSV cells read with one-line errors,
and rescaling (binomial thinning / replication, then time compression).

The format loaders are in `traces.py`, which re-exports `Trace`.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from jaxserve.errors import InputError


@dataclasses.dataclass(frozen=True)
class Trace:
    """Arrivals of one trace: float64 absolute times plus optional per-request metadata."""

    arrival_s: np.ndarray  # (N,) float64, sorted ascending, seconds from the trace start
    function: np.ndarray | None = None  # (N,) int32 rank of the function (0 = most invoked)
    context_tokens: np.ndarray | None = None  # (N,) int64 prompt tokens
    generated_tokens: np.ndarray | None = None  # (N,) int64 output tokens
    span_s: float = 0.0  # length of the observation window (>= last arrival)

    @property
    def num_arrivals(self) -> int:
        return int(self.arrival_s.shape[0])

    def mean_rate(self) -> float:
        """Arrivals per second over the observation window."""
        return self.num_arrivals / self.span_s if self.span_s > 0 else float("inf")


# ---------------------------------------------------------------------------- CSV helpers


def read_rows(path: str | Path) -> tuple[Path, list[str], list[list[str]]]:
    """Header and data rows of a CSV file; InputError if missing or without data."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"trace file {str(path)!r}: not found; expected an existing CSV file")
    with path.open(newline="") as f:
        rows = [row for row in csv.reader(f) if row]  # tolerate a trailing blank line
    if not rows:
        raise InputError(f"trace file {str(path)}: empty; expected a header and data rows")
    header, data = [c.strip() for c in rows[0]], rows[1:]
    if not data:
        raise InputError(f"trace file {str(path)}: empty trace (header only); expected rows")
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise InputError(
                f"trace file {path}: row {i + 2} has {len(row)} columns; "
                f"expected {len(header)} like the header"
            )
    return path, header, data


def number_cell(path: Path, row: int, column: str, text: str) -> float:
    """Parse one finite number; InputError naming the cell otherwise."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(
            f"trace file {path}: row {row} column {column!r} = {text!r}; expected a finite number"
        )
    return value


def count_cell(path: Path, row: int, column: str, text: str) -> int:
    """Parse one non-negative integer count."""
    value = number_cell(path, row, column, text)
    if value < 0 or value != int(value):
        raise InputError(
            f"trace file {path}: row {row} column {column!r} = {text!r}; "
            "expected a non-negative integer count"
        )
    return int(value)


def check_header(path: Path, header: list[str], expected: tuple[str, ...]) -> None:
    """InputError unless the header starts with the `expected` columns."""
    if tuple(header[: len(expected)]) != expected:
        raise InputError(
            f"trace file {path}: header starts {header[: len(expected)]}; "
            f"expected columns {list(expected)}"
        )


# ---------------------------------------------------------------------------- rescaling


def scale_counts(counts: np.ndarray, rate_scale: float, rng: np.random.Generator) -> np.ndarray:
    """Thin (binomial) or replicate (floor + binomial remainder) integer counts by a factor."""
    whole, frac = math.floor(rate_scale), rate_scale - math.floor(rate_scale)
    return counts * whole + rng.binomial(counts, frac)


def scale_times(
    arrival_s: np.ndarray, rate_scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Thin or replicate sorted times; extra copies land uniformly before the next arrival.

    Returns the new sorted times and, for each, the index of the original it came from.
    """
    copies = scale_counts(np.ones_like(arrival_s, dtype=np.int64), rate_scale, rng)  # (N,)
    source = np.repeat(np.arange(arrival_s.shape[0]), copies)  # (M,)
    first_copy = np.r_[True, source[1:] != source[:-1]]
    next_s = np.r_[arrival_s[1:], arrival_s[-1:]]  # last arrival's copies stay in place
    jitter = rng.uniform(size=source.shape[0]) * (next_s - arrival_s)[source]
    times = arrival_s[source] + np.where(first_copy, 0.0, jitter)
    order = np.argsort(times, kind="stable")
    return times[order], source[order]


def check_rescale(time_compression: float, rate_scale: float) -> None:
    """InputError unless both factors are finite and > 0."""
    for name, value in (("time_compression", time_compression), ("rate_scale", rate_scale)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} = {value!r}: expected a finite number > 0")


def rescaled(trace: Trace, time_compression: float, rate_scale: float, seed: int) -> Trace:
    """Apply rate scaling (thinning/replication) then time compression to a trace."""
    check_rescale(time_compression, rate_scale)
    arrival_s, source = trace.arrival_s, np.arange(trace.num_arrivals)
    if rate_scale != 1.0:
        arrival_s, source = scale_times(arrival_s, rate_scale, np.random.default_rng(seed))
    pick = lambda a: None if a is None else a[source]
    return Trace(
        arrival_s / time_compression,
        pick(trace.function),
        pick(trace.context_tokens),
        pick(trace.generated_tokens),
        trace.span_s / time_compression,
    )


def function_ranks(counts: np.ndarray) -> np.ndarray:
    """Rank of each function by total count, descending (ties: first seen first)."""
    order = np.argsort(-counts, kind="stable")
    ranks = np.empty_like(order)
    ranks[order] = np.arange(order.shape[0])
    return ranks


def check_not_empty(path: Path, num_arrivals: int) -> None:
    """InputError for a trace left without arrivals (after function selection, thinning)."""
    if num_arrivals == 0:
        raise InputError(
            f"trace file {path}: empty trace (no arrivals after selection); "
            "expected at least one arrival"
        )
