"""The command line: JSON contract, one-line errors for bad input (spec §8), no partial files."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import jaxserve
from jaxserve.cli import build_parser, main
from jaxserve.errors import InputError

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
    (["simulate", "--rate", "1e30"], "--rate"),
    (["simulate", "--num-requests", "99999999999999"], "GiB"),  # checked before allocating
    (["simulate", "--num-requests", "1000000000"], "GiB"),
    (["simulate", "--rate", "1e-30"], "--rate"),
    (["simulate", "--seed", "99999999999999999999999"], "--seed"),
    (["simulate", "--seed", "-1"], "--seed"),
    (["simulate", "--window-s", "1e300"], "--window-s"),
    (["evaluate", "--checkpoint", "checkpoints/opt-a100x4-hard", "--seeds", "-2"], "--seeds"),
    (["evaluate", "--checkpoint", "checkpoints/opt-a100x4-hard", "--seeds", "0"], "--seeds"),
    (["evaluate", "--checkpoint", "x", "--num-requests", "0"], "--num-requests"),
    (["train", "--out", "x", "--seed", "1e99"], "--seed"),
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


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxserve {jaxserve.__version__}"


def _subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_flag_has_help_text():
    missing = [
        f"{name} {a.option_strings or a.dest}"
        for name, sub in _subparsers().items()
        for a in sub._actions
        if not (a.help or "").strip()
    ]
    assert not missing, missing


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: opt-a100x4)" in out and "(default: 20000)" in out


def test_errors_name_the_command_once(capsys):
    assert main(["simulate", "--num-requests", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("jaxserve: error: simulate: argument --num-requests")
    assert err.count("jaxserve") == 1


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary", "not UTF-8"),
        (
            b'name = "x"\n[[models]]\nname = "m"\nreplicas = 100000000\nlatency_s = [0.1]\n'
            b'[[tasks]]\nname = "t"\ndeadline_s = 0.5\nquality = [0.5]\n',
            "replicas = 100000000",
        ),
    ],
    ids=["binary", "huge-replicas"],
)
def test_bad_scenario_files_are_one_line(tmp_path, capsys, content, needle):
    path = tmp_path / "scenario.toml"
    path.write_bytes(content)
    assert main(["simulate", "--scenario", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


@pytest.mark.parametrize("far", ["1e300", "1e39"])
def test_trace_with_a_gap_beyond_the_clock_is_one_line(tmp_path, capsys, far):
    trace = tmp_path / "trace.csv"
    trace.write_text(f"TIMESTAMP,ContextTokens,GeneratedTokens\n0,1,1\n{far},1,1\n")
    workload = f"trace:trace_path={trace},trace_format=timestamps"
    assert main(["simulate", "--workload", workload]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected gaps of at most" in err, err


def test_a_reader_that_goes_away_ends_quietly():
    """`jaxserve simulate --json | head -c 0`: no BrokenPipeError traceback, exit 141."""
    cmd = [sys.executable, "-m", "jaxserve.cli", "simulate", "--num-requests", "200", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before anything is printed
    stderr = proc.stderr.read()
    assert proc.wait(timeout=300) == 141 and "Traceback" not in stderr, stderr


@pytest.mark.parametrize("command", ["sweep", "evaluate", "profile", "serve", "bench"])
def test_an_unwritable_out_fails_before_any_work(tmp_path, capsys, command):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, not a folder")
    extra = {"evaluate": ["--checkpoint", "x"], "profile": ["--model", "tiny"]}.get(command, [])
    assert main([command, *extra, "--out", str(blocker / "sub" / "result")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file, not a directory" in err, err


@pytest.mark.parametrize("command", ["train", "plan --train-top 0", "sweep"])
def test_an_out_on_a_file_system_that_takes_no_folders_fails_before_any_work(capsys, command):
    # /proc passes a permission check but refuses new entries: only writing finds out.
    assert main([*command.split(), "--out", "/proc/jaxserve-nope/result"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write in '/proc'" in err, err


def test_train_out_must_be_a_directory(tmp_path, capsys):
    existing = tmp_path / "file"
    existing.write_text("x")
    assert main(["train", "--out", str(existing)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_results_are_printed_when_the_write_fails(tmp_path, capsys, monkeypatch):
    from jaxserve import io_utils

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io_utils, "write_json_atomic", full_disk)
    with pytest.raises(InputError, match="No space left.*results are on stdout instead"):
        io_utils.write_json_or_print(tmp_path / "r.json", {"performance": 0.5})
    assert json.loads(capsys.readouterr().out) == {"performance": 0.5}


@pytest.mark.slow  # keeps the default suite near 10 min on 2 cores; `pytest -m slow`
def test_evaluate_on_one_workload_with_progress(tmp_path, capsys):
    """The shipped router and every baseline on one Poisson rate; a bar over the 9 runs."""
    out = tmp_path / "eval"
    router = Path(__file__).resolve().parents[1] / "checkpoints" / "opt-a100x4-hard"
    argv = ["evaluate", "--checkpoint", str(router), "--rate", "200",
            "--num-requests", "200", "--json", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert json.loads((tmp_path / "eval.json").read_text()) == printed
    names = list(printed["workload"])
    assert names[0] == "router" and "static:opt-6.7b" in names and len(names) == 9
    assert "9/9" in captured.err  # the progress bar counted every run


def test_miss_penalty_flag_reaches_the_run(capsys):
    args = ["simulate", "--policy", "static:2", "--num-requests", "300", "--rate", "800"]
    assert main(args + ["--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(args + ["--json", "--miss-penalty", "2"]) == 0
    priced = json.loads(capsys.readouterr().out)
    assert priced["miss_penalty"] == 2.0 and plain["miss_penalty"] == 0.0
    assert priced["performance"] == pytest.approx(plain["performance"])
    assert priced["reward"] < plain["reward"]


@pytest.mark.parametrize(
    "command", ["simulate", "sweep", "train --out x", "evaluate --checkpoint x"]
)
def test_bad_miss_penalty_is_one_line(command, capsys):
    assert main([*command.split(), "--miss-penalty", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--miss-penalty: -1 is not a penalty" in err[0]
