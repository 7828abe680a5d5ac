"""`jaxserve plan` on the command line: outputs under --out, one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest

from jaxserve.cli import main
from jaxserve.sim.scenarios import scenario_to_toml
from jaxserve.testing.planner import TOY_BEST, toy_zoo


@pytest.fixture
def toy_toml(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(scenario_to_toml(toy_zoo()))
    return str(path)


TOY_ARGS = ["--gpus", "2", "--rates", "40", "--memory-gb", "small=10,big=40",
            "--num-requests", "500", "--train-top", "0", "--no-progress"]  # fmt: skip


def test_plan_writes_json_figure_and_the_placement(toy_toml, tmp_path, capsys):
    out = tmp_path / "plan"
    assert main(["plan", "--scenario", toy_toml, *TOY_ARGS, "--json", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["chosen"]["placement"] == TOY_BEST
    assert json.loads((out / "plan.json").read_text()) == printed
    assert (out / "plan.png").stat().st_size > 0
    assert "replicas = 1" in (out / "placement.toml").read_text()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--gpus", "0"], "argument --gpus: 0 is not a positive integer"),
        (["--placement", "2/2/2"], "placement 2/2/2 (2xOPT-125M + 2xOPT-1.3B + 2xOPT-6.7B) "
         "needs 6 GPUs: expected at most 4"),
        (["--models", "opt-13b"], "model = 'opt-13b': no latency data in zoo 'opt-a100x4'"),
        (["--memory-gb", "opt-6.7b=500"], "no model of zoo"),
        (["--min-performance", "2"], "argument --min-performance: 2 is not in [0, 1]"),
        (["--gpus", "100000"], "gpus = 100000: more than 20000 placements"),
        (["--gpus", "100000", "--min-performance", "1"], "more than 20000 placements"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(extra, needle, capsys):
    argv = ["plan", "--train-top", "0", *extra]
    if "--memory-gb" in extra:
        argv += ["--models", "opt-6.7b"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_a_zoo_without_memory_data_is_one_line(toy_toml, capsys):
    assert main(["plan", "--scenario", toy_toml, "--train-top", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model = 'small': no memory size" in err, err
