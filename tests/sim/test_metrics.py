"""docs/spec.md §4 metrics on hand-computed ledgers."""

from __future__ import annotations

import numpy as np
import pytest

from jaxserve.sim.metrics import (
    max_sustainable_rate,
    performance_per_gpu,
    request_metrics,
    time_above_ratio,
    windowed_normalized,
)

QUALITY = np.array([[0.5, 1.0], [0.2, 0.4]])  # peak per task: 1.0, 0.4


def _ledger():
    # 5 requests: on time (u=1.0, lat 0.2), late (u=0, lat 3.0), dropped, rejected,
    # on time (u=0.2, lat 0.4). Tasks 0,0,1,1,1; actions 1,1,0,0,0.
    return {
        "outcome": np.array([0, 1, 2, 3, 0]),
        "utility": np.array([1.0, 0.0, 0.0, 0.0, 0.2]),
        "latency_s": np.array([0.2, 3.0, 0.0, 0.0, 0.4]),
        "action": np.array([1, 1, 0, 0, 0]),
    }


def test_request_metrics_by_hand():
    arrival_s = np.array([0.0, 1.0, 2.0, 12.0, 21.0])
    m = request_metrics(_ledger(), arrival_s, np.array([0, 0, 1, 1, 1]), QUALITY, 2, window_s=10.0)
    assert m["num_arrived"] == 5
    assert (m["num_on_time"], m["num_late"], m["num_dropped"], m["num_rejected"]) == (2, 1, 1, 1)
    assert m["performance"] == pytest.approx(1.2 / 5)
    assert m["peak"] == pytest.approx((1.0 + 1.0 + 0.4 * 3) / 5)
    assert m["normalized_performance"] == pytest.approx(1.2 / 3.2)
    assert m["availability"] == pytest.approx(0.4)
    assert m["goodput"] == pytest.approx(2 / 21.0)
    assert m["latency_mean_s"] == pytest.approx((0.2 + 3.0 + 0.4) / 3)
    assert m["latency_p50_s"] == pytest.approx(0.4)
    assert m["routing_fraction"] == pytest.approx([0.6, 0.4])
    assert m["routing_fraction_per_task"] == [[0.0, 1.0], [1.0, 0.0]]
    # Windows [0,10): u 1.0 / peak 2.4; [10,20): 0 / 0.4; [20,30): 0.2 / 0.4.
    assert m["windowed_normalized_performance"] == pytest.approx([1 / 2.4, 0.0, 0.5])
    assert m["time_above_96"] == 0.0


def test_windows_without_arrivals_are_left_out():
    starts, values = windowed_normalized(
        np.array([0.5, 25.0]), np.array([1.0, 1.0]), np.array([1.0, 2.0]), 10.0
    )
    assert starts.tolist() == [0.0, 20.0] and values.tolist() == [1.0, 0.5]


def test_lost_request_is_an_error():
    ledger = _ledger()
    ledger["outcome"][2] = -1
    with pytest.raises(RuntimeError, match="lost"):
        request_metrics(ledger, np.arange(5.0), np.zeros(5, int), QUALITY, 2)


def test_derived_metrics():
    assert max_sustainable_rate([1, 2, 4, 8], [1.0, 0.995, 0.98, 0.5]) == 2
    assert max_sustainable_rate([1, 2], [0.5, 0.4]) is None
    assert time_above_ratio(0.8, 0.2) == pytest.approx(4.0)
    assert time_above_ratio(0.8, 0.0) is None
    assert performance_per_gpu(0.75, 200.0, 4) == pytest.approx(37.5)
