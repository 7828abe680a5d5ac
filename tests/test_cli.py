"""The command line: JSON contract, one-line errors for bad input (spec §8), no partial files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jaxserve.cli import main

SIMULATE_KEYS = {
    "performance",
    "normalized_performance",
    "peak",
    "availability",
    "goodput",
    "num_arrived",
    "num_on_time",
    "num_late",
    "num_dropped",
    "num_rejected",
    "latency_mean_s",
    "latency_p50_s",
    "latency_p99_s",
    "routing_fraction",
    "fluid_upper_bound",
}


def test_simulate_json_has_the_contract_keys(capsys):
    assert main(["simulate", "--num-requests", "300", "--rate", "150", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert SIMULATE_KEYS <= set(result)
    assert result["num_arrived"] == 300
    assert (
        result["num_on_time"] + result["num_late"] + result["num_dropped"] + result["num_rejected"]
    ) == 300
    assert 0 <= result["normalized_performance"] <= 1
    # At 150 req/s (below the 6.7B pair's capacity) the bound is the expected peak.
    assert result["fluid_upper_bound_normalized"] == pytest.approx(1.0)


def test_simulate_table_and_seed_changes_result(capsys):
    assert main(["simulate", "--num-requests", "200", "--policy", "random", "--seed", "1"]) == 0
    table = capsys.readouterr().out
    assert "normalized_performance" in table and "routing_fraction" in table
    outs = []
    for seed in ("1", "2"):
        main(["simulate", "--num-requests", "200", "--policy", "random", "--seed", seed, "--json"])
        outs.append(json.loads(capsys.readouterr().out)["routing_fraction"])
    assert outs[0] != outs[1]


BAD_ARGS = [
    (["simulate", "--rate", "-3"], "--rate"),
    (["simulate", "--rate", "nan"], "--rate"),
    (["simulate", "--num-requests", "0"], "--num-requests"),
    (["simulate", "--policy", "static:7"], "static:7"),
    (["simulate", "--scenario", "no-such-scenario"], "no-such-scenario"),
    (["simulate", "--workload", "zipf"], "kind"),
    (["simulate", "--workload", "gamma:cv=-1"], "cv"),
    (["simulate", "--workload", "gamma:shape=2"], "shape"),
    (["simulate", "--workload", "trace:trace_path=/nonexistent.csv"], "nonexistent"),
    (["simulate", "--workload", "trace:name=nope"], "trace_name"),
    (["simulate", "--workload", "trace:name=azure_functions_2019_100,trace_tasks=maybe"], "maybe"),
    (["sweep", "--rates", "10,-5"], "--rates"),
    (["sweep", "--mixes", "0.5/0.5"], "--mixes"),
    (["sweep", "--deadline-scales", "0"], "--deadline-scales"),
    (["bench", "--sections", "gpu"], "--sections"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize("argv,needle", BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_input_gives_one_line_and_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("jaxserve: error:") and needle in err


def test_bad_scenario_toml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[models]]\nname = "m"\nlatency_s = [0.2, 0.1]\n')
    assert main(["simulate", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "jaxserve: error:" in err


def test_sweep_writes_json_and_plot_atomically(tmp_path, capsys):
    stem = tmp_path / "out" / "sweep"
    argv = [
        "sweep",
        "--policies",
        "static:2,greedy",
        "--rates",
        "50,400",
        "--seeds",
        "1",
        "--num-requests",
        "200",
        "--out",
        str(stem),
        "--json",
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["policies"] == ["static:2", "greedy"]
    assert Path(f"{stem}.json").exists() and Path(f"{stem}.png").stat().st_size > 1000
    assert not list((tmp_path / "out").glob(".*tmp*"))


def test_console_script_reports_errors_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "jaxserve.cli", "simulate", "--rate", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, configures",
    [
        (["simulate", "--scenario", "no-such"], True),
        (["serve", "--scenario", "no-such"], False),
        (["profile", "--model", "no-such"], False),
    ],
)
def test_cpu_devices_are_set_for_every_command_but_serve_and_profile(monkeypatch, argv, configures):
    """serve/profile place replicas on devices themselves and keep XLA's one CPU device."""
    import jaxserve.cli as cli

    calls = []
    monkeypatch.setattr(cli, "configure_cpu_devices", lambda: calls.append(argv[0]))
    assert main(argv) == 2  # each fails on its bad argument, after the device decision
    assert calls == ([argv[0]] if configures else [])
