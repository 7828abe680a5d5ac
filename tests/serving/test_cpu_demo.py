"""The cpu-demo scenario: built in, measured profiles, presets, stand-in quality, deadline rule."""

from __future__ import annotations

import json
import math

from jaxserve.models.opt.config import get_preset
from jaxserve.sim.scenarios import PACKAGE_SCENARIO_DIR, get_scenario, opt_quality


def test_cpu_demo_is_built_in_with_measured_profiles():
    s = get_scenario("cpu-demo")
    assert s.model_names == ("cpu-demo-s", "cpu-demo-m", "cpu-demo-l")
    assert s.replicas == (1, 1, 2) and s.max_batch == (8, 8, 8)
    for name, latency in zip(s.model_names, s.latency_s, strict=True):
        assert get_preset(name).vocab_size == 512
        record = json.loads((PACKAGE_SCENARIO_DIR / f"{name}.json").read_text())
        assert record["call"] == "serve" and record["prompt_tokens"] == 32
        assert record["machine"]["device"].startswith("cpu") and record["cpu_threads"] == "1"
        assert list(latency) == record["latency_s"]
    smallest, largest = s.latency_s[0][0], s.latency_s[-1][-1]
    assert smallest < 0.005 and 0.02 < largest < 0.2  # spans milliseconds to tens of ms


def test_quality_stand_ins_and_deadline_rule():
    s = get_scenario("cpu-demo")
    assert s.quality == opt_quality(s.task_names, ("opt-125m", "opt-1.3b", "opt-6.7b"))
    # opt-a100x4's rule: 5 x the largest model's batch-of-1 latency, rounded up to 10 ms
    expected = math.ceil(5 * s.latency_s[-1][0] / 0.01) * 0.01
    assert all(abs(d - expected) < 1e-9 for d in s.deadline_s)
    assert s.capacity_per_model()[-1] > 0  # the large model can meet it at low load
