"""Helpers for the serving tests: the two-model scenario and a test-sized `ServeConfig`."""

from __future__ import annotations

from pathlib import Path

from jaxserve.serving import ServeConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
TWO_MODEL_TOML = """
name = "serve-test"
reference_rate = 100.0
[workload]
kind = "poisson"
rate = 300.0
[[models]]
name = "small"
queue_capacity = 4
latency_s = [0.002, 0.003]
[[models]]
name = "large"
replicas = 2
queue_capacity = 4
latency_s = [0.006, 0.009]
[[tasks]]
name = "piqa"
deadline_s = 0.02
quality = [0.6, 0.8]
[[tasks]]
name = "sciq"
deadline_s = 0.03
quality = [0.7, 0.9]
"""


def serve_config(scenario, **overrides) -> ServeConfig:
    """A `ServeConfig` with test-sized defaults."""
    base = dict(
        scenario=str(scenario),
        workload=None,
        rate=None,
        seed=0,
        policy="greedy",
        num_requests=60,
        clock="virtual",
        models=("cpu-demo-s", "cpu-demo-s"),
        tasks=None,
        tokenizer=None,
        prompt_tokens=16,
        mode="score",
        gen_tokens=2,
        quality="auto",
        dtype="float32",
        cpu_threads="all",
        fidelity=False,
        window_s=None,
        out=None,
        progress=False,
    )
    return ServeConfig(**{**base, **overrides})
