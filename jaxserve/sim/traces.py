"""Request-arrival trace loaders (numpy, float64) and conversion to padded JAX gaps.

Formats (see docs/workloads.md and jaxserve/data/traces/README.md):
* ``maf2019``: Azure Functions 2019 per-function invocation counts per minute;
* ``timestamps``: one row per request, first column a timestamp (Azure LLM inference 2023:
  ``TIMESTAMP,ContextTokens,GeneratedTokens``);
* ``azure2021``: Azure Functions 2021 invocations, ``app,func,end_timestamp,duration``.
Every loader returns a :class:`Trace` of sorted float64 arrival times in seconds from the
trace start; bad files raise :class:`InputError` with one line naming file, row and column.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import math
import re
from pathlib import Path

import numpy as np

from jaxserve.errors import InputError
from jaxserve.limits import MAX_TIME_S

TRACE_FORMATS = ("maf2019", "timestamps", "azure2021")
MAF_ID_COLUMNS = ("HashOwner", "HashApp", "HashFunction", "Trigger")
AZURE2021_COLUMNS = ("app", "func", "end_timestamp", "duration")
SECONDS_PER_MINUTE = 60.0
# `YYYY-MM-DD HH:MM:SS[.fraction]`; the LLM 2023 trace has 7 fractional digits (100 ns ticks).
_DATETIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
# Metadata column names (LLM 2023 trace; vidur's converted copy of it).
_CONTEXT_COLUMNS = ("contexttokens", "num_prefill_tokens")
_GENERATED_COLUMNS = ("generatedtokens", "num_decode_tokens")


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


def _read_rows(path: str | Path) -> tuple[Path, list[str], list[list[str]]]:
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


def _number(path: Path, row: int, column: str, text: str) -> float:
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


def _count(path: Path, row: int, column: str, text: str) -> int:
    """Parse one non-negative integer count."""
    value = _number(path, row, column, text)
    if value < 0 or value != int(value):
        raise InputError(
            f"trace file {path}: row {row} column {column!r} = {text!r}; "
            "expected a non-negative integer count"
        )
    return int(value)


def _check_header(path: Path, header: list[str], expected: tuple[str, ...]) -> None:
    if tuple(header[: len(expected)]) != expected:
        raise InputError(
            f"trace file {path}: header starts {header[: len(expected)]}; "
            f"expected columns {list(expected)}"
        )


# ---------------------------------------------------------------------------- rescaling


def _scale_counts(counts: np.ndarray, rate_scale: float, rng: np.random.Generator) -> np.ndarray:
    """Thin (binomial) or replicate (floor + binomial remainder) integer counts by a factor."""
    whole, frac = math.floor(rate_scale), rate_scale - math.floor(rate_scale)
    return counts * whole + rng.binomial(counts, frac)


def _scale_times(
    arrival_s: np.ndarray, rate_scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Thin or replicate sorted times; extra copies land uniformly before the next arrival.

    Returns the new sorted times and, for each, the index of the original it came from.
    """
    copies = _scale_counts(np.ones_like(arrival_s, dtype=np.int64), rate_scale, rng)  # (N,)
    source = np.repeat(np.arange(arrival_s.shape[0]), copies)  # (M,)
    first_copy = np.r_[True, source[1:] != source[:-1]]
    next_s = np.r_[arrival_s[1:], arrival_s[-1:]]  # last arrival's copies stay in place
    jitter = rng.uniform(size=source.shape[0]) * (next_s - arrival_s)[source]
    times = arrival_s[source] + np.where(first_copy, 0.0, jitter)
    order = np.argsort(times, kind="stable")
    return times[order], source[order]


def _check_rescale(time_compression: float, rate_scale: float) -> None:
    for name, value in (("time_compression", time_compression), ("rate_scale", rate_scale)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} = {value!r}: expected a finite number > 0")


def _rescaled(trace: Trace, time_compression: float, rate_scale: float, seed: int) -> Trace:
    """Apply rate scaling (thinning/replication) then time compression to a trace."""
    _check_rescale(time_compression, rate_scale)
    arrival_s, source = trace.arrival_s, np.arange(trace.num_arrivals)
    if rate_scale != 1.0:
        arrival_s, source = _scale_times(arrival_s, rate_scale, np.random.default_rng(seed))
    pick = lambda a: None if a is None else a[source]
    return Trace(
        arrival_s / time_compression,
        pick(trace.function),
        pick(trace.context_tokens),
        pick(trace.generated_tokens),
        trace.span_s / time_compression,
    )


