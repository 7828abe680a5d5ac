"""Request-arrival trace loaders (numpy, float64) and conversion to padded JAX gaps.

Formats (see docs/workloads.md and jaxserve/data/traces/README.md):
* ``maf2019``: Azure Functions 2019 per-function invocation counts per minute;
* ``timestamps``: one row per request, first column a timestamp (Azure LLM inference 2023:
  ``TIMESTAMP,ContextTokens,GeneratedTokens``);
* ``azure2021``: Azure Functions 2021 invocations, ``app,func,end_timestamp,duration``.
Every loader returns a :class:`Trace` of sorted float64 arrival times in seconds from the
trace start; bad files raise :class:`InputError` with one line naming file, row and column.
The record, CSV cell parsing and rescaling shared by the loaders are in `trace_io.py`.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import numpy as np

from jaxserve.errors import InputError
from jaxserve.limits import MAX_TIME_S
from jaxserve.sim.trace_io import (
    Trace,
    check_header,
    check_not_empty,
    check_rescale,
    count_cell,
    function_ranks,
    number_cell,
    read_rows,
    rescaled,
    scale_counts,
)

TRACE_FORMATS = ("maf2019", "timestamps", "azure2021")
MAF_ID_COLUMNS = ("HashOwner", "HashApp", "HashFunction", "Trigger")
AZURE2021_COLUMNS = ("app", "func", "end_timestamp", "duration")
SECONDS_PER_MINUTE = 60.0
# `YYYY-MM-DD HH:MM:SS[.fraction]`; the LLM 2023 trace has 7 fractional digits (100 ns ticks).
_DATETIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
# Metadata column names (LLM 2023 trace; vidur's converted copy of it).
_CONTEXT_COLUMNS = ("contexttokens", "num_prefill_tokens")
_GENERATED_COLUMNS = ("generatedtokens", "num_decode_tokens")


# ---------------------------------------------------------------------------- MAF 2019


def load_maf2019_counts(path: str | Path, functions: int | None = None) -> np.ndarray:
    """Invocation counts of the chosen functions, most invoked first.

    Args:
      path: an ``invocations.csv`` (``HashOwner,HashApp,HashFunction,Trigger,<minute>...``).
      functions: keep the top-N functions by total count; None = all.
    Returns:
      (num_functions, num_minutes) int64; row r = function of rank r.
    """
    path, header, data = read_rows(path)
    check_header(path, header, MAF_ID_COLUMNS)
    minutes = header[len(MAF_ID_COLUMNS) :]
    if not minutes:
        raise InputError(
            f"trace file {path}: no minute columns after {list(MAF_ID_COLUMNS)}; "
            "expected one count column per minute"
        )
    for column in minutes:
        number_cell(path, 1, "header", column)  # minute columns are named by their minute index
    counts = np.array(
        [
            [
                count_cell(path, i + 2, minutes[j], cell)
                for j, cell in enumerate(row[len(MAF_ID_COLUMNS) :])
            ]
            for i, row in enumerate(data)
        ],
        dtype=np.int64,
    )  # (F, M)
    ranks = function_ranks(counts.sum(axis=1))
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
    check_rescale(time_compression, rate_scale)
    counts = load_maf2019_counts(path, functions)
    rng = np.random.default_rng(seed)
    if rate_scale != 1.0:
        counts = scale_counts(counts, rate_scale, rng)
    check_not_empty(Path(path), int(counts.sum()))
    bin_s = SECONDS_PER_MINUTE / time_compression
    arrival_s, function = spread_counts(counts, bin_s, rng)
    return Trace(arrival_s, function, span_s=counts.shape[1] * bin_s)


# ---------------------------------------------------------------------------- timestamps


def _ticks(path: Path, row: int, column: str, text: str) -> tuple[int, int] | float:
    """A timestamp cell as (epoch seconds, 100 ns ticks) or as a plain number of seconds."""
    match = _DATETIME_RE.match(text.strip())
    if match is None:
        try:
            return number_cell(path, row, column, text)
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
                [count_cell(path, i + 2, header[j], row[j]) for i, row in enumerate(data)],
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
    check_rescale(time_compression, rate_scale)
    path, header, data = read_rows(path)
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
    return rescaled(trace, time_compression, rate_scale, seed)


# ---------------------------------------------------------------------------- Azure 2021


def load_azure2021(
    path: str | Path, seed: int = 0, time_compression: float = 1.0, rate_scale: float = 1.0
) -> Trace:
    """Load an Azure Functions 2021 invocation trace: arrival = end_timestamp - duration.

    Times keep the trace's own clock (0 = its origin); rows need not be sorted. Function
    metadata is the rank of (app, func) by number of invocations.
    """
    check_rescale(time_compression, rate_scale)
    path, header, data = read_rows(path)
    check_header(path, header, AZURE2021_COLUMNS)
    end_s = np.array([number_cell(path, i + 2, "end_timestamp", r[2]) for i, r in enumerate(data)])
    duration_s = np.array([number_cell(path, i + 2, "duration", r[3]) for i, r in enumerate(data)])
    if (duration_s < 0).any():
        row = int(np.flatnonzero(duration_s < 0)[0]) + 2
        raise InputError(
            f"trace file {path}: row {row} column 'duration' is negative; "
            "expected a duration >= 0 s"
        )
    keys = [(r[0], r[1]) for r in data]
    ids = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    key_index = np.array([ids[k] for k in keys])  # (N,) first-seen order
    function = function_ranks(np.bincount(key_index))[key_index].astype(np.int32)
    arrival_s = end_s - duration_s
    order = np.argsort(arrival_s, kind="stable")
    origin_s = min(0.0, float(arrival_s[order[0]]))  # shift only if an arrival precedes 0
    trace = Trace(
        arrival_s[order] - origin_s, function[order], span_s=float(end_s.max() - origin_s)
    )
    return rescaled(trace, time_compression, rate_scale, seed)


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


__all__ = [
    "TRACE_FORMATS",
    "Trace",
    "binned_rate",
    "check_gaps",
    "load_azure2021",
    "load_maf2019",
    "load_maf2019_counts",
    "load_timestamps",
    "load_trace",
    "spread_counts",
    "trace_to_params",
]
