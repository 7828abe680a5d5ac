"""Trace loaders against the real samples shipped in jaxserve/data/traces (and bad input)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxserve.data import BUILTIN_TRACES, builtin_trace, data_path
from jaxserve.errors import InputError
from jaxserve.sim import traces

TRACES = data_path("traces")
LLM = TRACES / "azure_llm_inference_2023"
MAF = TRACES / "azure_functions_2019_invitro_sample"
AZ21 = TRACES / "azure_functions_2021_invitro_sample" / "Azure2021_200.csv"
# SHA-256 as listed in jaxserve/data/traces/README.md.
SHA256 = [  # (file under traces/, digest)
    (
        "azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv",
        "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
    ),
    (
        "azure_llm_inference_2023/AzureLLMInferenceTrace_conv.csv",
        "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
    ),
    (
        "azure_functions_2019_invitro_sample/100/invocations.csv",
        "002e124025d2f7cc81867cf5e48809bec4c853f1728d7874db46433e5d289305",
    ),
    (
        "azure_functions_2019_invitro_sample/500/invocations.csv",
        "a0ca953d1b50cc1f0e813c656e0c3d65b7369757804b571e2767e1ab76b05536",
    ),
    (
        "azure_functions_2019_invitro_sample/100/durations.csv",
        "f25b3424cc6030143c92f595bbeef97707f22cfcaf306792b6b840a2875e2e16",
    ),
    (
        "azure_functions_2019_invitro_sample/100/memory.csv",
        "999563b3a707cfd0f3b998e8109016b7bf4225158816ffd21f1e7cf2463ab0df",
    ),
    (
        "azure_functions_2019_invitro_sample/500/durations.csv",
        "bc2e52d33f1ec0d4032dc7cbdacadb7622413c9264f5478bf8da2c3aacd92b55",
    ),
    (
        "azure_functions_2019_invitro_sample/500/memory.csv",
        "ea3ac4b65629cb33e567ac0a517d6ae68747a5dd143ff394b86f78f685b65305",
    ),
    (
        "azure_functions_2021_invitro_sample/Azure2021_200.csv",
        "d51e9c9ca79872313d94a26b8c52e82fc55855903c92c1f006cfd1a37700673b",
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _data_present():
    if not (TRACES / "README.md").is_file():
        pytest.fail(f"trace data missing: expected {TRACES}/README.md (package data of jaxserve)")


@pytest.fixture(scope="module")
def llm_code():
    return traces.load_timestamps(LLM / "AzureLLMInferenceTrace_code.csv")


@pytest.fixture(scope="module")
def maf100():
    return traces.load_maf2019(MAF / "100" / "invocations.csv", seed=0)


def _column_sums(path: Path) -> np.ndarray:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    return np.array([[int(c) for c in row[4:]] for row in rows]).sum(axis=0)


# ---------------------------------------------------------------------------- integrity


def test_sha256_matches_readme():
    readme = (TRACES / "README.md").read_text()
    for name, digest in SHA256:
        assert digest in readme, name
        assert hashlib.sha256((TRACES / name).read_bytes()).hexdigest() == digest, name


# ---------------------------------------------------------------------------- MAF 2019


def test_maf_per_minute_counts_equal_column_sums(maf100):
    path = MAF / "100" / "invocations.csv"
    per_minute = np.bincount(np.floor(maf100.arrival_s / 60.0).astype(int), minlength=480)
    np.testing.assert_array_equal(per_minute, _column_sums(path))
    assert maf100.num_arrivals == 339_657
    assert maf100.mean_rate() * 60 == pytest.approx(707.6, abs=0.05)
    assert (np.diff(maf100.arrival_s) >= 0).all() and maf100.arrival_s.dtype == np.float64


def test_maf_function_ranks_and_top_n(maf100):
    per_function = np.bincount(maf100.function)
    assert per_function[0] == 273_379  # the dominant function is rank 0
    assert (np.diff(per_function) <= 0).all()
    top3 = traces.load_maf2019(MAF / "100" / "invocations.csv", functions=3)
    assert top3.num_arrivals == per_function[:3].sum()
    np.testing.assert_array_equal(
        traces.load_maf2019_counts(MAF / "100" / "invocations.csv", functions=3).sum(axis=1),
        per_function[:3],
    )


def test_maf_500_total():
    counts = traces.load_maf2019_counts(MAF / "500" / "invocations.csv")
    assert counts.shape == (500, 480) and counts.sum() == 3_037_902


def test_maf_seed_compression_and_scaling():
    path = MAF / "100" / "invocations.csv"
    base = traces.load_maf2019(path, functions=10, seed=1)
    other = traces.load_maf2019(path, functions=10, seed=2)
    assert not np.array_equal(base.arrival_s, other.arrival_s)  # seeds matter
    fast = traces.load_maf2019(path, functions=10, seed=1, time_compression=60.0)
    np.testing.assert_allclose(fast.arrival_s, base.arrival_s / 60.0)
    assert fast.span_s == pytest.approx(480.0)
    half = traces.load_maf2019(path, functions=10, seed=1, rate_scale=0.5)
    double = traces.load_maf2019(path, functions=10, seed=1, rate_scale=2.5)
    assert half.num_arrivals / base.num_arrivals == pytest.approx(0.5, rel=0.02)
    assert double.num_arrivals / base.num_arrivals == pytest.approx(2.5, rel=0.02)


# ---------------------------------------------------------------------------- LLM 2023


def test_llm_trace_counts_rates_sorted(llm_code):
    conv = traces.load_timestamps(LLM / "AzureLLMInferenceTrace_conv.csv")
    assert llm_code.num_arrivals == 8_819 and conv.num_arrivals == 19_366
    assert round(llm_code.mean_rate(), 2) == 2.57 and round(conv.mean_rate(), 2) == 5.53
    for trace in (llm_code, conv):
        assert trace.arrival_s[0] == 0.0 and (np.diff(trace.arrival_s) >= 0).all()
    assert llm_code.span_s == pytest.approx(3435.948056, abs=1e-9)  # 7 fractional digits kept
    assert llm_code.arrival_s[1] == pytest.approx(0.052, abs=1e-12)
    assert llm_code.context_tokens.max() == 7437 and llm_code.generated_tokens.max() == 1899
    assert llm_code.generated_tokens[-1] == 173  # the last line has no trailing newline


def test_llm_trace_rescaling(llm_code):
    path = LLM / "AzureLLMInferenceTrace_code.csv"
    thinned = traces.load_timestamps(path, seed=3, rate_scale=0.5)
    doubled = traces.load_timestamps(path, seed=3, rate_scale=2.0, time_compression=2.0)
    assert thinned.num_arrivals / llm_code.num_arrivals == pytest.approx(0.5, rel=0.05)
    assert doubled.num_arrivals == 2 * llm_code.num_arrivals
    assert (np.diff(doubled.arrival_s) >= 0).all()
    assert doubled.mean_rate() == pytest.approx(4 * llm_code.mean_rate(), rel=1e-6)
    assert doubled.context_tokens.sum() == 2 * llm_code.context_tokens.sum()


# ---------------------------------------------------------------------------- Azure 2021


def test_azure2021_arrivals():
    trace = traces.load_azure2021(AZ21)
    assert trace.num_arrivals == 199 and (np.diff(trace.arrival_s) >= 0).all()
    assert trace.arrival_s[0] == pytest.approx(0.07949090003967285 - 0.078)
    assert trace.span_s == pytest.approx(1260.0557980537415)
    assert trace.function.min() == 0 and (
        np.bincount(trace.function)[0] == np.bincount(trace.function).max()
    )


def test_load_trace_dispatch():
    assert traces.load_trace(AZ21, "azure2021").num_arrivals == 199
    with pytest.raises(InputError, match="trace_format"):
        traces.load_trace(AZ21, "json")
    with pytest.raises(InputError, match="functions"):
        traces.load_trace(AZ21, "azure2021", functions=3)


# ---------------------------------------------------------------------------- JAX side


def test_trace_to_params_pads_and_truncates():
    gap_s, valid = traces.trace_to_params(np.array([1.0, 1.5, 4.0]), 5)
    np.testing.assert_allclose(gap_s, [1.0, 0.5, 2.5, 0.0, 0.0])
    np.testing.assert_array_equal(valid, [True, True, True, False, False])
    gap_s, valid = traces.trace_to_params(np.array([1.0, 1.5, 4.0]), 2)
    np.testing.assert_allclose(gap_s, [1.0, 0.5])
    assert valid.all()
    with pytest.raises(InputError, match="sorted"):
        traces.trace_to_params(np.array([2.0, 1.0]), 2)


def test_trace_to_params_precise_late_in_trace():
    arrival_s = 7200.0 + np.array([0.0, 1e-4, 3e-4])  # 2 h in: float32 ulp there is 0.5 ms
    gap_s, _ = traces.trace_to_params(arrival_s, 3)
    np.testing.assert_allclose(gap_s[1:], [1e-4, 2e-4], rtol=1e-6)


@settings(max_examples=50, deadline=None)
@given(times=st.lists(st.floats(0.0, 1e6, allow_nan=False), max_size=40), pad_to=st.integers(1, 50))
def test_property_gaps_nonnegative_and_valid_prefix(times, pad_to):
    gap_s, valid = traces.trace_to_params(np.sort(np.array(times, np.float64)), pad_to)
    assert gap_s.shape == valid.shape == (pad_to,) and gap_s.dtype == np.float32
    assert (gap_s >= 0).all()
    assert valid.sum() == min(len(times), pad_to)
    assert not valid[np.argmin(valid) :].any() or valid.all()  # valid is a prefix
    assert (gap_s[~valid] == 0).all()


def test_binned_rate():
    rate = traces.binned_rate(np.array([0.5, 1.0, 59.0, 61.0]), np.array([0.0, 60.0, 200.0]), 60.0)
    np.testing.assert_allclose(rate, [3 / 60, 1 / 60, 0.0])


# ---------------------------------------------------------------------------- bad input


def _write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LLM_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
BAD_LLM = [
    ("", "empty"),
    (LLM_HEADER, "empty trace"),
    (LLM_HEADER + "2023-11-16 18:17:04.0,1,2\n2023-11-16 18:17:03.0,1,2", r"row 3.*sorted"),
    (LLM_HEADER + "2023-11-16 18:17:04.0,abc,2", r"row 2 column 'ContextTokens' = 'abc'"),
    (LLM_HEADER + "yesterday,1,2", r"row 2 column 'TIMESTAMP' = 'yesterday'"),
    (LLM_HEADER + "2023-11-16 18:17:04.0,1", r"row 2 has 2 columns"),
    (LLM_HEADER + "2023-13-16 18:17:04.0,1,2", "valid date"),
    (LLM_HEADER + "2023-11-16 18:17:04.0,1,2\n5.0,1,2", "mixes dates and numbers"),
    (LLM_HEADER + "1.0,-5,2", r"row 2 column 'ContextTokens' = '-5'.*non-negative"),
]


@pytest.mark.parametrize("text,message", BAD_LLM)
def test_bad_timestamp_files(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=message) as info:
        traces.load_timestamps(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


MAF_HEADER = "HashOwner,HashApp,HashFunction,Trigger,480,481\n"
BAD_MAF = [
    ("Owner,App,Function,Trigger,480\no,a,f,http,1", "header starts"),
    ("HashOwner,HashApp,HashFunction,Trigger\no,a,f,http", "no minute columns"),
    (MAF_HEADER + "o,a,f,http,1,x", r"row 2 column '481' = 'x'"),
    (MAF_HEADER + "o,a,f,http,1,2.5", r"row 2 column '481' = '2.5'.*integer"),
    (MAF_HEADER + "o,a,f,http,1,nan", r"row 2 column '481' = 'nan'"),
    (MAF_HEADER + "o,a,f,http,0,0", "no arrivals"),
]


@pytest.mark.parametrize("text,message", BAD_MAF)
def test_bad_maf_files(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        traces.load_maf2019(_write(tmp_path, text))


def test_bad_azure2021_and_options(tmp_path):
    header = "app,func,end_timestamp,duration\n"
    with pytest.raises(InputError, match=r"row 2 column 'duration' is negative"):
        traces.load_azure2021(_write(tmp_path, header + "a,f,1.0,-2.0"))
    with pytest.raises(InputError, match=r"row 2 column 'end_timestamp'"):
        traces.load_azure2021(_write(tmp_path, header + "a,f,soon,2.0"))
    with pytest.raises(InputError, match="header starts"):
        traces.load_azure2021(_write(tmp_path, "a,b,c,d\n1,2,3,4"))
    with pytest.raises(InputError, match="not found"):
        traces.load_timestamps(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="time_compression"):
        traces.load_azure2021(AZ21, time_compression=0.0)
    with pytest.raises(InputError, match="rate_scale"):
        traces.load_timestamps(LLM / "AzureLLMInferenceTrace_code.csv", rate_scale=-1.0)
    with pytest.raises(InputError, match="functions"):
        traces.load_maf2019(MAF / "100" / "invocations.csv", functions=0)


def test_numeric_timestamps_and_trailing_newline(tmp_path):
    trace = traces.load_timestamps(
        _write(tmp_path, "arrived_at,num_prefill_tokens\n10.5,3\n11.0,4\n\n")
    )
    np.testing.assert_allclose(trace.arrival_s, [0.0, 0.5])
    np.testing.assert_array_equal(trace.context_tokens, [3, 4])
    assert trace.generated_tokens is None


# ---------------------------------------------------------------------------- built-in names


@pytest.mark.parametrize("name", sorted(BUILTIN_TRACES))
def test_builtin_traces_load(name):
    """Every shipped trace loads under its registered format and has arrivals."""
    path, trace_format = builtin_trace(name)
    assert path.is_file() and path.is_relative_to(TRACES)
    assert traces.load_trace(path, trace_format).num_arrivals > 100


def test_unknown_builtin_trace():
    with pytest.raises(InputError, match="azure_llm_2023_code"):
        builtin_trace("no_such_trace")
