"""Learner benchmarks (docs/spec.md §9).

Training wall time, population throughput, decision latency.

Timings live here (`jaxserve bench --sections learner`), never in pass/fail tests.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.rl.config import DQNConfig
from jaxserve.rl.networks import init_params, make_q_network
from jaxserve.sim.scenarios import get_scenario


def bench_train(config: DQNConfig, population: int, scenario_name: str = "opt-a100x4") -> dict:
    """Wall time (compilation included) of a full chunked training run with checkpoints."""
    from jaxserve.rl.trainer import run_training

    scenario = get_scenario(scenario_name)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = run_training(
            scenario, config, out, seed=0, population=population, progress=False, keep_state=False
        )
        wall_s = time.perf_counter() - start
    steps = summary["env_steps"]
    return {
        "population": population,
        "env_steps_total": steps,
        "wall_s": wall_s,
        "env_steps_per_s": steps / wall_s,
        "last_chunk_wall_s": summary["chunk_wall_s"],
        "env_steps_per_s_steady": config.env_steps_per_chunk * population / summary["chunk_wall_s"],
    }


def bench_decision_latency(
    hidden=(256, 256),
    obs_size: int = 14,
    num_actions: int = 3,
    batches=(1, 1024),
    repeats: int = 200,
) -> dict:
    """Median wall time of one jitted Q-network argmax for a batch of observations."""
    network = make_q_network(num_actions, hidden)
    params = init_params(network, jax.random.key(0), obs_size)
    decide = jax.jit(lambda p, obs: jnp.argmax(network.apply(p, obs), axis=-1))
    out = {}
    for batch in batches:
        obs = jnp.zeros((batch, obs_size), jnp.float32)
        jax.block_until_ready(decide(params, obs))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(decide(params, obs))
            times.append(time.perf_counter() - t0)
        out[f"batch_{batch}"] = {
            "median_us": float(np.median(times) * 1e6),
            "decisions_per_s": batch / float(np.median(times)),
        }
    return out


def bench_learner(quick: bool = False) -> dict:
    """Train one router for 1.2M env steps, a population of 16, and decision latency."""
    config = DQNConfig()
    population = 16
    if quick:
        config = dataclasses.replace(
            config,
            num_envs=8,
            episode_length=256,
            total_env_steps=8 * 256 * 2,
            learning_starts=256,
            eval_length=256,
            eval_episodes=1,
        )
        population = 2
    pop_config = dataclasses.replace(config, total_env_steps=config.env_steps_per_chunk * 2)
    return {
        "config": dataclasses.asdict(config),
        "train_one": bench_train(config, 1),
        "population": bench_train(pop_config, population),
        "decision_latency": bench_decision_latency(config.hidden, repeats=20 if quick else 200),
    }