def _ranks(counts: np.ndarray) -> np.ndarray:
    """Rank of each function by total count, descending (ties: first seen first)."""
    order = np.argsort(-counts, kind="stable")
    ranks = np.empty_like(order)
    ranks[order] = np.arange(order.shape[0])
    return ranks


def _empty_check(path: Path, num_arrivals: int) -> None:
    if num_arrivals == 0:
        raise InputError(
            f"trace file {path}: empty trace (no arrivals after selection); "
            "expected at least one arrival"
        )


# ---------------------------------------------------------------------------- MAF 2019


def load_maf2019_counts(path: str | Path, functions: int | None = None) -> np.ndarray:
    """Invocation counts of the chosen functions, most invoked first.

    Args:
      path: an ``invocations.csv`` (``HashOwner,HashApp,HashFunction,Trigger,<minute>...``).
      functions: keep the top-N functions by total count; None = all.
    Returns:
      (num_functions, num_minutes) int64; row r = function of rank r.
    """
    path, header, data = _read_rows(path)
    _check_header(path, header, MAF_ID_COLUMNS)
    minutes = header[len(MAF_ID_COLUMNS) :]
    if not minutes:
        raise InputError(
            f"trace file {path}: no minute columns after {list(MAF_ID_COLUMNS)}; "
            "expected one count column per minute"
        )
    for column in minutes:
        _number(path, 1, "header", column)  # minute columns are named by their minute index
    counts = np.array(
        [
            [
                _count(path, i + 2, minutes[j], cell)
                for j, cell in enumerate(row[len(MAF_ID_COLUMNS) :])
            ]
            for i, row in enumerate(data)
        ],
        dtype=np.int64,
    )  # (F, M)
    ranks = _ranks(counts.sum(axis=1))
    ordered = np.empty_like(counts)
    ordered[ranks] = counts
    if functions is not None:
        _check_functions(functions)
        ordered = ordered[:functions]
    return ordered


def _check_functions(functions: int) -> None:
    if isinstance(functions, bool) or not isinstance(functions, int) or functions < 1:
        raise InputError(f"functions = {functions!r}: expected None (all) or an integer >= 1")


