"""The whole learner (collection, credit, replay, Double-DQN updates) on probe environments
with known Q-values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.rl import probes
from jaxserve.rl.config import DQNConfig, hparams_with
from jaxserve.rl.dqn import make_learner


def _train(probe, discount: float, episodes: int = 300, credit="decision", seed=0):
    config = DQNConfig(
        hidden=(16,),
        num_envs=8,
        episode_length=probe.episode_length,
        total_env_steps=8 * probe.episode_length * episodes,
        episodes_per_chunk=episodes,
        buffer_size=512,
        batch_size=32,
        learning_starts=32,
        credit_window=4,
        credit=credit,
    )
    hp = hparams_with({"discount": discount, "learning_rate": 3e-3, "target_period": 10})
    learner = make_learner(probe, config)
    state, metrics = jax.jit(learner.train)(jax.random.key(seed), hp)
    return lambda obs: np.asarray(learner.network.apply(state.params, jnp.asarray(obs))), metrics


def test_constant_reward():
    q, metrics = _train(probes.ConstantReward(), discount=0.9)
    np.testing.assert_allclose(q([[1.0, 1.0]]), [[1.0, 1.0]], atol=0.05)
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))


def test_action_dependent_reward():
    q, _ = _train(probes.ActionReward(), discount=0.0)
    np.testing.assert_allclose(q([[1.0, 1.0], [-1.0, 1.0]]), [[1.0, 0.0], [0.0, 1.0]], atol=0.05)


@pytest.mark.parametrize("discount", [0.5, 0.9])
def test_two_step_chain_with_discount(discount):
    q, _ = _train(probes.TwoStepChain(), discount=discount)
    np.testing.assert_allclose(q([[1.0, 0.0]]), [[discount, discount]], atol=0.05)
    np.testing.assert_allclose(q([[0.0, 1.0]]), [[1.0, 1.0]], atol=0.05)


def test_delayed_utilities_reach_their_decisions():
    q, _ = _train(probes.DelayedActionReward(), discount=0.0, episodes=150)
    np.testing.assert_allclose(q([[1.0, 1.0], [-1.0, 1.0]]), [[1.0, 0.0], [0.0, 1.0]], atol=0.05)


def test_completion_credit_blurs_delayed_utilities():
    # The same probe credited at completion time gives each decision another decision's
    # utility (except at the episode's end, where everything resolves at once): the action
    # gap stays far below the 1.0 that decision credit recovers.
    q, _ = _train(probes.DelayedActionReward(), discount=0.0, episodes=150, credit="completion")
    values = q([[1.0, 1.0], [-1.0, 1.0]])
    assert np.all(np.abs(values[:, 0] - values[:, 1]) < 0.5)
