"""`sweep` over every workload kind: each grid rate is the workload's long-run mean rate."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxserve.cli import main
from jaxserve.evaluation.grid import rescaled
from jaxserve.sim.workloads import WorkloadSpec, load_spec_trace, make_workload, mean_rate


def test_a_rescaled_trace_keeps_its_shape_at_the_target_mean_rate():
    spec = WorkloadSpec("trace", trace_name="azure_llm_2023_code")
    n = 2000
    wparams, generate = make_workload(spec, 4, n)
    base = mean_rate(spec)  # the whole trace's requests / span
    plain = np.asarray(generate(jax.random.key(0), wparams).gap_s, np.float64)
    fast = np.asarray(generate(jax.random.key(0), rescaled(spec, wparams)(4 * base)).gap_s)
    np.testing.assert_allclose(fast, plain / 4, rtol=1e-6)  # same arrivals, 4x compressed
    trace = load_spec_trace(spec)
    assert base == pytest.approx(trace.num_arrivals / trace.span_s)


@pytest.mark.parametrize(
    "spec, rel",
    [
        (WorkloadSpec("unpredictable", min_rate=10.0, max_rate=400.0, mean_segment_s=0.2), 0.1),
        (WorkloadSpec("piecewise", schedule=((5.0, 100.0), (5.0, 400.0))), 0.02),
    ],
    ids=["unpredictable", "piecewise"],
)
def test_a_rescaled_workload_reaches_the_target_mean_rate(spec, rel):
    target, n = 700.0, 200_000  # ~1400 segments: the time average is reached
    wparams, generate = make_workload(spec, 4, n)
    gaps = np.asarray(generate(jax.random.key(1), rescaled(spec, wparams)(target)).gap_s)
    assert n / gaps.astype(np.float64).sum() == pytest.approx(target, rel=rel)


@pytest.mark.parametrize(
    "workload, has_bound",
    [("gamma:cv=4", True), ("unpredictable", False), ("trace:name=azure_llm_2023_code", False)],
)
def test_sweep_accepts_every_workload_kind(capsys, workload, has_bound):
    argv = ["sweep", "--workload", workload, "--policies", "greedy,static:2", "--rates",
            "100,400", "--num-requests", "500", "--seeds", "2", "--json"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["workload"] == workload and np.shape(result["normalized_performance"])[:2] == (
        2,
        2,
    )
    assert (result["fluid_upper_bound_normalized"] is not None) == has_bound


def test_a_sweep_in_chunks_equals_one_call():
    """12 runs in chunks of 5 (the last padded): the same numbers, one callback per chunk."""
    from jaxserve.evaluation.grid import run_sweep
    from jaxserve.sim.scenarios import get_scenario

    scenario = get_scenario("opt-a100x4")
    grid = dict(policy_names=["greedy", "static:2"], rates=[100.0, 400.0], num_requests=300)
    whole = run_sweep(scenario, **grid, seeds=3, per_seed=True)
    calls = []
    chunked = run_sweep(
        scenario, **grid, seeds=3, per_seed=True, chunk_lanes=5, on_chunk=calls.append
    )
    assert calls == [1, 1, 1]
    for key in ("normalized_performance", "availability", "routing_fraction"):
        np.testing.assert_array_equal(np.asarray(chunked[key]), np.asarray(whole[key]))
