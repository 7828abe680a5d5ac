"""Wall-clock timing of JAX calls, shared by the profiler and the benchmarks.

A leaf module (jax, numpy and the progress callback only), so `models/opt/bench.py` and
`serving/profile.py` both depend on it rather than on each other.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxserve.progress import no_progress


def timed_runs(fn: Callable[[], Any], repeats: int, warmup: int) -> np.ndarray:
    """Wall seconds (repeats,) of fn() after warmup untimed calls; waits for device results."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def interleaved_runs(
    calls: Sequence[Callable[[], Any]], repeats: int, on_call: Callable[[int], None] = no_progress
) -> np.ndarray:
    """Wall seconds (repeats, len(calls)): each round times every call once, so load drift on
    a shared host hits every batch size alike instead of a contiguous block of them."""
    seconds = np.zeros((repeats, len(calls)))
    for r in range(repeats):
        for j, fn in enumerate(calls):
            start = time.perf_counter()
            jax.block_until_ready(fn())
            seconds[r, j] = time.perf_counter() - start
            on_call(1)
    return seconds


def describe_machine() -> dict:
    """Device and host description stored next to measured latencies."""
    device = jax.devices()[0]
    return {
        "device": f"{device.platform}:{device.device_kind}",
        "num_devices": jax.device_count(),
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
    }


__all__ = ["describe_machine", "interleaved_runs", "timed_runs"]
