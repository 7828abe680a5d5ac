"""The serving simulator as a gymnax environment, episodes drawn from a pool in the params.

`ServingGymEnv` wraps `ServingEnv` (docs/simulator.md): one step = one routing decision,
reward = utility resolved during the step, `terminated` after the last arrival's decision
(whose step drains the system). Workloads are drawn up front: `EnvParams.episodes` holds
`num_episodes` pre-drawn arrival sequences and the state holds only the index of its
episode, so gymnax's auto-reset (a select between the stepped and a fresh state at every
step) selects a few scalars and the small queue arrays, never an arrival sequence, and
never draws a workload. `redraw_episodes` replaces the pool (same shapes, jittable).
Why this design and what it costs: docs/environment.md.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxserve.gym import spaces
from jaxserve.gym.environment import Environment
from jaxserve.sim.base import active_capacity, serving_scale
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.types import Arrivals, SimParams
from jaxserve.sim.types import EnvState as SimState
from jaxserve.sim.workloads import WorkloadParams


@struct.dataclass
class EnvParams:
    """Simulator params plus the pool of episodes; all leaves, so they can be vmapped."""

    sim: SimParams
    episodes: Arrivals  # leaves (num_episodes, num_arrivals)
    max_steps_in_episode: jax.Array  # () int32; truncation limit, num_arrivals by default


@struct.dataclass
class EnvState:
    """The simulator's state without its arrivals, and which pooled episode it runs."""

    sim: SimState  # sim.arrivals is None; the arrivals are params.episodes[episode]
    episode: jax.Array  # () int32 index into params.episodes

    @property
    def time(self) -> jax.Array:
        """Decisions taken in this episode."""
        return self.sim.step


def episode_arrivals(episodes: Arrivals, index: jax.Array) -> Arrivals:
    """Row `index` of the pool."""
    return jax.tree.map(lambda leaf: leaf[index], episodes)


class ServingGymEnv(Environment):
    """LLM serving as a gymnax environment: route each arriving request to a model."""

    def __init__(
        self,
        sim: ServingEnv,
        default_params: EnvParams,
        generate: Callable[[jax.Array, WorkloadParams], Arrivals],
        workload_params: WorkloadParams,
        name: str = "jaxserve",
        space_classes: ModuleType = spaces,
    ):
        self.sim = sim
        self._spaces = space_classes
        self._default_params = default_params
        self._generate = generate
        self._workload_params = workload_params
        self._name = name

    @property
    def default_params(self) -> EnvParams:
        return self._default_params

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return self.sim.num_actions

    @property
    def num_episodes(self) -> int:
        """Size of the default params' episode pool."""
        return self._default_params.episodes.gap_s.shape[0]

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """One action per model (small to large), plus "reject" if the scenario allows it."""
        return self._spaces.Discrete(self.num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        """Bounds of each observation entry (layout in docs/simulator.md)."""
        low, high = observation_bounds(self.sim, None if params is None else params.sim)
        return self._spaces.Box(low, high, (self.sim.obs_size,), jnp.float32)

    def redraw_episodes(self, key: jax.Array, params: EnvParams) -> EnvParams:
        """`params` with a freshly drawn pool of the same size (e.g. between training chunks)."""
        num_episodes = params.episodes.gap_s.shape[0]
        episodes = draw_episodes(self._generate, self._workload_params, key, num_episodes)
        return params.replace(episodes=episodes)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """An empty system at the first arrival of a pooled episode chosen by `key`."""
        num_episodes = params.episodes.gap_s.shape[0]
        episode = jax.random.randint(key, (), 0, num_episodes, dtype=jnp.int32)
        arrivals = episode_arrivals(params.episodes, episode)
        obs, sim_state = self.sim.reset(None, params.sim, arrivals)
        return obs, EnvState(sim=sim_state.replace(arrivals=None), episode=episode)

    def step_env(self, key: jax.Array, state: EnvState, action: jax.Array, params: EnvParams):
        """Route the current request, advance to the next arrival (or drain at the end)."""
        arrivals = episode_arrivals(params.episodes, state.episode)
        obs, sim_state, reward, done, _ = self.sim.step(
            key, state.sim.replace(arrivals=arrivals), jnp.asarray(action, jnp.int32), params.sim
        )
        state = state.replace(sim=sim_state.replace(arrivals=None))
        # Running totals of this transition's episode: its whole record when it ends.
        return obs, state, reward, done, {"counters": sim_state.counters}

    def __repr__(self) -> str:
        return f"ServingGymEnv({self._name!r}, num_episodes={self.num_episodes})"


def draw_episodes(
    generate: Callable[[jax.Array, WorkloadParams], Arrivals],
    workload_params: WorkloadParams,
    key: jax.Array,
    num_episodes: int,
) -> Arrivals:
    """A pool of `num_episodes` arrival sequences; leaves (num_episodes, num_arrivals)."""
    keys = jax.random.split(key, num_episodes)
    return jax.vmap(generate, in_axes=(0, None))(keys, workload_params)


def observation_bounds(
    sim: ServingEnv, sim_params: SimParams | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every observation entry, float32 (inf where unbounded).

    With `sim_params`, at its active replicas and queue capacities (else the config's).
    """
    cfg = sim.config
    scale = np.asarray(serving_scale(cfg, sim_params), np.float32)
    capacity = np.asarray(active_capacity(cfg, sim_params), np.float32)
    queued = capacity / scale  # a full queue
    one_hot = np.ones(cfg.num_tasks, np.float32)
    unbounded = np.full(cfg.num_models, np.inf, np.float32)  # wait / deadline
    if cfg.obs_mode == "paper":
        in_system = (capacity + scale) / scale
        parts = [one_hot, in_system]
    else:
        parts = [one_hot, queued, np.ones(cfg.num_models, np.float32), unbounded]
    extra = 1 + int(cfg.observe_deadline) + int(cfg.observe_knob)  # rate, factor, knob
    parts.append(np.full(extra, np.inf, np.float32))
    high = np.concatenate(parts)
    return np.zeros_like(high), high


__all__ = [
    "EnvParams",
    "EnvState",
    "ServingGymEnv",
    "draw_episodes",
    "episode_arrivals",
    "observation_bounds",
]
