"""The bench runs end to end on a tiny config (numbers are reported, never asserted)."""

from __future__ import annotations

from jaxserve.models.opt import bench


def test_bench_smoke(monkeypatch):
    monkeypatch.setattr(bench, "BENCH_MODEL", "tiny")
    monkeypatch.setattr(bench, "FORWARD_SHAPES", ((1, 8),))
    monkeypatch.setattr(bench, "GENERATE_BATCH", 2)
    monkeypatch.setattr(bench, "GENERATE_PROMPT", 4)
    monkeypatch.setattr(bench, "PLANS", {True: bench.BenchPlan(repeats=1, new_tokens=2)})
    result = bench.bench_opt(quick=True)
    assert result["forward_1x8_jax_s"] > 0 and result["forward_1x8_torch_s"] > 0
    assert result["generate_b2_p4_n2_jax_tok_s"] > 0
