"""CLI: sweep CSV, train --log-csv / --tensorboard / members.csv, plot-training, bad input."""

import csv
import importlib.util
import json
import struct
import sys

import numpy as np
import pytest

from jaxserve.cli import main
from jaxserve.evaluation import load_records

TRAIN = [
    "train",
    "--steps",
    "128",  # 2 chunks of 2 envs x 32 decisions
    "--num-envs",
    "2",
    "--episode-length",
    "32",
    "--hidden",
    "16",
    "--search",
    "discount=0.9/0.97",
    "--no-progress",
    "--json",
]


def _one_error_line(capsys, needle: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("jaxserve: error:"), err
    assert needle in err, err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    argv = [*TRAIN, "--out", str(out / "run"), "--log-csv", str(out / "log.csv")]
    if importlib.util.find_spec("tensorboardX") is not None:  # the optional extra
        argv += ["--tensorboard", str(out / "tb")]
    assert main(argv) == 0
    return out


def test_log_csv_has_one_row_per_chunk_and_member(run):
    with (run / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["chunk"], r["member"]) for r in rows] == [
        ("0", "0"),
        ("0", "1"),
        ("1", "0"),
        ("1", "1"),
    ]
    assert [float(r["discount"]) for r in rows] == [0.9, 0.97, 0.9, 0.97]
    assert [int(r["num_env_steps"]) for r in rows] == [64, 64, 128, 128]
    lines = [json.loads(x) for x in (run / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [float(r["eval_mean"]) for r in rows] == pytest.approx([x["eval_mean"] for x in lines])


def test_members_csv_holds_every_member_and_the_held_out_choice(run):
    members = load_records(run / "run" / "members.csv")
    assert members.column("member") == [0, 1] and members.column("discount") == [0.9, 0.97]
    meta = json.loads((run / "run" / "checkpoint.json").read_text())
    assert members.column("held_out_score") == pytest.approx(meta["held_out_score"])
    assert members.column("best") == [m == meta["best_member"] for m in (0, 1)]


def _tensorboard_scalars(logdir) -> dict:
    """(tag, step) -> value from the event files (TFRecord framing, Event protos)."""
    from tensorboardX.proto import event_pb2

    scalars = {}
    for path in logdir.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                scalars[(value.tag, event.step)] = value.simple_value
    return scalars


def test_tensorboard_scalars_per_member_at_env_steps(run):
    pytest.importorskip("tensorboardX")
    scalars = _tensorboard_scalars(run / "tb")
    lines = [json.loads(x) for x in (run / "run" / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        key = (f"member_{line['member']}/eval_mean", line["num_env_steps"])
        assert scalars[key] == pytest.approx(line["eval_mean"], rel=1e-6)
    assert not any(tag.endswith("/discount") for tag, _ in scalars)  # settings are no scalars


def test_missing_tensorboard_extra_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    argv = [*TRAIN, "--out", str(tmp_path / "r"), "--tensorboard", str(tmp_path / "tb")]
    assert main(argv) == 2
    _one_error_line(capsys, "jaxserve[tensorboard]")
    assert not (tmp_path / "r").exists()


def test_plot_training_writes_a_png(run, capsys):
    png = run / "curves.png"
    assert main(["plot-training", str(run / "run"), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert main(["plot-training", str(run / "run")]) == 0
    assert (run / "run" / "training.png").is_file()


def test_plot_training_bad_run_dir_is_one_line_exit_2(tmp_path, capsys):
    assert main(["plot-training", str(tmp_path / "nope")]) == 2
    _one_error_line(capsys, "nope")
    assert main(["plot-training", str(tmp_path)]) == 2
    _one_error_line(capsys, "metrics.jsonl")


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--search", "hidden=16/32"], "hidden"),
        (["--search", "learning_rate=loguniform:1:0.1"], "low <= high"),
        (["--samples", "0"], "--samples"),
    ],
)
def test_bad_search_arguments_are_one_line(extra, needle, tmp_path, capsys):
    assert main([*TRAIN, "--out", str(tmp_path / "r"), *extra]) == 2
    _one_error_line(capsys, needle)


def test_sweep_out_writes_a_csv_row_per_point_and_seed(tmp_path, capsys):
    stem = tmp_path / "s"
    argv = ["sweep", "--policies", "static:2,greedy", "--rates", "50,400", "--seeds", "2"]
    assert main([*argv, "--num-requests", "150", "--out", str(stem), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = load_records(f"{stem}.csv")
    assert len(rows) == 2 * 2 * 2 and set(rows.column("seed")) == {0, 1}
    for p, policy in enumerate(result["policies"]):
        for r, rate in enumerate(result["rates"]):
            mine = rows.where(policy=policy, rate=rate).column("normalized_performance")
            want = result["normalized_performance"][p][r][0][0]
            assert np.mean(mine) == pytest.approx(want, rel=1e-6)
