"""Double DQN on jaxserve's gymnax environment, PureJaxRL style: training is one jitted call.

Only the public interface: `jaxserve.make`, reset/step (gymnax >= 1.0 returns), spaces.
A step's reward is the utility of requests that *finished* during it, so a decision's credit
comes a few steps later (mostly the next one at 50 req/s). Run: `python examples/dqn.py`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import jaxserve

CONFIG = {
    "scenario": "opt-a100x4",
    "workload": "poisson:rate=50",
    "num_arrivals": 256,  # requests (= decisions) per episode
    "num_envs": 16,
    "num_iterations": 500,  # env steps = num_envs * num_iterations
    "buffer_size": 4096,
    "batch_size": 128,
    "target_every": 25,  # iterations between copies of the online net to the target net
    "lr": 3e-3,
    "gamma": 0.9,
    "epsilon_end": 0.05,  # exploration decays linearly over the first half
}


def q_network(num_actions: int) -> nn.Module:
    """obs -> one Q-value per action."""
    return nn.Sequential([nn.Dense(64), nn.relu, nn.Dense(64), nn.relu, nn.Dense(num_actions)])


def make_train(config: dict):
    """Returns (env, env_params, network, train); `train(key) -> (q_params, losses)`."""
    env, env_params = jaxserve.make(config["scenario"], config["workload"], config["num_arrivals"])
    network, optimizer = q_network(env.num_actions), optax.adam(config["lr"])
    n, size = config["num_envs"], config["buffer_size"]
    reset, step = jax.vmap(env.reset, (0, None)), jax.vmap(env.step, (0, 0, 0, None))
    pick = lambda q, a: jnp.take_along_axis(q, a[:, None], axis=1)[:, 0]

    def loss_fn(q_params, target_params, batch):
        obs, action, reward, next_obs, terminated = batch
        next_action = jnp.argmax(network.apply(q_params, next_obs), axis=1)  # online selects
        q_next = pick(network.apply(target_params, next_obs), next_action)  # target evaluates
        target = reward + config["gamma"] * (1.0 - terminated) * q_next
        q = pick(network.apply(q_params, obs), action)
        return jnp.mean(optax.huber_loss(q, jax.lax.stop_gradient(target)))

    def iteration(carry, i):
        q_params, target_params, opt_state, buffer, obs, env_state, key = carry
        key, key_explore, key_random, key_step, key_sample = jax.random.split(key, 5)
        epsilon = jnp.maximum(config["epsilon_end"], 1.0 - i / (0.5 * config["num_iterations"]))
        random = jax.vmap(env.action_space(env_params).sample)(jax.random.split(key_random, n))
        greedy = jnp.argmax(network.apply(q_params, obs), axis=1)
        action = jnp.where(jax.random.uniform(key_explore, (n,)) < epsilon, random, greedy)
        next_obs, env_state, reward, terminated, _, info = step(
            jax.random.split(key_step, n), env_state, action, env_params
        )
        # The transition's next observation is the one before any auto-reset.
        transition = (obs, action, reward, info["final_observation"], terminated.astype(float))
        slots = (i * n + jnp.arange(n)) % size
        buffer = jax.tree.map(lambda b, x: b.at[slots].set(x), buffer, transition)
        index = jax.random.randint(
            key_sample, (config["batch_size"],), 0, jnp.minimum((i + 1) * n, size)
        )
        batch = jax.tree.map(lambda b: b[index], buffer)
        loss, grads = jax.value_and_grad(loss_fn)(q_params, target_params, batch)
        updates, opt_state = optimizer.update(grads, opt_state)
        q_params = optax.apply_updates(q_params, updates)
        copy = i % config["target_every"] == 0
        target_params = jax.tree.map(lambda q, t: jnp.where(copy, q, t), q_params, target_params)
        return (q_params, target_params, opt_state, buffer, next_obs, env_state, key), loss

    def train(key):
        key_init, key_reset, key_run = jax.random.split(key, 3)
        obs, env_state = reset(jax.random.split(key_reset, n), env_params)
        q_params = network.init(key_init, obs)
        # Replay ring buffer: (obs, action, reward, next_obs, terminated), `size` of each.
        zeros = lambda *shape: jnp.zeros((size, *shape))
        buffer = (zeros(obs.shape[1]), zeros().astype(int), zeros(), zeros(obs.shape[1]), zeros())
        carry = (q_params, q_params, optimizer.init(q_params), buffer, obs, env_state, key_run)
        carry, losses = jax.lax.scan(iteration, carry, jnp.arange(config["num_iterations"]))
        return carry[0], losses

    return env, env_params, network, train


def evaluate(env, env_params, policy, num_steps: int, seed: int = 1, num_episodes: int = 16):
    """Mean return of `policy(key, obs) -> actions`; a seed gives every policy the same episodes."""
    key_reset, key_run = jax.random.split(jax.random.key(seed))
    reset = jax.vmap(env.reset, in_axes=(0, None))
    obs, state = reset(jax.random.split(key_reset, num_episodes), env_params)

    def one_step(carry, key):
        obs, state = carry
        key_policy, key_step = jax.random.split(key)
        obs, state, reward, _, _, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key_step, num_episodes), state, policy(key_policy, obs), env_params
        )
        return (obs, state), reward

    # With Poisson arrivals an episode is exactly num_arrivals steps; the last one ends it.
    _, rewards = jax.lax.scan(one_step, (obs, state), jax.random.split(key_run, num_steps))
    return rewards.sum(axis=0).mean()


if __name__ == "__main__":
    env, env_params, network, train = make_train(CONFIG)
    q_params, losses = jax.jit(train)(jax.random.key(0))
    greedy = lambda key, obs: jnp.argmax(network.apply(q_params, obs), axis=1)
    random = lambda key, obs: jax.random.randint(key, obs.shape[:1], 0, env.num_actions)
    for name, policy in (("greedy (trained)", greedy), ("random", random)):
        mean_return = evaluate(env, env_params, policy, CONFIG["num_arrivals"])
        print(f"{name}: mean episode return {float(mean_return):.2f}")
