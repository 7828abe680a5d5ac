"""Per-example TD losses (rlax-style: rank-asserted single examples, vmapped by the caller)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def double_q_learning(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t_value: jax.Array,
    q_t_selector: jax.Array,
) -> jax.Array:
    """Double-Q TD error for one transition.

    Args:
      q_tm1: (A,) online Q-values at the decision's observation.
      a_tm1: () action taken.
      r_t: () reward credited to the decision.
      discount_t: () discount to the next decision (0 at an episode's end).
      q_t_value: (A,) target-network Q-values at the next observation (evaluates).
      q_t_selector: (A,) online-network Q-values at the next observation (selects).
    Returns:
      () target - q_tm1[a_tm1], the target held constant (stop_gradient).
    """
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector], [1, 0, 0, 0, 1, 1])
    best_t = jnp.argmax(q_t_selector)
    target = jax.lax.stop_gradient(r_t + discount_t * q_t_value[best_t])
    return target - q_tm1[a_tm1]


def huber_loss(x: jax.Array, delta: jax.Array | float = 1.0) -> jax.Array:
    """Quadratic within |x| <= delta, linear beyond (elementwise)."""
    abs_x = jnp.abs(x)
    quadratic = jnp.minimum(abs_x, delta)
    return 0.5 * quadratic**2 + delta * (abs_x - quadratic)