def spread_counts(
    counts: np.ndarray, bin_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Spread per-bin counts as a Poisson process: uniform order statistics within each bin.

    Args:
      counts: (F, M) counts of function f in bin m.
    Returns:
      sorted arrival times (N,) float64 and the function row of each arrival (N,) int32.
    """
    num_functions, num_bins = counts.shape
    flat = counts.reshape(-1)
    function = np.repeat(np.repeat(np.arange(num_functions), num_bins), flat)  # (N,)
    bin_index = np.repeat(np.tile(np.arange(num_bins), num_functions), flat)  # (N,)
    times = (bin_index + rng.uniform(size=function.shape[0])) * bin_s
    order = np.argsort(times, kind="stable")
    return times[order], function[order].astype(np.int32)


def load_maf2019(
    path: str | Path,
    functions: int | None = None,
    seed: int = 0,
    time_compression: float = 1.0,
    rate_scale: float = 1.0,
) -> Trace:
    """Load an Azure Functions 2019 ``invocations.csv`` as arrivals (function rank as metadata).

    Counts are scaled first (binomial thinning / replication by ``rate_scale``), then spread
    uniformly within each minute, which is a Poisson process conditioned on the count; a
    minute lasts ``60 / time_compression`` seconds. ``seed`` fixes the randomness.
    """
    _check_rescale(time_compression, rate_scale)
    counts = load_maf2019_counts(path, functions)
    rng = np.random.default_rng(seed)
    if rate_scale != 1.0:
        counts = _scale_counts(counts, rate_scale, rng)
    _empty_check(Path(path), int(counts.sum()))
    bin_s = SECONDS_PER_MINUTE / time_compression
    arrival_s, function = spread_counts(counts, bin_s, rng)
    return Trace(arrival_s, function, span_s=counts.shape[1] * bin_s)


# ---------------------------------------------------------------------------- timestamps


def _ticks(path: Path, row: int, column: str, text: str) -> tuple[int, int] | float:
    """A timestamp cell as (epoch seconds, 100 ns ticks) or as a plain number of seconds."""
    match = _DATETIME_RE.match(text.strip())
    if match is None:
        try:
            return _number(path, row, column, text)
        except InputError:
            raise InputError(
                f"trace file {path}: row {row} column {column!r} = {text!r}; "
                "expected 'YYYY-MM-DD HH:MM:SS.fffffff' or seconds"
            ) from None
    y, mo, d, h, mi, s, frac = match.groups()
    try:  # validates the calendar; naive (no time zone): only differences matter
        stamp = datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError as e:
        raise InputError(
            f"trace file {path}: row {row} column {column!r} = {text!r}; "
            f"expected a valid date and time ({e})"
        ) from None
    seconds = stamp.toordinal() * 86_400 + stamp.hour * 3600 + stamp.minute * 60 + stamp.second
    ticks = int(((frac or "") + "0000000")[:7])  # integer 100 ns ticks: exact, no float
    return seconds, ticks


def _relative_seconds(stamps: list) -> np.ndarray:
    """Timestamps relative to the first one, computed exactly before the float64 cast."""
    if isinstance(stamps[0], tuple):
        s0, t0 = stamps[0]
        return np.array([((s - s0) * 10_000_000 + (t - t0)) / 1e7 for s, t in stamps])
    return np.asarray(stamps, dtype=np.float64) - stamps[0]


def _check_sorted(path: Path, column: str, arrival_s: np.ndarray) -> None:
    bad = np.flatnonzero(np.diff(arrival_s) < 0)
    if bad.size:
        row = int(bad[0]) + 3  # +1 header, +1 one-based, +1 the later row of the pair
        raise InputError(
            f"trace file {path}: row {row} column {column!r} is earlier than "
            f"row {row - 1}; expected timestamps sorted ascending"
        )


def _metadata_column(
    path: Path, header: list[str], data: list[list[str]], names: tuple
) -> np.ndarray | None:
    lowered = [h.lower() for h in header]
    for name in names:
        if name in lowered:
            j = lowered.index(name)
            return np.array(
                [_count(path, i + 2, header[j], row[j]) for i, row in enumerate(data)],
                dtype=np.int64,
            )
    return None


def load_timestamps(
    path: str | Path, seed: int = 0, time_compression: float = 1.0, rate_scale: float = 1.0
) -> Trace:
    """Load a timestamped request log (first column = time; rows must be sorted).

    Timestamps are ``YYYY-MM-DD HH:MM:SS.fffffff`` (or plain seconds); time 0 is the first
    row. Token columns (``ContextTokens``, ``GeneratedTokens``) become metadata.
    """
    _check_rescale(time_compression, rate_scale)
    path, header, data = _read_rows(path)
    stamps = [_ticks(path, i + 2, header[0], row[0]) for i, row in enumerate(data)]
    if len({type(s) for s in stamps}) > 1:
        raise InputError(
            f"trace file {path}: column {header[0]!r} mixes dates and numbers; "
            "expected one timestamp format"
        )
    arrival_s = _relative_seconds(stamps)
    _check_sorted(path, header[0], arrival_s)
    trace = Trace(
        arrival_s,
        None,
        _metadata_column(path, header, data, _CONTEXT_COLUMNS),
        _metadata_column(path, header, data, _GENERATED_COLUMNS),
        span_s=float(arrival_s[-1]),
    )
    return _rescaled(trace, time_compression, rate_scale, seed)


# ---------------------------------------------------------------------------- Azure 2021


def load_azure2021(
    path: str | Path, seed: int = 0, time_compression: float = 1.0, rate_scale: float = 1.0
) -> Trace:
    """Load an Azure Functions 2021 invocation trace: arrival = end_timestamp - duration.

    Times keep the trace's own clock (0 = its origin); rows need not be sorted. Function
    metadata is the rank of (app, func) by number of invocations.
    """
    _check_rescale(time_compression, rate_scale)
    path, header, data = _read_rows(path)
    _check_header(path, header, AZURE2021_COLUMNS)
    end_s = np.array([_number(path, i + 2, "end_timestamp", r[2]) for i, r in enumerate(data)])
    duration_s = np.array([_number(path, i + 2, "duration", r[3]) for i, r in enumerate(data)])
    if (duration_s < 0).any():
        row = int(np.flatnonzero(duration_s < 0)[0]) + 2
        raise InputError(
            f"trace file {path}: row {row} column 'duration' is negative; "
            "expected a duration >= 0 s"
        )
    keys = [(r[0], r[1]) for r in data]
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    key_index = np.array([ids[k] for k in keys])  # (N,) first-seen order
    function = _ranks(np.bincount(key_index))[key_index].astype(np.int32)
    arrival_s = end_s - duration_s
    order = np.argsort(arrival_s, kind="stable")
    origin_s = min(0.0, float(arrival_s[order[0]]))  # shift only if an arrival precedes 0
    trace = Trace(
        arrival_s[order] - origin_s, function[order], span_s=float(end_s.max() - origin_s)
    )
    return _rescaled(trace, time_compression, rate_scale, seed)


# ---------------------------------------------------------------------------- dispatch, JAX side


def load_trace(
    path: str | Path,
    trace_format: str,
    functions: int | None = None,
    seed: int = 0,
    time_compression: float = 1.0,
    rate_scale: float = 1.0,
) -> Trace:
    """Load a trace of any supported format (``TRACE_FORMATS``); gaps within MAX_TIME_S."""
    return check_gaps(
        path, _load_any(path, trace_format, functions, seed, time_compression, rate_scale)
    )


def check_gaps(path: str | Path, trace: Trace) -> Trace:
    """InputError when two arrivals lie further apart than the simulator's clock holds."""
    gap_s = np.diff(trace.arrival_s, prepend=0.0)
    if gap_s.size and not np.max(gap_s) <= MAX_TIME_S:
        i = int(np.argmax(gap_s))
        raise InputError(
            f"trace file {path}: arrival {i + 1} comes {gap_s[i]:.6g} s after the previous one "
            f"(after time compression); expected gaps of at most {MAX_TIME_S:g} s"
        )
    return trace


def _load_any(path, trace_format, functions, seed, time_compression, rate_scale) -> Trace:
    if trace_format == "maf2019":
        return load_maf2019(path, functions, seed, time_compression, rate_scale)
    if functions is not None:
        raise InputError(
            f"functions = {functions!r}: only the 'maf2019' format selects "
            f"functions; expected None for {trace_format!r}"
        )
    if trace_format == "timestamps":
        return load_timestamps(path, seed, time_compression, rate_scale)
    if trace_format == "azure2021":
        return load_azure2021(path, seed, time_compression, rate_scale)
    raise InputError(f"trace_format = {trace_format!r}: expected one of {TRACE_FORMATS}")


def trace_to_params(arrival_s: np.ndarray, pad_to: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted float64 arrival times -> float32 gaps and validity mask, both (pad_to,).

    Gaps are differenced in float64 before the cast, so each keeps full float32 relative
    precision however late in the trace it is. Traces longer than ``pad_to`` are truncated
    to their first ``pad_to`` arrivals; padding has gap 0 and valid False.
    """
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    if arrival_s.ndim != 1 or not np.isfinite(arrival_s).all():
        raise InputError("arrival times: expected a 1-D array of finite seconds")
    if (arrival_s < 0).any() or (np.diff(arrival_s) < 0).any():
        raise InputError("arrival times: expected non-negative times sorted ascending")
    num = min(arrival_s.shape[0], pad_to)
    gap_s = np.zeros(pad_to, dtype=np.float32)
    gap_s[:num] = np.diff(arrival_s[:num], prepend=0.0)
    valid = np.arange(pad_to) < num
    return gap_s, valid


def binned_rate(arrival_s: np.ndarray, t_s: np.ndarray, bin_s: float) -> np.ndarray:
    """Empirical rate (arrivals/s) of the bin of width ``bin_s`` containing each time t."""
    bins = np.floor(np.asarray(t_s, dtype=np.float64) / bin_s).astype(np.int64)
    counts = np.bincount(
        np.floor(arrival_s / bin_s).astype(np.int64), minlength=int(bins.max(initial=0)) + 1
    )
    inside = (bins >= 0) & (bins < counts.shape[0])
    return np.where(inside, counts[np.clip(bins, 0, counts.shape[0] - 1)], 0) / bin_s
