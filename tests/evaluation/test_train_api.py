"""Population training from typed configs: records, the per-chunk callback, files."""

import json

import numpy as np
import pytest

from jaxserve.evaluation import SearchSpace, TrainConfig, evaluate_members, load_records, train
from jaxserve.rl.config import HPARAM_NAMES, DQNConfig, hparams_with
from jaxserve.rl.trainer import run_training
from jaxserve.sim.scenarios import get_scenario

TINY = DQNConfig(
    hidden=(16,),
    num_envs=2,
    episode_length=32,
    total_env_steps=2 * 32 * 3,
    buffer_size=1024,
    batch_size=16,
    learning_starts=32,
    credit_window=16,
    eval_length=32,
    eval_episodes=1,
    eval_rate_factors=(0.5, 2.0),
)
CONFIG = TrainConfig(dqn=TINY, search=SearchSpace(grid={"discount": [0.9, 0.97]}), seed=3)
EVAL_COLUMNS = ["eval_normalized_performance_0.5x", "eval_normalized_performance_2x"]


@pytest.fixture(scope="module")
def trained():
    calls = []
    return train(CONFIG, on_chunk=calls.append), calls


def test_callback_is_called_once_per_chunk_with_that_chunks_metrics(trained):
    result, calls = trained
    assert len(calls) == TINY.num_chunks == 3
    for chunk, rows in enumerate(calls):
        assert rows.column("chunk") == [chunk, chunk] and rows.column("member") == [0, 1]
        assert rows.column("discount") == [0.9, 0.97]
        steps = (chunk + 1) * TINY.env_steps_per_chunk  # env steps per member so far
        assert rows.column("num_env_steps") == [steps, steps]
        assert list(rows) == list(result.history.where(chunk=chunk))


def test_in_memory_run_equals_the_checkpointed_trainer(trained, tmp_path):
    result, _ = trained
    hps = [hparams_with({"discount": 0.9}), hparams_with({"discount": 0.97})]
    run_training(get_scenario("opt-a100x4"), TINY, tmp_path, hps, 3, 2, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(result.history) == len(lines) == 3 * 2
    for line, row in zip(lines, result.history, strict=True):
        assert (row["chunk"], row["member"]) == (line["chunk"], line["member"])
        for name, value in line.items():
            if name == "eval_normalized_performance":
                assert [row[c] for c in EVAL_COLUMNS] == value
            elif name != "wall_s":
                assert row[name] == value, name


def test_member_rows_have_every_hyperparameter_and_the_last_metrics(trained):
    result, _ = trained
    members = result.members
    assert len(members) == 2 and members.column("member") == [0, 1]
    for column in ("point", "replicate", "seed", "chunks_trained", *HPARAM_NAMES, *EVAL_COLUMNS):
        assert column in members.columns, column
    assert members.column("discount") == [0.9, 0.97]
    assert members.column("learning_rate") == [3e-4, 3e-4]  # the default, filled in
    assert members.column("seed") == [3, 3] and members.column("chunks_trained") == [3, 3]
    for row in members:
        last = result.history.where(chunk=2, member=row["member"])[0]
        assert row["eval_mean"] == last["eval_mean"] and row["loss"] == last["loss"]
    assert not np.array_equal(
        result.params["params"]["Dense_0"]["kernel"][0],
        result.params["params"]["Dense_0"]["kernel"][1],
    )


def test_out_dir_writes_members_csv(trained, tmp_path):
    result, _ = trained
    again = train(CONFIG, out_dir=tmp_path / "run")
    on_disk = load_records(tmp_path / "run" / "members.csv")
    assert list(on_disk) == list(again.members)
    assert again.members.column("eval_mean") == result.members.column("eval_mean")


def test_members_evaluate_on_held_out_episodes(trained):
    result, _ = trained
    rows = evaluate_members(result, rates=[50.0, 300.0], num_requests=150, seeds=1)
    assert len(rows) == 2 * 2
    assert rows.column("policy") == ["member:0", "member:0", "member:1", "member:1"]
    assert rows.column("discount") == [0.9, 0.9, 0.97, 0.97]
    for row in rows:
        routed = sum(v for k, v in row.items() if k.startswith("routing_fraction_"))
        assert routed == pytest.approx(1.0) and 0 < row["normalized_performance"] <= 1
