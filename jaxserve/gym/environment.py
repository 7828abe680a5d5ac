"""gymnax's `Environment` interface, implemented here so gymnax is only a test dependency.

A subclass writes `reset_env` and `step_env` for one episode; `step` adds gymnax's
auto-reset. The return convention is gymnax >= 1.0's:

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

`LegacyStep(env)` (or `jaxserve.make(..., step_api="legacy")`) gives the classic five values
`(obs, state, reward, done, info)` of gymnax < 1.0, the form PureJaxRL's scripts unpack.
Either way `info` holds `terminated`, `truncated` and `final_observation` (the observation
that ended the episode, before the auto-reset replaced it). See docs/environment.md.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp


class Environment:
    """Pure `reset`/`step` with auto-reset; `params=None` means `default_params`."""

    @property
    def default_params(self) -> Any:
        raise NotImplementedError

    @functools.partial(jax.jit, static_argnames="self")
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        """A new episode: (obs, state)."""
        return self.reset_env(key, self.default_params if params is None else params)

    @functools.partial(jax.jit, static_argnames="self")
    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        """One transition; a state that ends its episode is replaced by a fresh reset.

        Returns (obs, state, reward, terminated, truncated, info): `reward`, `terminated`
        and `truncated` belong to the transition taken, `obs` and `state` to the episode
        that continues (the new one after an end), as in gymnax.
        """
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs_step, state_step, reward, terminated, info = self.step_env(
            key_step, state, action, params
        )
        truncated = jnp.logical_and(~terminated, self.is_truncated(state_step, params))
        done = jnp.logical_or(terminated, truncated)
        obs_reset, state_reset = self.reset_env(key_reset, params)
        select = lambda new, old: jax.lax.select(done, new, old)
        state = jax.tree.map(select, state_reset, state_step)
        obs = select(obs_reset, obs_step)
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_step,
        }
        return obs, state, reward, terminated, truncated, info

    def reset_env(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        """Start one episode: (obs, state)."""
        raise NotImplementedError

    def step_env(self, key: jax.Array, state: Any, action: jax.Array, params: Any):
        """One transition without auto-reset: (obs, state, reward, terminated, info)."""
        raise NotImplementedError

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        """Whether the episode hit its step limit (`params.max_steps_in_episode`)."""
        return state.time >= params.max_steps_in_episode

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def num_actions(self) -> int:
        raise NotImplementedError

    def action_space(self, params: Any = None):
        raise NotImplementedError

    def observation_space(self, params: Any = None):
        raise NotImplementedError


class LegacyStep:
    """An environment whose `step` returns gymnax < 1.0's five values.

    `(obs, state, reward, done, info)` with `done = terminated or truncated`; everything
    else (reset, spaces, params, name) is the wrapped environment's.
    """

    def __init__(self, env: Environment):
        self._env = env

    def __getattr__(self, name: str):
        return getattr(self._env, name)

    @functools.partial(jax.jit, static_argnames="self")
    def reset(self, key: jax.Array, params: Any = None):
        """A new episode: (obs, state)."""
        return self._env.reset(key, params)

    @functools.partial(jax.jit, static_argnames="self")
    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        """(obs, state, reward, done, info); `info` keeps terminated and truncated."""
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


__all__ = ["Environment", "LegacyStep"]
