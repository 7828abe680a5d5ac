"""Workload generators: statistics, transforms (jit/vmap), validation, precision."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxserve.data import data_path
from jaxserve.errors import InputError
from jaxserve.sim import workloads as wl
from jaxserve.sim.workloads import WorkloadSpec, make_workload

N = 20_000
DATA = data_path(".")
LLM_CODE = DATA / "traces" / "azure_llm_inference_2023" / "AzureLLMInferenceTrace_code.csv"
MAF_100 = DATA / "traces" / "azure_functions_2019_invitro_sample" / "100" / "invocations.csv"
UNPREDICTABLE = WorkloadSpec(
    "unpredictable",
    min_rate=1.0,
    max_rate=40.0,
    mean_segment_s=20.0,
    spike_prob=0.2,
    spike_mult=4.0,
)
PIECEWISE = WorkloadSpec("piecewise", schedule=((10.0, 1.0), (5.0, 0.0), (10.0, 20.0)))


@pytest.fixture(autouse=True)
def _key_reuse_checked():
    with jax.debug_key_reuse(True):
        yield


def _gaps(spec, num_arrivals=N, seed=0, num_tasks=4):
    params, generate = make_workload(spec, num_tasks, num_arrivals)
    arrivals = jax.jit(generate)(jax.random.key(seed), params)
    return np.asarray(arrivals.gap_s, np.float64), arrivals


def _cv(x):
    return x.std() / x.mean()


# ---------------------------------------------------------------------------- statistics


def test_poisson_mean_gap_and_cv():
    gap_s, arrivals = _gaps(WorkloadSpec("poisson", rate=5.0))
    assert gap_s.mean() == pytest.approx(0.2, rel=0.03)  # SE of the mean ~0.7%
    assert _cv(gap_s) == pytest.approx(1.0, rel=0.03)
    assert bool(arrivals.valid.all()) and arrivals.task.dtype == jnp.int32


def test_gamma_cv_matches_and_vmaps_over_cv():
    params, generate = make_workload(WorkloadSpec("gamma", rate=4.0, cv=1.0), 2, N)
    cvs = jnp.array([0.5, 2.0])
    batch = jax.vmap(lambda cv: params.replace(cv=cv))(cvs)
    gap_s = np.asarray(jax.jit(jax.vmap(generate, (None, 0)))(jax.random.key(1), batch).gap_s)
    for row, cv in zip(gap_s.astype(np.float64), [0.5, 2.0], strict=True):
        assert row.mean() == pytest.approx(0.25, rel=0.06)
        assert _cv(row) == pytest.approx(cv, rel=0.1)


def test_piecewise_rate_per_segment():
    gap_s, _ = _gaps(PIECEWISE)
    phase_s = np.mod(np.cumsum(gap_s), 25.0)
    num_cycles = np.cumsum(gap_s)[-1] / 25.0
    counts = np.histogram(phase_s, [0.0, 10.0, 15.0, 25.0])[0]
    rates = counts / num_cycles / np.array([10.0, 5.0, 10.0])
    assert rates[0] == pytest.approx(1.0, rel=0.1)
    assert counts[1] == 0  # a zero-rate segment never receives an arrival
    assert rates[2] == pytest.approx(20.0, rel=0.03)
    assert 1.0 / gap_s.mean() == pytest.approx(wl.mean_rate(PIECEWISE), rel=0.03)


def _reference_piecewise(unit_gaps, duration_s, rate):
    """float64 inverse of the cumulative rate function of a cyclic schedule (the oracle)."""
    mass = np.cumsum(np.asarray(unit_gaps, np.float64))
    cycle_mass, period = np.dot(duration_s, rate), np.sum(duration_s)
    cycles, rest = np.divmod(mass, cycle_mass)
    edges = np.r_[0.0, np.cumsum(duration_s * rate)]
    seg = np.clip(np.searchsorted(edges, rest, side="right") - 1, 0, len(rate) - 1)
    times = (
        cycles * period + np.r_[0.0, np.cumsum(duration_s)][seg] + (rest - edges[seg]) / rate[seg]
    )
    return np.diff(times, prepend=0.0)


def _piecewise_jit(key, duration_s, rate, num_arrivals):
    return jax.jit(wl._piecewise_gaps, static_argnames="num_arrivals")(
        key, jnp.asarray(duration_s), jnp.asarray(rate), num_arrivals=num_arrivals
    )


def test_piecewise_matches_float64_time_rescaling():
    # float32 inputs, so oracle and generator invert the very same cumulative rate function
    duration_s = np.array([0.3, 2.0, 0.05, 1.0], np.float32)  # includes a zero-rate segment
    rate = np.array([50.0, 0.0, 400.0, 3.0], np.float32)
    key = jax.random.key(7)
    gap_s = _piecewise_jit(jax.random.clone(key), duration_s, rate, 5000)  # ~130 cycles
    expected = _reference_piecewise(
        jax.random.exponential(key, (5000,)), duration_s.astype(np.float64), rate.astype(np.float64)
    )
    np.testing.assert_allclose(np.asarray(gap_s), expected, rtol=1e-4, atol=1e-5)


def test_piecewise_gaps_stay_precise_after_hours():
    """Late gaps keep float32 precision: no absolute float32 time is ever accumulated.

    A float32 cumsum would have an ulp of ~1e-3 s after 4 h, i.e. ~5 % of a 50/s gap.
    """
    duration_s, rate = np.array([1800.0, 1800.0], np.float32), np.array([5.0, 50.0], np.float32)
    key = jax.random.key(3)
    gap_s = np.asarray(_piecewise_jit(jax.random.clone(key), duration_s, rate, 400_000))
    unit_gaps = np.asarray(jax.random.exponential(key, (400_000,)), np.float64)
    assert gap_s.astype(np.float64).sum() > 4 * 3600.0
    late = slice(-2000, None)
    rel_err = np.min(
        np.abs(gap_s[late, None] - unit_gaps[late, None] / rate) / gap_s[late, None], axis=1
    )  # each in-segment gap is exactly unit_gap / rate of its segment
    assert np.mean(rel_err < 1e-6) > 0.99


def test_unpredictable_rates_bounds_counts_and_mean():
    num_arrivals = 4000
    params, generate = make_workload(UNPREDICTABLE, 2, num_arrivals)
    key_data = jax.random.key_data(jax.random.split(jax.random.key(11), 16))
    keys = jax.random.wrap_key_data(key_data)
    key_0 = jax.random.wrap_key_data(key_data[0])  # rate_at replays lane 0's segments
    gap_s = jax.jit(jax.vmap(generate, (0, None)))(keys, params).gap_s
    gap_s = np.asarray(gap_s, np.float64)  # (16, num_arrivals)
    arrival_s = np.cumsum(gap_s[0])
    grid_s = np.linspace(0.0, arrival_s[-1], 20_001)
    rate = wl.rate_at(UNPREDICTABLE, grid_s, key=key_0, num_arrivals=num_arrivals)
    assert rate.min() >= 1.0 * (1 - 1e-5) and rate.max() <= 40.0 * 4.0 * (1 + 1e-5)
    offered = np.sum(rate[:-1] * np.diff(grid_s))  # integral of the offered rate
    assert num_arrivals / offered == pytest.approx(1.0, rel=0.05)  # SD ~1.6 %
    # rate = arrivals / elapsed time, pooled over 16 independent episodes
    assert gap_s.size / gap_s.sum() == pytest.approx(wl.mean_rate(UNPREDICTABLE), rel=0.3)


def test_unpredictable_spikes_happen():
    params, _ = make_workload(UNPREDICTABLE, 2, 10)
    segments = jax.jit(wl._unpredictable_segments, static_argnames="num_segments")
    _, rate = segments(jax.random.key(4), params, num_segments=200)
    assert float(rate.max()) > 40.0  # only a spike (x4) exceeds max_rate
    assert float(jnp.mean(rate > 40.0)) < 0.2


def test_task_mix_frequencies():
    mix = (0.1, 0.2, 0.3, 0.4)
    _, arrivals = _gaps(WorkloadSpec("poisson", task_mix=mix))
    freq = np.bincount(np.asarray(arrivals.task), minlength=4) / N
    np.testing.assert_allclose(freq, mix, atol=0.015)


def test_uniform_mix_by_default():
    _, arrivals = _gaps(WorkloadSpec("poisson"), num_tasks=5)
    freq = np.bincount(np.asarray(arrivals.task), minlength=5) / N
    np.testing.assert_allclose(freq, 0.2, atol=0.015)


def test_mix_schedule_shift():
    spec = WorkloadSpec(
        "poisson", rate=10.0, mix_schedule=((100.0, (1.0, 0.0, 0.0)), (50.0, (0.0, 0.5, 0.5)))
    )
    gap_s, arrivals = _gaps(spec, num_arrivals=4000, num_tasks=3)
    arrival_s, task = np.cumsum(gap_s), np.asarray(arrivals.task)
    before, after = task[arrival_s < 99.99], task[arrival_s > 100.01]
    assert (before == 0).all() and before.size > 900
    assert (after != 0).all()  # the last mix holds after the schedule ends (t > 150 s too)
    assert np.mean(after == 1) == pytest.approx(0.5, abs=0.04)


# ---------------------------------------------------------------------------- transforms


def _trace_spec(**kwargs):
    return WorkloadSpec("trace", trace_path=str(LLM_CODE), trace_format="timestamps", **kwargs)


ALL_SPECS = [
    WorkloadSpec("poisson", rate=3.0),
    WorkloadSpec("gamma", rate=3.0, cv=2.0),
    PIECEWISE,
    UNPREDICTABLE,
]


@pytest.mark.parametrize("spec", ALL_SPECS + ["trace"], ids=lambda s: getattr(s, "kind", s))
def test_generators_jit_vmap_over_keys_and_rates(spec):
    spec = _trace_spec() if spec == "trace" else spec
    params, generate = make_workload(spec, 3, 256)
    key_data = jax.random.key_data(jax.random.split(jax.random.key(0)))
    keys = jax.random.wrap_key_data(key_data[jnp.array([0, 1, 1])])  # lanes 1, 2: same key
    batch = jax.vmap(lambda s: params.replace(rate_scale=s))(jnp.array([1.0, 1.0, 4.0]))
    out = jax.jit(jax.vmap(generate))(keys, batch)  # vmapped over keys and params at once
    gap_s = np.asarray(out.gap_s, np.float64)
    assert out.gap_s.shape == (3, 256) and out.gap_s.dtype == jnp.float32
    assert np.isfinite(gap_s).all() and (gap_s >= 0).all()
    assert not np.array_equal(out.task[0], out.task[1])  # two seeds differ
    if spec.kind != "trace":
        assert not np.allclose(gap_s[0], gap_s[1])
    ratio = gap_s[1].sum() / gap_s[2].sum()  # 4x the rate, same key
    if spec.kind in ("poisson", "gamma", "trace"):
        assert ratio == pytest.approx(4.0, rel=1e-5)
    else:
        assert ratio > 1.5


def test_vmap_over_rate_field():
    params, generate = make_workload(WorkloadSpec("poisson", rate=1.0), 2, 5000)
    rates = jnp.array([1.0, 10.0, 100.0])
    batch = jax.vmap(lambda r: params.replace(rate=r))(rates)
    gap_s = jax.jit(jax.vmap(generate, (None, 0)))(jax.random.key(2), batch).gap_s
    np.testing.assert_allclose(1.0 / np.asarray(gap_s).mean(axis=1), rates, rtol=0.05)


def test_trace_workload_replays_gaps_and_pads():
    spec = _trace_spec()
    trace = wl.load_spec_trace(spec)
    _, arrivals = _gaps(spec, num_arrivals=trace.num_arrivals + 10)
    valid = np.asarray(arrivals.valid)
    assert valid.sum() == trace.num_arrivals == 8819 and not valid[-10:].any()
    arrival_s = np.cumsum(np.asarray(arrivals.gap_s, np.float64))[:8819]
    np.testing.assert_allclose(arrival_s, trace.arrival_s, atol=2e-3)


def test_trace_tasks_from_function_rank():
    spec = WorkloadSpec("trace", trace_path=str(MAF_100), functions=3, trace_tasks=True)
    trace = wl.load_spec_trace(spec)
    _, arrivals = _gaps(spec, num_arrivals=500, num_tasks=2)
    np.testing.assert_array_equal(np.asarray(arrivals.task), trace.function[:500] % 2)


# ---------------------------------------------------------------------------- helpers


def test_mean_rate_and_rate_at():
    assert wl.mean_rate(WorkloadSpec("gamma", rate=2.0, rate_scale=3.0)) == 6.0
    assert wl.mean_rate(PIECEWISE) == pytest.approx((10 + 200) / 25)
    log_mean = (40.0 - 1.0) / math.log(40.0)
    assert wl.mean_rate(UNPREDICTABLE) == pytest.approx(log_mean * (1 + 0.2 * 3))
    np.testing.assert_allclose(
        wl.rate_at(PIECEWISE, [0.0, 9.9, 10.0, 14.0, 15.0, 26.0]), [1.0, 1.0, 0.0, 0.0, 20.0, 1.0]
    )
    assert wl.mean_rate(_trace_spec()) == pytest.approx(2.57, abs=0.005)
    with pytest.raises(InputError, match="key"):
        wl.rate_at(UNPREDICTABLE, [0.0])


def test_fixed_arrivals_hand_computed():
    arrivals = wl.fixed_arrivals([0.5, 1.0, 1.0, 3.25], [2, 0, 1, 2])
    np.testing.assert_allclose(np.asarray(arrivals.gap_s), [0.5, 0.5, 0.0, 2.25])
    np.testing.assert_array_equal(np.asarray(arrivals.task), [2, 0, 1, 2])
    assert bool(arrivals.valid.all())
    with pytest.raises(InputError, match="sorted"):
        wl.fixed_arrivals([1.0, 0.5], [0, 0])
    with pytest.raises(InputError, match="shape"):
        wl.fixed_arrivals([1.0, 2.0], [0])


_POISSON_PARAMS, _POISSON_GENERATE = make_workload(WorkloadSpec("poisson"), 3, 64)
_POISSON_JIT = jax.jit(_POISSON_GENERATE)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rate=st.floats(1e-3, 1e4))
def test_property_poisson_gaps_nonnegative_finite(seed, rate):
    arrivals = _POISSON_JIT(jax.random.key(seed), _POISSON_PARAMS.replace(rate=jnp.float32(rate)))
    gap_s = np.asarray(arrivals.gap_s)
    assert np.isfinite(gap_s).all() and (gap_s >= 0).all()
    assert ((np.asarray(arrivals.task) >= 0) & (np.asarray(arrivals.task) < 3)).all()


# ---------------------------------------------------------------------------- validation

BAD_SPECS = [
    (dict(kind="zipf"), "kind"),
    (dict(rate=-1.0), "rate"),
    (dict(rate=float("nan")), "rate"),
    (dict(rate=0.0), "rate"),
    (dict(kind="gamma", cv=0.0), "cv"),
    (dict(kind="gamma", cv=-2.0), "cv"),
    (dict(kind="piecewise", schedule=()), "schedule"),
    (dict(kind="piecewise", schedule=((10.0, 0.0),)), "schedule"),
    (dict(kind="piecewise", schedule=((-1.0, 2.0),)), r"schedule\[0\].duration_s"),
    (dict(kind="piecewise", schedule=((1.0, float("nan")),)), r"schedule\[0\].rate"),
    (dict(kind="piecewise", schedule=((1.0,),)), r"schedule\[0\]"),
    (dict(min_rate=0.0), "min_rate"),
    (dict(min_rate=5.0, max_rate=2.0), "max_rate"),
    (dict(mean_segment_s=0.0), "mean_segment_s"),
    (dict(spike_prob=1.5), "spike_prob"),
    (dict(spike_mult=0.5), "spike_mult"),
    (dict(rate_scale=float("inf")), "rate_scale"),
    (dict(task_mix=(0.5, 0.6)), "task_mix"),
    (dict(task_mix=(1.5, -0.5)), "task_mix"),
    (dict(task_mix=()), "task_mix"),
    (dict(mix_schedule=((10.0, (0.5, 0.4)),)), r"mix_schedule\[0\].mix"),
    (dict(mix_schedule=((0.0, (1.0,)),)), r"mix_schedule\[0\].duration_s"),
    (dict(mix_schedule=((1.0, (1.0,)), (1.0, (0.5, 0.5)))), "mix_schedule"),
    (dict(task_mix=(1.0,), mix_schedule=((1.0, (1.0,)),)), "mix_schedule"),
    (dict(kind="trace"), "trace_path"),
    (dict(kind="trace", trace_name="nope"), "trace_name"),
    (dict(kind="trace", trace_name=["azure_llm_2023_code"]), "trace_name"),
    (dict(kind="trace", trace_name="azure_llm_2023_code", trace_path="x.csv"), "trace_path"),
    (dict(trace_format="parquet"), "trace_format"),
    (dict(time_compression=0.0), "time_compression"),
    (dict(functions=0), "functions"),
    (dict(rate=True), "rate"),
]


@pytest.mark.parametrize("fields,field", BAD_SPECS, ids=[f for _, f in BAD_SPECS])
def test_bad_spec_names_field(fields, field):
    with pytest.raises(InputError, match=rf"WorkloadSpec\.{field} = .*expected") as info:
        WorkloadSpec(**fields)
    assert "\n" not in str(info.value)


def test_bad_sizes_and_mix_length():
    with pytest.raises(InputError, match="task_mix.*3 probabilities"):
        make_workload(WorkloadSpec(task_mix=(0.5, 0.5)), 3, 10)
    with pytest.raises(InputError, match="num_arrivals"):
        make_workload(WorkloadSpec(), 3, 0)
    with pytest.raises(InputError, match="num_tasks"):
        make_workload(WorkloadSpec(), 0, 10)
    with pytest.raises(InputError, match="not found"):
        make_workload(_trace_spec().__class__("trace", trace_path="/nonexistent.csv"), 1, 10)


def test_spec_is_frozen_and_hashable():
    spec = WorkloadSpec("piecewise", schedule=[[1, 2.0]], task_mix=[0.5, 0.5])  # as from TOML
    assert spec.schedule == ((1.0, 2.0),) and spec.task_mix == (0.5, 0.5) and hash(spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.rate = 2.0  # type: ignore[misc]
    assert dataclasses.replace(spec, rate=2.0).rate == 2.0
    with pytest.raises(InputError, match="rate"):
        dataclasses.replace(spec, rate=-2.0)


def test_trace_by_builtin_name_equals_trace_by_path():
    """`trace_name` loads the shipped file under its registered format (here timestamps)."""
    by_name = WorkloadSpec("trace", trace_name="azure_llm_2023_code", time_compression=5.0)
    by_path = WorkloadSpec(
        "trace", trace_path=str(LLM_CODE), trace_format="timestamps", time_compression=5.0
    )
    assert by_name.trace_format == "timestamps"
    a, b = wl.load_spec_trace(by_name), wl.load_spec_trace(by_path)
    np.testing.assert_array_equal(a.arrival_s, b.arrival_s)
