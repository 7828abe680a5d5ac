"""Training over random task mixes (DQNConfig.train_mix, docs/training.md)."""

import jax
import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.rl.config import DQNConfig, config_from_json, config_to_json
from jaxserve.rl.envs import ServingAdapter
from jaxserve.sim.scenarios import get_scenario


def test_default_json_is_unchanged_and_round_trips():
    assert "train_mix" not in config_to_json(DQNConfig())  # earlier runs' metadata still match
    config = DQNConfig(train_mix="dirichlet")
    assert config_from_json(config_to_json(config)) == config
    with pytest.raises(InputError, match="train_mix = 'uniform'"):
        DQNConfig(train_mix="uniform")


def _task_shares(train_mix: str, episodes: int = 8) -> np.ndarray:
    config = DQNConfig(episode_length=2000, train_mix=train_mix)
    adapter = ServingAdapter(get_scenario("opt-a100x4"), config)
    keys = jax.random.split(jax.random.key(0), episodes)
    reset = jax.jit(jax.vmap(adapter.reset))  # one compilation for every episode
    tasks = np.asarray(reset(keys)[1].sim.arrivals.task)  # reset returns (obs, state)
    return np.stack([np.bincount(t, minlength=4) / len(t) for t in tasks])  # (episodes, T)


def test_dirichlet_draws_a_new_mix_per_episode():
    # Fixed: every episode near the uniform 1/4 (sd ~ 0.01 over 2000 arrivals). Dirichlet(1):
    # a task's share is Beta(1, 3) per episode, sd ~ 0.19.
    assert _task_shares("fixed").std(axis=0).max() < 0.03
    assert _task_shares("dirichlet").std(axis=0).min() > 0.05
