"""Populations: vmap over seeds and hyperparameters; sharding over (fake) devices."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.rl import probes
from jaxserve.rl.config import DQNConfig, hparams_with, stack_hparams
from jaxserve.rl.dqn import make_learner
from jaxserve.rl.population import member_keys, train_population

REPO = Path(__file__).resolve().parents[2]


def _learner():
    probe = probes.TwoStepChain()
    config = DQNConfig(
        hidden=(16,),
        num_envs=8,
        episode_length=2,
        total_env_steps=8 * 2 * 300,
        episodes_per_chunk=300,
        buffer_size=512,
        batch_size=32,
        learning_starts=32,
        credit_window=2,
    )
    return make_learner(probe, config)


def test_two_seeds_differ_and_hparams_matter():
    learner = _learner()
    fast = {"learning_rate": 3e-3, "target_period": 10}
    hp = stack_hparams(
        [
            hparams_with({"discount": 0.5, **fast}),
            hparams_with({"discount": 0.5, **fast}),
            hparams_with({"discount": 0.9, **fast}),
        ]
    )
    states, _ = train_population(learner, member_keys(0, 3), hp)
    kernel = np.asarray(states.params["params"]["Dense_0"]["kernel"])
    assert not np.array_equal(kernel[0], kernel[1]), "two seeds gave identical parameters"
    obs = jnp.array([1.0, 0.0])
    q = [
        float(learner.network.apply(jax.tree.map(lambda x, i=i: x[i], states.params), obs)[0])
        for i in range(3)
    ]
    # Q(s0) = discount: the population really trained with its own discounts.
    np.testing.assert_allclose(q, [0.5, 0.5, 0.9], atol=0.08)


SHARDED = textwrap.dedent("""
    import jax, numpy as np
    from jaxserve.rl import probes
    from jaxserve.rl.config import DQNConfig, hparams_with, stack_hparams
    from jaxserve.rl.dqn import make_learner
    from jaxserve.rl.population import make_population_fns, member_keys
    assert jax.device_count() == 4, jax.devices()
    config = DQNConfig(hidden=(8,), num_envs=4, episode_length=2, total_env_steps=4 * 2 * 20,
                       episodes_per_chunk=20, buffer_size=256, batch_size=16,
                       learning_starts=16, credit_window=2)
    learner = make_learner(probes.TwoStepChain(), config)
    init, run_chunk, mesh = make_population_fns(learner, 8)
    hp = stack_hparams([hparams_with({"discount": 0.1 * (i + 1)}) for i in range(8)])
    states = init(member_keys(0, 8), hp)
    states, metrics = run_chunk(states)
    leaf = states.params["params"]["Dense_0"]["kernel"]
    assert len(leaf.sharding.device_set) == 4, leaf.sharding
    assert leaf.addressable_shards[0].data.shape[0] == 2
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    print("OK", mesh.shape)
""")


def test_population_sharded_over_four_fake_devices():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    out = subprocess.run(
        [sys.executable, "-c", SHARDED],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout
