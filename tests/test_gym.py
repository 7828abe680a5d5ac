"""The gymnax-compatible environment (`jaxserve.make`) against independent truths.

* `ServingEnv` run directly on the same pooled arrivals (with records on, the other
  bookkeeping path): every observation, reward and end flag agrees step by step, also
  across an auto-reset, whose new state must be a fresh `ServingEnv.reset` of the episode
  the new state names.
* `run_actions` (the CLI's per-request ledger) for the episode returns that gymnax's own
  `LogWrapper` reports when it wraps the environment unchanged.
* Spaces: every observation of an overloaded rollout lies in `observation_space`, whose
  queue bounds it reaches; values outside are rejected.
* The example DQN (examples/dqn.py) beats a random policy on the same evaluation episodes,
  by at least half the gap between random and always routing to the largest model.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxserve
from jaxserve.errors import InputError
from jaxserve.gym import Box, Discrete, LegacyStep
from jaxserve.gym.serving import episode_arrivals
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.rollout import run_actions
from jaxserve.sim.scenarios import get_scenario, scenario_to_toml

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_ARRIVALS = 64
NUM_EPISODES = 8


WORKLOAD = "poisson:rate=20000"  # overload: queues fill, requests are dropped and rejected


def _made(noise_sigma: float, **options):
    """(env, params, an independent ServingEnv with records on) for opt-a100x4."""
    scenario = dataclasses.replace(get_scenario("opt-a100x4"), noise_sigma=noise_sigma)
    env, params = jaxserve.make(
        scenario, WORKLOAD, NUM_ARRIVALS, num_episodes=NUM_EPISODES, seed=3, **options
    )
    return env, params, ServingEnv(dataclasses.replace(scenario.sim_config(), emit_records=True))


@pytest.fixture(scope="module")
def made():
    return _made(noise_sigma=0.0)


@pytest.fixture(scope="module")
def noisy():
    """With service-time noise, so the key each step hands the simulator matters too."""
    return _made(noise_sigma=0.3)


def _arrivals(params, episode):
    return episode_arrivals(params.episodes, jnp.int32(episode))


def _same_state(gym_state, sim_state):
    """Every simulator field equal (the gym state holds no arrivals)."""
    _assert_trees_equal(gym_state.sim, sim_state.replace(arrivals=None))


def _assert_trees_equal(got, want):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _lockstep(env, params, sim, key, actions):
    """Step `env` with `actions`, and `sim` on the current episode's arrivals beside it.

    Returns the step indices at which an episode ended.
    """
    sim_step = jax.jit(sim.step)
    key, key_reset = jax.random.split(key)
    obs, state = env.reset(key_reset, params)
    _, sim_state = sim.reset(None, params.sim, _arrivals(params, state.episode))
    ends = []
    for t, action in enumerate(actions):
        key, key_t = jax.random.split(key)
        key_sim = jax.random.split(jax.random.clone(key_t))[0]  # the step half, as env.step
        sim_obs, sim_state, sim_reward, sim_done, _ = sim_step(
            key_sim, sim_state, jnp.int32(action), params.sim
        )
        obs, state, reward, terminated, truncated, info = env.step(key_t, state, action, params)
        np.testing.assert_array_equal(info["final_observation"], sim_obs)
        assert float(reward) == float(sim_reward)
        assert bool(terminated) == bool(sim_done) and not bool(truncated)
        _assert_trees_equal(info["counters"], sim_state.counters)
        if bool(sim_done):  # auto-reset: a fresh ServingEnv episode, the one state names
            ends.append(t)
            sim_obs, sim_state = sim.reset(None, params.sim, _arrivals(params, state.episode))
            assert int(state.time) == 0
        np.testing.assert_array_equal(obs, sim_obs)
        _same_state(state, sim_state)
    return ends


def test_steps_match_serving_env_across_auto_resets(noisy):
    env, params, sim = noisy
    actions = np.random.default_rng(0).integers(0, env.num_actions, 3 * NUM_ARRIVALS + 5)
    ends = _lockstep(env, params, sim, jax.random.key(0), actions)
    # Poisson episodes have exactly NUM_ARRIVALS decisions; the last one drains and ends.
    assert ends == [NUM_ARRIVALS - 1, 2 * NUM_ARRIVALS - 1, 3 * NUM_ARRIVALS - 1]


def test_reset_keys_pick_different_episodes_and_seeds_different_pools(made):
    env, params, _ = made
    keys = jax.random.split(jax.random.key(1), 16)
    episodes = np.asarray(jax.vmap(env.reset, in_axes=(0, None))(keys, params)[1].episode)
    assert len(set(episodes.tolist())) >= NUM_EPISODES // 2
    assert np.all((episodes >= 0) & (episodes < NUM_EPISODES))
    gaps = np.asarray(params.episodes.gap_s)
    assert not np.array_equal(gaps[episodes[0]], gaps[episodes[episodes != episodes[0]][0]])
    _, same = jaxserve.make("opt-a100x4", WORKLOAD, NUM_ARRIVALS, num_episodes=8, seed=3)
    _, other = jaxserve.make("opt-a100x4", WORKLOAD, NUM_ARRIVALS, num_episodes=8, seed=4)
    np.testing.assert_array_equal(same.episodes.gap_s, params.episodes.gap_s)
    assert not np.array_equal(other.episodes.gap_s, params.episodes.gap_s)
    # The pool really holds the workload asked for: mean gap of 1/20000 s (512 samples).
    assert np.mean(gaps) == pytest.approx(1 / 20000, rel=0.15)
    redrawn = jax.jit(env.redraw_episodes)(jax.random.key(2), params)
    assert redrawn.episodes.gap_s.shape == gaps.shape
    assert not np.any(np.all(np.asarray(redrawn.episodes.gap_s) == gaps, axis=1))
    assert np.mean(redrawn.episodes.gap_s) == pytest.approx(1 / 20000, rel=0.15)


def test_spaces_contain_rollout_observations_and_reject_others(made):
    env, params, _ = made
    space, actions = env.observation_space(params), env.action_space(params)
    assert isinstance(space, Box) and isinstance(actions, Discrete)
    assert space.shape == (env.sim.obs_size,) and actions.n == env.num_actions
    observations, _ = _random_rollout(env, params, jax.random.key(2), num_envs=8, num_steps=60)
    assert bool(jnp.all(jax.vmap(jax.vmap(space.contains))(observations)))
    # Overloaded: some queue fills up, which is exactly its bound (capacity / batch slots).
    cfg = env.sim.config
    queue = np.arange(cfg.num_tasks, cfg.num_tasks + cfg.num_models)
    highest = np.max(np.asarray(observations), axis=(0, 1))
    assert np.any(highest[queue] == space.high[queue])
    obs = np.asarray(observations[0, 0])
    assert not bool(space.contains(_with(obs, 0, -0.5)))
    assert not bool(space.contains(_with(obs, queue[0], space.high[queue[0]] + 0.1)))
    assert not bool(space.contains(obs[:-1]))
    assert bool(space.contains(space.sample(jax.random.key(3))))
    samples = jax.vmap(actions.sample)(jax.random.split(jax.random.key(4), 200))
    assert set(np.asarray(samples).tolist()) == set(range(env.num_actions))
    assert not bool(actions.contains(env.num_actions)) and not bool(actions.contains(-1))


def _with(array, index, value):
    """A copy of `array` with one entry replaced."""
    out = np.array(array)
    out[index] = value
    return out


def _random_rollout(env, params, key, num_envs, num_steps):
    """(observations, rewards), each (num_steps, num_envs, ...), under random actions."""
    key_reset, key_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(key_reset, num_envs), params
    )

    def one_step(carry, key):
        obs, state = carry
        key_action, key_step = jax.random.split(key)
        action = jax.random.randint(key_action, (num_envs,), 0, env.num_actions)
        obs, state, reward, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key_step, num_envs), state, action, params
        )
        return (obs, state), (obs, reward)

    _, (observations, rewards) = jax.lax.scan(
        one_step, (obs, state), jax.random.split(key_run, num_steps)
    )
    return observations, rewards


def _fixed_rollout(env, params, key, actions):
    """One env from `reset(key)` through `actions` (num_steps,): observations, rewards, ends."""
    key_reset, key_run = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def one_step(carry, inputs):
        obs, state = carry
        index, action = inputs
        key = jax.random.fold_in(key_run, index)  # scanning split keys: a false key-reuse alarm
        obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
        return (obs, state), (obs, reward, terminated | truncated)

    inputs = (jnp.arange(actions.shape[0]), actions)
    return state.episode, jax.lax.scan(one_step, (obs, state), inputs)[1]


def test_jit_vmap_lanes_equal_single_runs(made):
    env, params, _ = made
    num_envs, num_steps = 4, NUM_ARRIVALS + 10  # every lane resets once
    actions = jnp.asarray(np.random.default_rng(1).integers(0, 3, (num_envs, num_steps)))
    keys = jax.vmap(jax.random.key)(jnp.arange(num_envs))  # lane i: key(i)
    batched = jax.jit(jax.vmap(_fixed_rollout, in_axes=(None, None, 0, 0)), static_argnums=0)
    episode, (obs, reward, done) = batched(env, params, keys, actions)
    assert obs.shape == (num_envs, num_steps, env.sim.obs_size)
    assert np.all(np.asarray(done).sum(axis=1) == 1)
    for lane in (0, 3):
        single = _fixed_rollout(env, params, jax.random.key(lane), actions[lane])
        assert int(single[0]) == int(episode[lane])
        for got, want in zip((obs, reward, done), single[1], strict=True):
            np.testing.assert_allclose(got[lane], want, rtol=1e-6)


def test_gymnax_wrappers_run_unchanged(made):
    import gymnax.wrappers as gymnax_wrappers  # a test dependency: fail, never skip

    env, params, sim = made
    log_env = gymnax_wrappers.LogWrapper(env)
    num_envs, num_steps = 3, NUM_ARRIVALS
    actions = np.random.default_rng(2).integers(0, env.num_actions, (num_envs, num_steps))
    keys = jax.random.split(jax.random.key(6), num_envs)

    def run(key, actions):
        key_reset, key_run = jax.random.split(key)
        obs, state = log_env.reset(key_reset, params)
        episode = state.env_state.episode

        def one_step(state, inputs):
            index, action = inputs
            key = jax.random.fold_in(key_run, index)
            _, state, _, _, _, info = log_env.step(key, state, action, params)
            return state, info["returned_episode_returns"]

        inputs = (jnp.arange(num_steps), actions)
        return episode, jax.lax.scan(one_step, state, inputs)[1]

    episodes, returns = jax.jit(jax.vmap(run))(keys, jnp.asarray(actions))
    for lane in range(num_envs):  # the last step ends the episode: its return is logged
        arrivals = _arrivals(params, int(episodes[lane]))
        ledger = run_actions(sim, params.sim, arrivals, actions[lane])
        np.testing.assert_allclose(returns[lane, -1], ledger["utility"].sum(), rtol=1e-5)
        assert float(returns[lane, -2]) == 0.0  # nothing returned before the first end


def test_gymnax_space_classes_serve_wrappers_that_check_types():
    import gymnax.environments.spaces
    import gymnax.wrappers

    env, params = jaxserve.make("opt-a100x4", WORKLOAD, 8, num_episodes=2, spaces="gymnax")
    space = env.observation_space(params)
    assert isinstance(space, gymnax.environments.spaces.Box)
    assert isinstance(env.action_space(params), gymnax.environments.spaces.Discrete)
    ours = jaxserve.make("opt-a100x4", WORKLOAD, 8, num_episodes=2)[0].observation_space()
    np.testing.assert_array_equal(space.high, ours.high)
    flat = gymnax.wrappers.FlattenObservationWrapper(env)
    assert flat.observation_space(params).shape == (env.sim.obs_size,)
    sticky = gymnax.wrappers.StickyActionWrapper(env, sticky_action_prob=0.5)
    legacy = gymnax.wrappers.LegacyStepAPIWrapper(sticky)
    _, state = legacy.reset(jax.random.key(7), params)
    obs, state, reward, done, info = legacy.step(jax.random.key(8), state, 2, params)
    assert obs.shape == (env.sim.obs_size,) and "final_observation" in info


def test_legacy_step_api_returns_done(made):
    env, params, _ = made
    legacy_env, legacy_params = jaxserve.make(
        "opt-a100x4", WORKLOAD, NUM_ARRIVALS, num_episodes=NUM_EPISODES, seed=3, step_api="legacy"
    )
    assert isinstance(legacy_env, LegacyStep) and legacy_env.num_actions == env.num_actions
    np.testing.assert_array_equal(legacy_params.episodes.gap_s, params.episodes.gap_s)
    key = jax.random.key(11)
    _, state = legacy_env.reset(jax.random.clone(key), legacy_params)
    _, want = env.reset(key, params)
    dones = []
    for t in range(NUM_ARRIVALS):
        result = legacy_env.step(jax.random.key(t), state, t % 3, legacy_params)
        expected = env.step(jax.random.key(t), want, t % 3, params)
        assert len(result) == 5
        obs, state, reward, done, info = result
        np.testing.assert_array_equal(obs, expected[0])
        assert float(reward) == float(expected[2]) and bool(info["terminated"]) == bool(done)
        want = expected[1]
        dones.append(bool(done))
    assert dones == [False] * (NUM_ARRIVALS - 1) + [True]


def test_max_steps_in_episode_truncates_and_resets():
    env, params = jaxserve.make("opt-a100x4", WORKLOAD, NUM_ARRIVALS, max_steps_in_episode=5)
    assert int(params.max_steps_in_episode) == 5
    obs, state = env.reset(jax.random.key(12), params)
    flags = []
    for t in range(7):
        obs, state, _, terminated, truncated, _ = env.step(jax.random.key(20 + t), state, 1, params)
        flags.append((bool(terminated), bool(truncated), int(state.time)))
    assert flags == [(False, False, t + 1) for t in range(4)] + [
        (False, True, 0),
        (False, False, 1),
        (False, False, 2),
    ]


def test_make_accepts_names_toml_paths_and_scenarios(tmp_path):
    scenario = get_scenario("opt-a100x8-large")
    path = tmp_path / "large.toml"
    path.write_text(scenario_to_toml(scenario))
    for given in ("opt-a100x8-large", path, str(path), scenario):
        env, params = jaxserve.make(given, num_arrivals=8, num_episodes=2)
        assert env.num_actions == scenario.num_models and env.name == "jaxserve-opt-a100x8-large"
        assert params.episodes.gap_s.shape == (2, 8)
        # No workload given: the scenario's own (Poisson at its rate).
        assert np.mean(params.episodes.gap_s) == pytest.approx(1 / scenario.workload.rate, rel=1)


@pytest.mark.parametrize(
    ("args", "options", "names"),
    [
        (("no-such-scenario",), {}, "scenario = 'no-such-scenario'"),
        ((3,), {}, "scenario = 3"),
        (("opt-a100x4", "poisson:rate=abc"), {}, "rate='abc': expected a number"),
        (("opt-a100x4", "no-such-kind"), {}, "WorkloadSpec.kind = 'no-such-kind'"),
        (("opt-a100x4", "poisson:bogus=1"), {}, "field 'bogus': unknown"),
        (("opt-a100x4", "poisson:rate"), {}, "item 'rate': expected field=value"),
        (("opt-a100x4", None, 0), {}, "num_arrivals = 0: expected a positive integer"),
        (("opt-a100x4", None, -5), {}, "num_arrivals = -5: expected a positive integer"),
        (("opt-a100x4", None, 2.5), {}, "num_arrivals = 2.5: expected an integer"),
        (("opt-a100x4",), {"num_episodes": 0}, "num_episodes = 0"),
        (("opt-a100x4",), {"rate": -1.0}, "WorkloadSpec.rate = -1.0"),
        (("opt-a100x4",), {"step_api": "v0"}, "step_api = 'v0'"),
        (("opt-a100x4",), {"num_envs": 4}, "unknown option 'num_envs'"),
    ],
)
def test_make_rejects_bad_input_in_one_line(args, options, names):
    with pytest.raises(InputError) as err:
        jaxserve.make(*args, **options)
    message = str(err.value)
    assert names in message and message.startswith("make: ") and "\n" not in message


def _load_example(name: str):
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", REPO_ROOT / "examples" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # keeps the default suite near 10 min on 2 cores; `pytest -m slow`
def test_example_dqn_learns_to_beat_random():
    dqn = _load_example("dqn")
    config = dqn.CONFIG
    env, env_params, network, train = dqn.make_train(config)
    q_params, losses = jax.jit(train)(jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(losses)))
    returns = lambda policy: float(dqn.evaluate(env, env_params, policy, config["num_arrivals"]))
    greedy = returns(lambda key, obs: jnp.argmax(network.apply(q_params, obs), axis=1))
    random = returns(lambda key, obs: jax.random.randint(key, obs.shape[:1], 0, env.num_actions))
    # The largest model has the best quality on every task and keeps up with this light load.
    largest = returns(lambda key, obs: jnp.full(obs.shape[:1], env.num_actions - 1))
    # Trained: at least half of the way from random to always-largest (about 3/4 seen).
    assert largest > random
    assert greedy - random >= 0.5 * (largest - random)


def test_bench_row_times_steps_that_really_reset():
    from jaxserve.gym.bench import bench_autoreset

    row = bench_autoreset(num_envs=8, num_steps=16, repeats=1)
    assert row["episode_arrivals"] == 4
    assert row["plain"]["episodes_ended"] == 8  # one long episode per env, ending at the end
    assert row["autoreset"]["episodes_ended"] == 8 * 4  # four short episodes per env
    for name in ("plain", "autoreset"):
        assert row[name]["env_steps_per_s"] == pytest.approx(8 * 16 / row[name]["wall_s"])
    ratio = row["autoreset"]["env_steps_per_s"] / row["plain"]["env_steps_per_s"]
    assert row["autoreset_vs_plain"] == pytest.approx(ratio)


def test_import_jaxserve_stays_cheap():
    import subprocess

    code = "import sys, jaxserve; print(callable(jaxserve.make), 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]  # make is there; JAX starts on first call
