"""Training support for dynamic deadlines: per-block deadline factors, observed by the router."""

import jax
import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.rl.config import DQNConfig
from jaxserve.rl.envs import ServingAdapter
from jaxserve.sim.scenarios import get_scenario


def test_adapter_draws_factors_per_block_and_observes_them():
    scenario = get_scenario("opt-a100x4")
    config = DQNConfig(
        num_envs=2, episode_length=40, deadline_factors=(0.5, 1.5), deadline_block=10
    )
    adapter = ServingAdapter(scenario, config)
    assert adapter.obs_size == scenario.sim_config().obs_size + 1
    obs, state = jax.jit(adapter.reset)(jax.random.key(3))
    scale = np.asarray(state.sim.arrivals.deadline_scale)
    assert scale.shape == (40,) and set(np.unique(scale)) <= {0.5, 1.5}
    assert all(len(set(scale[b : b + 10])) == 1 for b in range(0, 40, 10))
    assert float(obs[-1]) == scale[0]  # the factor is the observation's last entry
    next_obs, *_ = jax.jit(adapter.step)(jax.random.key(4), state, np.int32(2))
    assert float(next_obs[-1]) == scale[1]


def test_fixed_deadline_adapter_is_unchanged():
    scenario = get_scenario("opt-a100x4")
    adapter = ServingAdapter(scenario, DQNConfig(num_envs=2, episode_length=8))
    assert adapter.obs_size == scenario.sim_config().obs_size
    assert not adapter.observe_deadline


def test_bad_deadline_factors_are_input_errors():
    with pytest.raises(InputError, match="deadline_factors"):
        DQNConfig(deadline_factors=(1.0, -2.0))
