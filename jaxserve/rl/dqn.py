"""Double DQN trained entirely inside jit: `make_train(config, scenario) -> train(key, hparams)`.

Structure (all `lax.scan`, no Python in the loop):
  train = init, then `num_chunks` x run_chunk
  run_chunk = `episodes_per_chunk` x run_episode, then a greedy evaluation
  run_episode = reset every env, `episode_length` x (act -> env step -> credit -> replay
                insert -> `updates_per_step` x learn), then flush the pending table.
Every phase is a top-level function taking and returning state. A population is
`jax.vmap` over (key, hparams) of the same functions (population.py). The chunked driver
(trainer.py) calls `init` and `run_chunk` separately so it can checkpoint between chunks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxserve.rl import buffer as replay
from jaxserve.rl import credit
from jaxserve.rl.config import DQNConfig, HParams, as_arrays, default_hparams
from jaxserve.rl.losses import double_q_learning, huber_loss
from jaxserve.rl.networks import QNetwork, init_params, make_q_network


@struct.dataclass
class LearnerState:
    """Everything a learner carries between updates (a pytree; checkpointed between chunks)."""

    params: dict
    target_params: dict
    opt_state: optax.OptState
    buffer: replay.ReplayBuffer
    hparams: HParams
    key: jax.Array
    num_updates: jax.Array  # () int32 gradient steps applied
    num_env_steps: jax.Array  # () int32 env transitions collected (all envs)
    num_chunks_done: jax.Array  # () int32
    # The member's own scenario params (e.g. a placement's active replicas) for its episodes
    # and evaluations; None = the adapter's. None adds no leaf: ordinary checkpoints are
    # unchanged.
    env_params: object = None


@dataclasses.dataclass(frozen=True)
class Learner:
    """The learner's pure functions for one adapter and config (build with `make_learner`)."""

    config: DQNConfig
    network: QNetwork
    init: Callable  # (key, hparams, env_params=None) -> LearnerState
    run_chunk: Callable  # (LearnerState) -> (LearnerState, metrics)
    train: Callable  # (key, hparams, env_params=None) -> (LearnerState, metrics per chunk)


def make_optimizer(hp: HParams) -> optax.GradientTransformation:
    """Adam with global-norm clipping; built from (possibly traced) hyperparameters."""
    return optax.chain(
        optax.clip_by_global_norm(hp.max_grad_norm), optax.adam(learning_rate=hp.learning_rate)
    )


def epsilon(config: DQNConfig, hp: HParams, num_env_steps: jax.Array) -> jax.Array:
    """Linear decay from epsilon_start to the floor over epsilon_decay_frac of training."""
    horizon = jnp.maximum(
        hp.epsilon_decay_frac * config.num_episodes * config.num_envs * config.episode_length, 1.0
    )
    frac = jnp.minimum(num_env_steps.astype(jnp.float32) / horizon, 1.0)
    return hp.epsilon_start + frac * (hp.epsilon_end - hp.epsilon_start)


def select_actions(key, network: QNetwork, params, obs, eps, num_actions: int):
    """Epsilon-greedy actions for a batch of observations (N, O) -> (N,)."""
    key_explore, key_random = jax.random.split(key)
    greedy = jnp.argmax(network.apply(params, obs), axis=-1)
    explore = jax.random.uniform(key_explore, greedy.shape) < eps
    random = jax.random.randint(key_random, greedy.shape, 0, num_actions)
    return jnp.where(explore, random, greedy).astype(jnp.int32)


