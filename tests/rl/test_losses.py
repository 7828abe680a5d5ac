"""Double-DQN target and Huber loss against hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.rl.losses import double_q_learning, huber_loss


def test_double_q_target_by_hand():
    # Online net at s_t prefers action 2 (q_t_selector), target net values it at 0.5 even
    # though the target's own max is 4.0 (action 0): Double DQN must use 0.5.
    q_tm1 = jnp.array([1.0, 2.0, 3.0])
    q_t_selector = jnp.array([0.1, 0.2, 0.9])
    q_t_value = jnp.array([4.0, 1.0, 0.5])
    td = double_q_learning(
        q_tm1, jnp.int32(1), jnp.float32(0.7), jnp.float32(0.9), q_t_value, q_t_selector
    )
    # target = 0.7 + 0.9 * 0.5 = 1.15; td = 1.15 - q_tm1[1] = 1.15 - 2.0 = -0.85
    np.testing.assert_allclose(td, -0.85, rtol=1e-6)


def test_terminal_transition_ignores_next_values():
    td = double_q_learning(
        jnp.array([0.2, 0.3]),
        jnp.int32(0),
        jnp.float32(1.0),
        jnp.float32(0.0),
        jnp.array([9.0, 9.0]),
        jnp.array([0.0, 1.0]),
    )
    np.testing.assert_allclose(td, 0.8, rtol=1e-6)


def test_gradient_flows_only_through_q_tm1():
    def loss(q_t_value):
        return double_q_learning(
            jnp.array([1.0, 0.0]),
            jnp.int32(0),
            jnp.float32(0.0),
            jnp.float32(0.9),
            q_t_value,
            jnp.array([1.0, 0.0]),
        )

    np.testing.assert_array_equal(jax.grad(loss)(jnp.array([2.0, 3.0])), [0.0, 0.0])


def test_rank_asserts():
    with pytest.raises(AssertionError):
        double_q_learning(
            jnp.zeros((2, 3)),
            jnp.int32(0),
            jnp.float32(0),
            jnp.float32(0),
            jnp.zeros(3),
            jnp.zeros(3),
        )


def test_huber():
    x = jnp.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(huber_loss(x, 1.0), [2.5, 0.125, 0.0, 0.125, 2.5])


def test_vanilla_dqn_target_uses_the_target_nets_own_max():
    """double=False: the target net both selects and evaluates (the ablation)."""
    import jax.numpy as jnp

    from jaxserve.rl import buffer as replay
    from jaxserve.rl.config import default_hparams
    from jaxserve.rl.dqn import dqn_loss
    from jaxserve.rl.networks import init_params, make_q_network

    net = make_q_network(2, (4,))
    online = init_params(net, jax.random.key(0), 3)
    target = init_params(net, jax.random.key(1), 3)
    batch = replay.Transitions(
        obs=jnp.ones((2, 3)),
        action=jnp.array([0, 1]),
        reward=jnp.array([1.0, 0.5]),
        continuation=jnp.ones(2),
        next_obs=jnp.full((2, 3), 0.5),
        valid=jnp.ones(2, bool),
    )
    hp = default_hparams().replace(huber_delta=jnp.float32(1e6))  # quadratic: 0.5 td^2
    q_t = net.apply(target, batch.next_obs)
    q_tm1 = net.apply(online, batch.obs)[jnp.arange(2), batch.action]
    td = batch.reward + hp.discount * q_t.max(axis=1) - q_tm1
    loss, _ = dqn_loss(online, target, net, batch, hp, double=False)
    assert jnp.allclose(loss, jnp.mean(0.5 * td**2), rtol=1e-5)
