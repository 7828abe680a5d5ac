"""Profiler extensions for serving: the serve batch call, isotonic fit, bad call names."""

from __future__ import annotations

import pytest

from jaxserve.errors import InputError
from jaxserve.serving import ProfileConfig
from jaxserve.serving.cpu import configure_cpu_threads
from jaxserve.serving.profile import isotonic, run_profile


def test_isotonic_pools_adjacent_violators():
    assert isotonic([1, 2, 5, 3, 4, 6, 5]) == [1, 2, 4, 4, 4, 5.5, 5.5]
    assert isotonic([3.0, 2.0, 1.0]) == [2.0, 2.0, 2.0]
    assert isotonic([1.0]) == [1.0]


def _config(**overrides) -> ProfileConfig:
    base = dict(
        model="cpu-demo-s",
        prompt_tokens=8,
        gen_tokens=0,
        batch_sizes="1,2,3",
        repeats=2,
        out=None,
        dtype="float32",
        warmup=1,
        call="serve",
        monotone=True,
        cpu_threads="all",
    )
    return ProfileConfig(**{**base, **overrides})


def test_serve_call_profile_is_monotone_and_keeps_raw_medians():
    record = run_profile(_config())
    assert record["call"] == "serve" and record["cpu_threads"] == "all"
    assert len(record["median_s"]) == len(record["latency_s"]) == 3
    assert all(a <= b for a, b in zip(record["latency_s"], record["latency_s"][1:], strict=False))


def test_bad_call_and_thread_mode_are_input_errors():
    with pytest.raises(InputError, match="call"):
        _config(call="backward", batch_sizes="1")
    with pytest.raises(InputError, match="--cpu-threads"):
        configure_cpu_threads("2")
