"""`jaxserve bench` row `gym_autoreset`: the gymnax env's auto-reset step vs the plain step.

Both run `jit(scan(vmap(step)))` over the same number of environments with uniformly
random actions, on one device. "plain" is `ServingEnv.step` (record-free) on arrivals
drawn before the clock starts, long enough that no episode ends; "autoreset" is
`ServingGymEnv.step` (gymnax's auto-reset on every step) with episodes a quarter of the run
long, so every environment really resets a few times. Timings are reported, never asserted.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.gym.make import make
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.workloads import WorkloadSpec, make_workload

NUM_EPISODES = 64


def bench_autoreset(
    scenario: str = "opt-a100x4",
    rate: float = 200.0,
    num_envs: int = 1024,
    num_steps: int = 256,
    repeats: int = 5,
) -> dict:
    """Env steps/s of the plain step and of the auto-reset step; best of `repeats` calls."""
    episode_arrivals = max(num_steps // 4, 1)
    env, params = make(
        scenario, f"poisson:rate={rate}", episode_arrivals, num_episodes=NUM_EPISODES
    )
    num_actions = env.num_actions

    plain_step = lambda key, state, action: env.sim.step(key, state, action, params.sim)
    auto_step = lambda key, state, action: env.step(key, state, action, params)
    key_arrivals, key_reset, key_run = jax.random.split(jax.random.key(0), 3)
    plain_state = _plain_states(env, params, scenario, rate, num_envs, num_steps, key_arrivals)
    auto_state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(
        jax.random.split(key_reset, num_envs), params
    )[1]
    out = {
        "scenario": scenario,
        "rate": rate,
        "num_envs": num_envs,
        "steps_per_env": num_steps,
        "episode_arrivals": episode_arrivals,
        "pooled_episodes": NUM_EPISODES,
        "lane_devices": 1,
    }
    runs = {
        "plain": (_random_rollout(plain_step, num_actions, num_envs, num_steps), plain_state),
        "autoreset": (_random_rollout(auto_step, num_actions, num_envs, num_steps), auto_state),
    }
    for name, (wall_s, episodes_ended) in _best_times(runs, key_run, repeats).items():
        out[name] = {
            "env_steps_per_s": num_envs * num_steps / wall_s,
            "wall_s": wall_s,
            "episodes_ended": episodes_ended,
        }
    out["autoreset_vs_plain"] = (
        out["autoreset"]["env_steps_per_s"] / out["plain"]["env_steps_per_s"]
    )
    return out


def _plain_states(env, params, scenario, rate, num_envs, num_steps, key):
    """Fresh `ServingEnv` states on `num_steps` arrivals each (the plain step's input)."""
    spec = WorkloadSpec(kind="poisson", rate=rate)
    wparams, generate = make_workload(spec, env.sim.config.num_tasks, num_steps)
    reset = lambda key: env.sim.reset(None, params.sim, generate(key, wparams))[1]
    return jax.jit(jax.vmap(reset))(jax.random.split(key, num_envs))


def _random_rollout(step, num_actions: int, num_envs: int, num_steps: int):
    """`run(state, key) -> (state, episodes ended)`: scan of vmapped random-action steps.

    The final state is returned so that XLA cannot drop any of the step's work.
    """
    vstep = jax.vmap(step)

    def body(state, index, key):
        key_action, key_step = jax.random.split(jax.random.fold_in(key, index))
        action = jax.random.randint(key_action, (num_envs,), 0, num_actions)
        result = vstep(jax.random.split(key_step, num_envs), state, action)
        done = result[3] if len(result) == 5 else result[3] | result[4]  # 5- or 6-tuple
        return result[1], jnp.sum(done)

    def run(state, key):
        state, ended = jax.lax.scan(lambda s, i: body(s, i, key), state, jnp.arange(num_steps))
        return state, jnp.sum(ended)

    return run


def _best_times(runs: dict, key: jax.Array, repeats: int) -> dict:
    """name -> (best wall time, episodes ended) of `run(state, key)` for each run.

    One compiling call each, then `repeats` rounds that time every run in turn, so that
    load from other processes on a shared machine hits both runs alike. Keys are cloned
    per call (the same work each time).
    """
    compiled = {name: (sim_jit(run), state) for name, (run, state) in runs.items()}
    ended = {
        name: int(run(state, jax.random.clone(key))[1]) for name, (run, state) in compiled.items()
    }
    best = dict.fromkeys(compiled, np.inf)
    for _ in range(repeats):
        for name, (run, state) in compiled.items():
            call_key = jax.random.clone(key)
            start = time.perf_counter()
            jax.block_until_ready(run(state, call_key))
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: (best[name], ended[name]) for name in compiled}


__all__ = ["bench_autoreset"]
