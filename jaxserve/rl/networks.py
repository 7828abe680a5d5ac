"""The router's Q-network: a small MLP from observation to one Q-value per action."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class QNetwork(nn.Module):
    """MLP with ReLU hidden layers; (..., obs_size) -> (..., num_actions)."""

    num_actions: int
    hidden: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs.astype(jnp.float32)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_actions)(x)


def make_q_network(num_actions: int, hidden: Sequence[int]) -> QNetwork:
    """The Q-network for `num_actions` actions with the given hidden widths."""
    return QNetwork(num_actions=num_actions, hidden=tuple(hidden))


def restrict_params(params, inputs, outputs):
    """Parameters of the same MLP reading only observation entries `inputs` and giving only
    the Q-values of `outputs` (index arrays): a router cut down to a placement's models.

    Exact where the dropped inputs are 0 (a model without replicas, docs/planner.md).
    """
    layers = params["params"]
    names = sorted(layers, key=lambda n: int(n.split("_")[-1]))  # Dense_0, Dense_1, ...
    cut = {name: dict(layers[name]) for name in names}
    cut[names[0]]["kernel"] = jnp.asarray(layers[names[0]]["kernel"])[jnp.asarray(inputs)]
    last = cut[names[-1]]
    last["kernel"] = jnp.asarray(last["kernel"])[:, jnp.asarray(outputs)]
    last["bias"] = jnp.asarray(layers[names[-1]]["bias"])[jnp.asarray(outputs)]
    return {"params": cut}


def init_params(network: QNetwork, key: jax.Array, obs_size: int):
    """Freshly initialised parameters for observations of size `obs_size`."""
    return network.init(key, jnp.zeros((obs_size,), jnp.float32))
