"""What the learner trains on: an adapter with reset/step over one environment.

The learner needs, per environment: `reset(key) -> (obs, env_state)` (a new episode),
`step(key, env_state, action) -> (next_obs, env_state, reward, done, credits)` where
`credits = (mask, decision, utility)`, each (M,), lists the requests resolved during the
step (docs/spec.md §3.7), `episode_metrics(env_state) -> dict` and `evaluate(key, q_fn) -> dict`.
`ServingAdapter` wraps the simulator and the training workload; its env state is an
`AdapterState`: the simulator's state and the episode's own `SimParams` (a knob router's
episodes each have their own miss penalty, docs/knob.md). `reset` and `evaluate` also take
the params to start from (default: the scenario's), so members of one population can train
on different placements of a zoo (active replicas in `SimParams`, docs/planner.md). Probes
live in probes.py.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxserve.rl.config import DQNConfig
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.metrics import counter_metrics
from jaxserve.sim.rollout import counter_rollout
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.types import SimParams
from jaxserve.sim.workloads import WorkloadSpec, make_workload

# Unpredictable training workload: mean segment length, as a number of mean gaps at the
# lowest rate, so that rate changes happen within an episode at every rate.
UNPREDICTABLE_SEGMENT_ARRIVALS = 200


@struct.dataclass
class AdapterState:
    """One training environment: the simulator's state and the episode's scenario params."""

    sim: object  # the simulator's EnvState
    params: SimParams


def reference_capacity(scenario: Scenario) -> float:
    """On-time capacity (req/s) of the best-quality model: the scale of training rates."""
    best = int(np.argmax(np.asarray(scenario.quality).mean(axis=0)))
    return float(scenario.capacity_per_model()[best])


def poisson_rates(scenario: Scenario, num: int = 10) -> np.ndarray:
    """Light load (1/30) to 3x the best model's on-time capacity, geometric: eval rates."""
    scale = reference_capacity(scenario)
    return np.geomspace(scale / 30.0, 3.0 * scale, num)


