"""Training runs on the simulator: resume bit for bit, checkpoints, bad input (spec §8)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

from jaxserve import checkpoint
from jaxserve.cli import main
from jaxserve.errors import InputError
from jaxserve.evaluation.simulate import simulate
from jaxserve.rl.config import DQNConfig, hparams_with
from jaxserve.rl.policy import load_learned_policy, load_router_params
from jaxserve.rl.trainer import final_state, run_training
from jaxserve.sim.scenarios import get_scenario, zoo_scenario
from jaxserve.sim.workloads import WorkloadSpec

TINY = DQNConfig(
    hidden=(32,),
    num_envs=4,
    episode_length=64,
    total_env_steps=4 * 64 * 3,
    buffer_size=2048,
    batch_size=32,
    learning_starts=64,
    credit_window=32,
    eval_length=64,
    eval_episodes=1,
    eval_rate_factors=(0.5, 2.0),
)


@pytest.fixture(scope="module")
def scenario():
    return get_scenario("opt-a100x4")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, scenario):
    out = tmp_path_factory.mktemp("run") / "a"
    summary = run_training(scenario, TINY, out, progress=False)
    return out, summary


def _host(tree):
    return [
        np.asarray(jax.random.key_data(x))
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
        else np.asarray(x)
        for x in jax.tree.leaves(tree)
    ]


def test_interrupted_and_resumed_equals_uninterrupted(uninterrupted, tmp_path, scenario):
    out_a, summary = uninterrupted
    assert summary["chunks_done"] == 3
    out_b = tmp_path / "b"
    first = run_training(scenario, TINY, out_b, progress=False, stop_after_chunks=1)
    assert first["chunks_done"] == 1
    run_training(scenario, TINY, out_b, progress=False)  # resumes from chunk 1
    a, b = _host(final_state(out_a, scenario, TINY)), _host(final_state(out_b, scenario, TINY))
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    lines_a = (out_a / "metrics.jsonl").read_text().splitlines()
    lines_b = (out_b / "metrics.jsonl").read_text().splitlines()
    strip = lambda line: {k: v for k, v in json.loads(line).items() if k != "wall_s"}
    assert [strip(x) for x in lines_a] == [strip(x) for x in lines_b]


def test_two_seeds_give_different_routers(uninterrupted, tmp_path, scenario):
    out_a, _ = uninterrupted
    out_c = tmp_path / "c"
    run_training(scenario, TINY, out_c, seed=1, progress=False)
    pa, _ = load_router_params(out_a, scenario)
    pc, _ = load_router_params(out_c, scenario)
    assert not np.array_equal(_host(pa)[1], _host(pc)[1])


def test_checkpoint_is_self_describing_and_usable(uninterrupted, scenario):
    out, _ = uninterrupted
    meta = checkpoint.read_metadata(out)
    assert meta["obs_size"] == 14 and meta["num_actions"] == 3
    assert meta["network"]["hidden"] == [32] and meta["scenario"] == "opt-a100x4"
    assert "lambada_openai" in meta["scenario_toml"]
    chex.assert_tree_all_finite(final_state(out, scenario, TINY).replace(key=None))
    policy = load_learned_policy(out, scenario)
    result = simulate(scenario, policy, WorkloadSpec(rate=100.0), 300)
    assert 0.0 < result["normalized_performance"] <= 1.0


def test_simulate_cli_accepts_checkpoint(uninterrupted, capsys):
    out, _ = uninterrupted
    assert main(["simulate", "--policy", str(out), "--num-requests", "200", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_arrived"] == 200


def test_other_observation_size_is_input_error(uninterrupted, capsys):
    out, _ = uninterrupted
    five = zoo_scenario(("opt-125m", "opt-350m", "opt-1.3b", "opt-2.7b", "opt-6.7b"))
    with pytest.raises(InputError, match="obs_size = 14: expected 20"):
        load_learned_policy(out, five)


def test_corrupted_checkpoint_is_input_error(uninterrupted, tmp_path, scenario, capsys):
    out, _ = uninterrupted
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    files = [
        p
        for p in (bad / checkpoint.read_metadata(bad)["path"] / "policy").rglob("*")
        if p.is_file() and p.stat().st_size > 1000
    ]
    victim = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    victim.write_bytes(bytes(data))
    with pytest.raises(InputError, match="checkpoint"):
        load_learned_policy(bad, scenario)
    victim.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    with pytest.raises(InputError, match="checkpoint"):
        load_learned_policy(bad, scenario)
    (bad / checkpoint.META_FILE).write_text("{not json")
    assert main(["simulate", "--policy", str(bad), "--num-requests", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "corrupted" in err


def test_unknown_hyperparameter_is_input_error(tmp_path, capsys):
    with pytest.raises(InputError, match="hyperparameter 'gamma': unknown"):
        hparams_with({"gamma": 0.9})
    code = main(["train", "--out", str(tmp_path / "x"), "--hparams", "gamma=0.9", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "gamma" in err


def test_resume_with_other_arguments_is_input_error(uninterrupted, scenario):
    out, _ = uninterrupted
    with pytest.raises(InputError, match="different"):
        run_training(scenario, TINY, out, seed=5, progress=False)


def test_not_a_checkpoint(tmp_path, scenario):
    with pytest.raises(InputError, match="no checkpoint.json"):
        load_learned_policy(tmp_path, scenario)
    assert Path(tmp_path).is_dir()


def test_truncated_checkpoint_in_a_fresh_process_is_exactly_one_line(uninterrupted, tmp_path):
    """Orbax/asyncio teardown noise ("Event loop is closed") must never follow the error line:
    only a separate process shows what reaches stderr at interpreter exit."""
    out, _ = uninterrupted
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    for path in (bad / checkpoint.read_metadata(bad)["path"]).rglob("*"):
        if path.is_file() and path.stat().st_size > 100:
            path.write_bytes(path.read_bytes()[:7])
    cmd = [sys.executable, "-m", "jaxserve.cli", "simulate", "--policy", str(bad)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "checkpoint" in proc.stderr, proc.stderr
