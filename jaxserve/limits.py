"""The ranges every numeric input must lie in, and the memory check made before allocating.

One home for the limits (docs/limits.md gives the reasons). Times and rates are held in
float32 by the simulator: the ranges keep every input representable there with room for the
arithmetic done on it (sums of a few latencies, 1/rate gaps), and keep sizes within what one
machine's memory holds. A leaf module: it imports nothing from jaxserve but the error type.
"""

from __future__ import annotations

import math
import os

from jaxserve.errors import InputError

MIN_RATE, MAX_RATE = 1e-3, 1e7  # arrivals/s: gaps from 0.1 µs to ~17 min on average
MIN_TIME_S, MAX_TIME_S = 1e-7, 1e6  # latencies, deadlines, windows, trace gaps: 0.1 µs..11.6 d
MAX_SCALE = 1e3  # rate_scale (thinning/replication) and time_compression: at most 1000x
MAX_SEED = 2**32 - 1  # jax.random.key takes a uint32-representable seed
MAX_REPLICAS = 1024  # per model
MAX_QUEUE_CAPACITY = 1 << 16  # per model
MAX_BATCH = 4096  # latency profile length
MAX_SLOTS = 1 << 16  # per model: queue_capacity + replicas x max_batch (the state's slot axis)
MAX_PENALTY = 1e6  # miss penalty, in quality units (quality is in [0, 1])
MAX_NOISE_SIGMA = 10.0  # log-normal service-time noise
MEMORY_FRACTION = 0.5  # of this machine's physical memory, for one run's arrays
GIB = float(1 << 30)


def check_range(name: str, value: float, low: float, high: float) -> float:
    """A finite number in [low, high]; InputError naming the range otherwise."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and low <= value <= high):
        raise InputError(f"{name} = {value!r}: expected a finite number in [{low:g}, {high:g}]")
    return float(value)


def memory_budget_bytes() -> int:
    """MEMORY_FRACTION of physical memory (or 8 GiB when the OS does not say)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * (1 << 30)
    return int(total * MEMORY_FRACTION)


def check_memory(what: str, num_bytes: float) -> None:
    """InputError before allocating when `what` needs more than the memory budget."""
    budget = memory_budget_bytes()
    if num_bytes > budget:
        raise InputError(
            f"{what} needs ~{num_bytes / GIB:.3g} GiB; the limit is {budget / GIB:.3g} GiB "
            f"({MEMORY_FRACTION:.0%} of this machine's memory): ask for less"
        )


__all__ = [
    "MAX_BATCH",
    "MAX_NOISE_SIGMA",
    "MAX_PENALTY",
    "MAX_QUEUE_CAPACITY",
    "MAX_RATE",
    "MAX_REPLICAS",
    "MAX_SCALE",
    "MAX_SEED",
    "MAX_SLOTS",
    "MAX_TIME_S",
    "MIN_RATE",
    "MIN_TIME_S",
    "check_memory",
    "check_range",
]