def dqn_loss(
    params,
    target_params,
    network: QNetwork,
    batch: replay.Transitions,
    hp: HParams,
    double: bool = True,
):
    """Mean Huber loss of Double-Q TD errors over a batch; (loss, mean Q).

    `double=False` is vanilla DQN (the ablation): the target net both selects and evaluates.
    """
    q_tm1 = network.apply(params, batch.obs)  # (B, A)
    q_t_value = network.apply(target_params, batch.next_obs)  # target net evaluates
    # Double DQN: the online net selects the next action; vanilla: the target net's own max.
    q_t_selector = network.apply(params, batch.next_obs) if double else q_t_value
    discount_t = hp.discount * batch.continuation
    td = jax.vmap(double_q_learning)(
        q_tm1, batch.action, batch.reward, discount_t, q_t_value, q_t_selector
    )
    weight = batch.valid.astype(jnp.float32)
    loss = jnp.sum(weight * huber_loss(td, hp.huber_delta)) / jnp.maximum(weight.sum(), 1.0)
    return loss, jnp.mean(jnp.max(q_tm1, axis=-1))


def learn(key, state: LearnerState, config: DQNConfig, network: QNetwork):
    """One gradient step on a replay sample (once replay holds learning_starts), target update."""
    hp = state.hparams
    batch = replay.buffer_sample(key, state.buffer, config.batch_size)
    (loss, q_mean), grads = jax.value_and_grad(dqn_loss, has_aux=True)(
        state.params, state.target_params, network, batch, hp, config.double
    )
    updates, opt_state = make_optimizer(hp).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ready = state.buffer.num_filled >= max(config.learning_starts, 1)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ready, a, b), new, old)
    num_updates = state.num_updates + ready.astype(jnp.int32)
    state = state.replace(
        params=keep(params, state.params),
        opt_state=keep(opt_state, state.opt_state),
        num_updates=num_updates,
    )
    state = update_target(state, ready & (num_updates % jnp.maximum(hp.target_period, 1) == 0))
    return state, {"loss": jnp.where(ready, loss, 0.0), "q_mean": q_mean}


def update_target(state: LearnerState, due: jax.Array) -> LearnerState:
    """target <- tau * online + (1 - tau) * target when due (tau = 1: a hard copy)."""
    tau = jnp.where(due, state.hparams.target_tau, 0.0)
    target = jax.tree.map(lambda o, t: tau * o + (1.0 - tau) * t, state.params, state.target_params)
    return state.replace(target_params=target)


def with_env_params(fn: Callable, state: LearnerState) -> Callable:
    """An adapter's `reset`/`evaluate` run with the member's own env params, if it has any."""
    if state.env_params is None:  # probes and ordinary runs: the adapter's own
        return fn
    return lambda *args: fn(*args, params=state.env_params)