class ServingAdapter:
    """The serving simulator with the training workload of a `DQNConfig`."""

    def __init__(self, scenario: Scenario, config: DQNConfig):
        self.scenario, self.config = scenario, config
        emit = config.credit == "decision"
        self.observe_deadline = bool(config.deadline_factors)
        self.knob_range = tuple(config.knob_range)
        sim_config = dataclasses.replace(
            scenario.sim_config(observe_deadline=self.observe_deadline),
            observe_knob=bool(self.knob_range),
        )
        self.env = ServingEnv(dataclasses.replace(sim_config, emit_records=emit))
        self.eval_env = make_env(dataclasses.replace(sim_config, emit_records=False))
        self.params = scenario.sim_params()
        if self.knob_range:  # periodic evaluation at the scenario's penalty, kept in range
            low, high = self.knob_range
            penalty = float(np.clip(scenario.miss_penalty, low, high))
            self.params = self.params.replace(miss_penalty=jnp.float32(penalty))
        self.obs_size, self.num_actions = self.env.obs_size, self.env.num_actions
        self.num_tasks = scenario.num_tasks
        scale = reference_capacity(scenario)
        self.min_rate = scale * config.min_rate_factor
        self.max_rate = scale * config.max_rate_factor
        self.eval_rates = np.asarray(config.eval_rate_factors, np.float32) * scale
        if config.train_workload == "loguniform":
            spec = WorkloadSpec(kind="poisson", rate=self.min_rate)
        else:
            spec = WorkloadSpec(
                kind="unpredictable",
                min_rate=self.min_rate,
                max_rate=self.max_rate,
                mean_segment_s=UNPREDICTABLE_SEGMENT_ARRIVALS / self.min_rate,
            )
        self.wparams, self.generate = make_workload(spec, scenario.num_tasks, config.episode_length)
        self.eval_wparams, self.eval_generate = make_workload(
            WorkloadSpec(kind="poisson"), scenario.num_tasks, config.eval_length
        )

    def reset(self, key: jax.Array, params: SimParams | None = None):
        """A new training episode: (per-episode rate,) arrivals, empty system.

        `params`: the scenario params to run it with (default: the adapter's).
        """
        key_rate, key_arrivals, key_deadline, key_reset = jax.random.split(key, 4)
        wparams = self.wparams
        if self.config.train_workload == "loguniform":
            log_rate = jax.random.uniform(
                key_rate, minval=np.log(self.min_rate), maxval=np.log(self.max_rate)
            )
            wparams = wparams.replace(rate=jnp.exp(log_rate))
        if self.config.train_mix == "dirichlet":
            mix = jax.random.dirichlet(jax.random.fold_in(key_rate, 1), jnp.ones(self.num_tasks))
            wparams = wparams.replace(mix_probs=jnp.broadcast_to(mix, wparams.mix_probs.shape))
        arrivals = self.generate(key_arrivals, wparams)
        if self.observe_deadline:
            arrivals = arrivals.replace(deadline_scale=self._deadline_scale(key_deadline))
        base = self.params if params is None else params
        params = self._episode_params(jax.random.fold_in(key_rate, 2), base)
        obs, state = self.env.reset(key_reset, params, arrivals)
        return obs, AdapterState(sim=state, params=params)

    def _episode_params(self, key: jax.Array, params: SimParams) -> SimParams:
        """`params`; a knob router's episode draws its own miss penalty."""
        if not self.knob_range:
            return params
        low, high = np.log1p(np.asarray(self.knob_range, np.float32))
        penalty = jnp.expm1(jax.random.uniform(key, minval=low, maxval=high))
        return params.replace(miss_penalty=penalty.astype(jnp.float32))

    def _deadline_scale(self, key: jax.Array) -> jax.Array:
        """(episode_length,) factors: one uniform draw from deadline_factors per block."""
        length, block = self.config.episode_length, self.config.deadline_block
        factors = jnp.asarray(self.config.deadline_factors, jnp.float32)
        num_blocks = -(-length // block)
        drawn = jax.random.choice(key, factors, (num_blocks,))
        return drawn[jnp.arange(length) // block]

    def step(self, key: jax.Array, env_state: AdapterState, action: jax.Array):
        params = env_state.params
        obs, sim, reward, done, info = self.env.step(key, env_state.sim, action, params)
        if self.config.credit == "decision":
            r = info["records"]
            credits = (r.mask, r.decision, r.utility)
        else:
            credits = (jnp.zeros(1, bool), jnp.zeros(1, jnp.int32), jnp.zeros(1, jnp.float32))
        return obs, AdapterState(sim=sim, params=params), reward, done, credits

    def episode_metrics(self, env_state: AdapterState) -> dict:
        m = self._metrics(env_state.sim.counters, env_state.params)
        return {
            "train_normalized_performance": m["normalized_performance"],
            "train_availability": m["availability"],
        }

    def _metrics(self, counters, params: SimParams) -> dict:
        """counter_metrics with the episode's miss penalty added back (quality delivered)."""
        hard = self.env.config.deadline_kind == "hard"
        return counter_metrics(counters, params.miss_penalty, hard)

    def evaluate(self, key: jax.Array, q_fn, params: SimParams | None = None) -> dict:
        """Greedy (argmax Q) policy on Poisson at each eval rate: normalised performance.

        `params`: the scenario params to evaluate on (default: the adapter's).
        """
        params = self.params if params is None else params
        policy = lambda key, obs, state, params: jnp.argmax(q_fn(obs)).astype(jnp.int32)
        num_rates, num_episodes = len(self.eval_rates), self.config.eval_episodes
        rates = jnp.repeat(jnp.asarray(self.eval_rates), num_episodes)
        keys = jax.random.split(key, num_rates * num_episodes)

        def one(key, rate):
            key_workload, key_run = jax.random.split(key)
            arrivals = self.eval_generate(key_workload, self.eval_wparams.replace(rate=rate))
            counters = counter_rollout(self.eval_env, policy, key_run, params, arrivals)
            return self._metrics(counters, params)["normalized_performance"]

        perf = jax.vmap(one)(keys, rates).reshape(num_rates, num_episodes).mean(axis=1)
        return {"eval_normalized_performance": perf, "eval_mean": perf.mean()}
