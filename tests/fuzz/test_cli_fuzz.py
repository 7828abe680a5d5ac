"""Fuzzing the command line: any argv the grammar can produce ends in exit 0 with valid JSON
(no NaN), or exit 2 with exactly one error line; never a traceback (docs/limits.md).

Arguments, workload strings, scenario TOML fields and trace contents are drawn by
hypothesis, mixing legal values with bad ones (out of range, NaN, wrong types, binary). The
run is bounded: the sizes it draws are small and the example count is fixed.
"""

from __future__ import annotations

import contextlib
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxserve.cli import main

NUMBERS = ["1", "50", "300", "0", "-1", "nan", "inf", "1e30", "1e-30", "abc", "", "1e400"]
RATES = st.sampled_from(NUMBERS) | st.floats(1e-3, 5e3).map(repr)
SEEDS = st.sampled_from(["0", "7", "-1", "99999999999999999999999", "1.5", "x"])
REQUESTS = st.sampled_from(["64", "128", "0", "-3", "x", "1e9", "99999999999999"])
POLICIES = st.sampled_from(
    ["greedy", "static:0", "static:opt-1.3b", "random", "jsq", "lp", "round-robin", "static:9",
     "nope", ""]
)  # fmt: skip
WORKLOAD_FIELDS = st.sampled_from(
    ["cv=4", "cv=-1", "rate=100", "rate=nan", "rate=1e30", "min_rate=10", "max_rate=1",
     "max_rate=400", "spike_prob=0.2", "spike_prob=2", "schedule=10/100;10/400", "schedule=x",
     "task_mix=0.7/0.1/0.1/0.1", "task_mix=0.5/0.6", "trace_tasks=maybe", "trace_tasks=true",
     "name=azure_llm_2023_code", "name=azure_functions_2019_100", "name=nope",
     "time_compression=20", "time_compression=0", "functions=3", "shape=2", "noequals"]
)  # fmt: skip
KINDS = st.sampled_from(["poisson", "gamma", "piecewise", "unpredictable", "trace", "zipf", ""])
WORKLOADS = st.builds(
    lambda kind, fields: kind + (":" + ",".join(fields) if fields else ""),
    KINDS,
    st.lists(WORKLOAD_FIELDS, max_size=3),
)
TOML_VALUES = st.sampled_from(
    ["1", "2", "0", "-1", "1.5", "100000000", "1e300", "1e-300", "nan", "inf", '"x"', "true"]
)
LATENCIES = st.sampled_from(
    ["[0.01, 0.02]", "[0.02, 0.01]", "[]", "[1e300]", "[1e-300, 0.1]", "[nan]", "0.1"]
)


def _scenario_toml(replicas, capacity, latency, deadline, quality) -> str:
    return (
        'name = "fuzz"\n'
        f'[[models]]\nname = "a"\nreplicas = {replicas}\nqueue_capacity = {capacity}\n'
        f"latency_s = {latency}\n"
        '[[models]]\nname = "b"\nreplicas = 1\nlatency_s = [0.04, 0.06]\n'
        f'[[tasks]]\nname = "t"\ndeadline_s = {deadline}\nquality = [{quality}, 0.9]\n'
    )


SCENARIO_FILES = st.builds(
    _scenario_toml, TOML_VALUES, TOML_VALUES, LATENCIES, TOML_VALUES, TOML_VALUES
).map(str.encode) | st.binary(min_size=1, max_size=64)
TRACES = st.lists(
    st.sampled_from(["0", "0.5", "1", "2.5", "1e39", "1e300", "-1", "nan", "x", "3"]),
    min_size=1,
    max_size=6,
)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _no_nan(text: str):
    def reject(constant):
        raise AssertionError(f"{constant} in the JSON output")

    return json.loads(text, parse_constant=reject)


def _check(argv: list[str]) -> None:
    code, out, err = _run(argv)
    if code == 0:
        _no_nan(out)
    else:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("jaxserve: error:"), (
            argv,
            code,
            err,
        )


FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure reproduces
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(rate=RATES, seed=SEEDS, requests=REQUESTS, policy=POLICIES, workload=WORKLOADS)
def test_simulate_arguments(rate, seed, requests, policy, workload):
    argv = ["simulate", "--json", "--num-requests", requests, "--seed", seed]
    argv += ["--policy", policy, "--workload", workload]
    _check(argv + (["--rate", rate] if rate else []))


@FUZZ
@given(content=SCENARIO_FILES, policy=POLICIES)
def test_scenario_files(tmp_path_factory, content, policy):
    path = tmp_path_factory.mktemp("fuzz") / "scenario.toml"
    path.write_bytes(content)
    _check(["simulate", "--json", "--num-requests", "64", "--scenario", str(path), "--policy",
            policy])  # fmt: skip


@FUZZ
@given(times=TRACES, compression=st.sampled_from(["1", "1000", "0", "1e-30"]))
def test_trace_files(tmp_path_factory, times, compression):
    path = tmp_path_factory.mktemp("fuzz") / "trace.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n" + "".join(f"{t},1,1\n" for t in times)
    )
    workload = f"trace:trace_path={path},trace_format=timestamps,time_compression={compression}"
    _check(["simulate", "--json", "--num-requests", "64", "--workload", workload])
