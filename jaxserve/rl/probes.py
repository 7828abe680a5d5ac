"""Probe environments with known Q-values (learner tests; bsuite/"debugging RL" style).

Each is a tiny adapter with the interface of envs.ServingAdapter. Observations are small
float vectors; every episode has a fixed length. Credits resolve decisions either at once
(`delay = 0`) or `delay` steps later, exercising the decision-credit pending table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ProbeState:
    step: jax.Array  # () decision index in the episode
    obs: jax.Array  # (O,) current observation
    owed: jax.Array  # (delay + 1,) utility of the last decisions, resolved `delay` steps later


class _Probe:
    """Common machinery: subclasses define `first_obs`, `next_obs` and `utility`."""

    obs_size = 2
    num_actions = 2
    episode_length = 1
    delay = 0

    def reset(self, key):
        obs = self.first_obs(key)
        return obs, ProbeState(step=jnp.int32(0), obs=obs, owed=jnp.zeros(self.delay + 1))

    def step(self, key, state: ProbeState, action):
        utility = self.utility(state.obs, action, state.step)
        done = state.step == self.episode_length - 1
        owed = jnp.roll(state.owed, 1).at[0].set(utility)  # owed[j] = decision step - j
        # Resolve the decision `delay` steps back, or everything at the episode's end.
        ages = jnp.arange(self.delay + 1)
        decision = state.step - ages
        mask = (decision >= 0) & ((ages == self.delay) | done)
        next_obs = self.next_obs(key, state.obs, action, state.step)
        reward = jnp.sum(jnp.where(mask, owed, 0.0))
        state = ProbeState(step=state.step + 1, obs=next_obs, owed=owed)
        return next_obs, state, reward, done, (mask, decision.astype(jnp.int32), owed)

    def next_obs(self, key, obs, action, step):
        return obs

    def episode_metrics(self, state):
        return {}

    def evaluate(self, key, q_fn):
        return {}


class ConstantReward(_Probe):
    """One step, reward 1 whatever the action: Q = 1 everywhere."""

    def first_obs(self, key):
        return jnp.ones(2)

    def utility(self, obs, action, step):
        return jnp.float32(1.0)


class ActionReward(_Probe):
    """One step, random observation ±1: reward 1 iff the action matches the observation's sign.

    Q(obs=+1, a=0) = 1, Q(obs=+1, a=1) = 0, and the reverse for obs = -1.
    """

    def first_obs(self, key):
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        return jnp.stack([sign, 1.0])

    def utility(self, obs, action, step):
        return jnp.where((obs[0] > 0) == (action == 0), 1.0, 0.0)


class TwoStepChain(_Probe):
    """Two steps: obs (1, 0) then (0, 1); reward 0 then 1. Q(s0) = discount, Q(s1) = 1."""

    episode_length = 2

    def first_obs(self, key):
        return jnp.array([1.0, 0.0])

    def next_obs(self, key, obs, action, step):
        return jnp.array([0.0, 1.0])

    def utility(self, obs, action, step):
        return jnp.where(step == 1, 1.0, 0.0)


class DelayedActionReward(ActionReward):
    """ActionReward over episodes of 8 steps, each utility resolved 3 decisions later.

    With discount 0 the Q-values equal ActionReward's only if credit reaches the right
    decision (completion-time credit would mix in other decisions' utilities).
    """

    episode_length = 8
    delay = 3

    def next_obs(self, key, obs, action, step):
        return self.first_obs(key)