def make_learner(adapter, config: DQNConfig) -> Learner:
    """The learner's init / run_chunk / train for an adapter (envs.py, probes.py)."""
    network = make_q_network(adapter.num_actions, config.hidden)
    num_envs, window = config.num_envs, config.credit_window
    if config.buffer_size < num_envs * window:
        raise ValueError(f"buffer_size {config.buffer_size} < num_envs x credit_window")

    def init(key, hparams: HParams | None = None, env_params=None) -> LearnerState:
        hp = as_arrays(hparams if hparams is not None else default_hparams())
        key, key_params = jax.random.split(key)
        params = init_params(network, key_params, adapter.obs_size)
        return LearnerState(
            params=params,
            target_params=params,
            opt_state=make_optimizer(hp).init(params),
            buffer=replay.buffer_init(config.buffer_size, adapter.obs_size),
            hparams=hp,
            key=key,
            num_updates=jnp.int32(0),
            num_env_steps=jnp.int32(0),
            num_chunks_done=jnp.int32(0),
            env_params=env_params,
        )

    def learn_step(state: LearnerState, _):
        # Keys travel in the carry, split per iteration: jax_debug_key_reuse rejects a
        # (vmapped) scan over a key array made by split inside an outer scan.
        key, key_learn = jax.random.split(state.key)
        state, metrics = learn(key_learn, state.replace(key=None), config, network)
        return state.replace(key=key), metrics

    def collect_step(carry, decision):
        """One vectorised env step, credit bookkeeping, replay insertion, updates."""
        state, obs, env_states, pending = carry
        key, key_act, key_env, key_learn = jax.random.split(state.key, 4)
        eps = epsilon(config, state.hparams, state.num_env_steps)
        action = select_actions(key_act, network, state.params, obs, eps, adapter.num_actions)
        next_obs, env_states, reward, done, credits = jax.vmap(adapter.step)(
            jax.random.split(key_env, num_envs), env_states, action
        )
        if config.credit == "decision":
            pending, out, unresolved = jax.vmap(
                credit.pending_step, in_axes=(0, None, 0, 0, 0, 0, 0, 0, 0)
            )(pending, decision, obs, action, next_obs, done, *credits)
        else:
            out = replay.Transitions(
                obs=obs,
                action=action,
                reward=reward,
                continuation=1.0 - done.astype(jnp.float32),
                next_obs=next_obs,
                valid=jnp.ones(num_envs, bool),
            )
            unresolved = jnp.zeros(num_envs, bool)
        state = state.replace(
            key=key_learn,
            buffer=replay.buffer_add(state.buffer, out),
            num_env_steps=state.num_env_steps + num_envs,
        )
        state, learn_metrics = jax.lax.scan(learn_step, state, None, length=config.updates_per_step)
        state = state.replace(key=key)
        metrics = {
            "reward": jnp.mean(reward),
            "epsilon": eps,
            "unresolved": jnp.sum(unresolved),
            **jax.tree.map(jnp.mean, learn_metrics),
        }
        return (state, next_obs, env_states, pending), metrics

    def run_episode(state: LearnerState, _):
        """Reset every env, run one aligned episode, flush pending credit into replay."""
        key, key_reset = jax.random.split(state.key)
        obs, env_states = jax.vmap(with_env_params(adapter.reset, state))(
            jax.random.split(key_reset, num_envs)
        )
        pending = jax.vmap(lambda _: credit.pending_init(window, adapter.obs_size))(
            jnp.arange(num_envs)
        )
        carry = (state.replace(key=key), obs, env_states, pending)
        (state, _, env_states, pending), steps = jax.lax.scan(
            collect_step, carry, jnp.arange(config.episode_length, dtype=jnp.int32)
        )
        unresolved = jnp.sum(steps["unresolved"])
        if config.credit == "decision":
            flushed, left = jax.vmap(credit.pending_flush)(pending)
            flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), flushed)
            state = state.replace(buffer=replay.buffer_add(state.buffer, flat))
            unresolved = unresolved + jnp.sum(left)
        metrics = {
            "loss": jnp.mean(steps["loss"]),
            "q_mean": jnp.mean(steps["q_mean"]),
            "reward_per_step": jnp.mean(steps["reward"]),
            "epsilon": steps["epsilon"][-1],
            "unresolved_fraction": unresolved / (num_envs * config.episode_length),
            **jax.tree.map(jnp.mean, adapter.episode_metrics(env_states)),
        }
        return state, metrics

    def run_chunk(state: LearnerState):
        """`episodes_per_chunk` episodes, then a greedy evaluation; (state, metrics)."""
        state, episodes = jax.lax.scan(run_episode, state, None, length=config.episodes_per_chunk)
        key, key_eval = jax.random.split(state.key)
        q_fn = lambda obs: network.apply(state.params, obs)
        evaluation = with_env_params(adapter.evaluate, state)(key_eval, q_fn)
        state = state.replace(key=key, num_chunks_done=state.num_chunks_done + 1)
        return state, {
            **episodes,
            **evaluation,
            "num_env_steps": state.num_env_steps,
            "num_updates": state.num_updates,
        }

    def train(key, hparams: HParams | None = None, env_params=None):
        """The whole run in one scan: (final state, metrics stacked over chunks)."""
        state = init(key, hparams, env_params)
        return jax.lax.scan(lambda s, _: run_chunk(s), state, None, length=config.num_chunks)

    return Learner(config=config, network=network, init=init, run_chunk=run_chunk, train=train)


def make_train(config: DQNConfig, scenario) -> Callable:
    """`train(key, hparams=None) -> (LearnerState, metrics)` on a serving scenario."""
    from jaxserve.rl.envs import ServingAdapter

    return make_learner(ServingAdapter(scenario, config), config).train
