"""Lane sharding over devices (jaxserve/sim/devices.py) against the unsharded run.

Sharding only changes where lanes run, so every total must be bit-identical to the
single-program run, for both simulators, with padding (a lane count the devices do not
divide), per-lane params and a per-lane policy choice.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.host import ENV_VAR, configure_cpu_devices
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.counter_env import CounterEnv
from jaxserve.sim.devices import shard_lanes
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.rollout import counter_rollouts
from jaxserve.sim.scenarios import get_scenario
from jaxserve.testing import TEST_CPU_DEVICES
from jaxserve.testing.lanes import mixed_lanes


def test_the_suite_runs_on_several_cpu_devices():
    assert jax.device_count() == TEST_CPU_DEVICES, "conftest's configure_cpu_devices had no effect"


@pytest.mark.parametrize("env_class", [CounterEnv, ServingEnv])
def test_sharded_rollouts_equal_unsharded(env_class):
    scenario = get_scenario("opt-a100x4")
    env = env_class(dataclasses.replace(scenario.sim_config(), emit_records=False))
    num_lanes = 9  # not a multiple of the device count: one padding lane
    lanes = mixed_lanes(env, scenario, num_lanes, num_arrivals=150, seed=5)
    factory, keys, params = lanes["factory"], lanes["keys"], lanes["params"]
    arrivals, index = lanes["arrivals"], lanes["index"]

    def run(keys, shard):
        return sim_jit(
            lambda k, p, a, i: counter_rollouts(
                env, factory, k, p, a, lane_args=i, params_batched=True, shard=shard
            )
        )(keys, params, arrivals, index)

    sharded = run(jax.random.clone(keys), True)  # the same keys, twice on purpose
    plain = run(keys, False)
    for name, value in dataclasses.asdict(plain).items():
        np.testing.assert_array_equal(getattr(sharded, name), value, name)
    assert np.asarray(sharded.num_arrived).shape == (num_lanes,)
    assert np.all(np.asarray(sharded.num_arrived) == 150)


def test_shard_lanes_splits_the_lane_axis_over_devices():
    """Each device sees its own contiguous block of lanes; replicated args are whole."""
    lanes = jnp.arange(7.0)
    scale = jnp.float32(10.0)

    def fn(x, s):
        # Each shard reports its lane count, so the split itself is observable.
        return x * s + x.shape[0] * 1000

    out = np.asarray(shard_lanes(fn, (lanes, scale), batched=(True, False)))
    per_device = -(-7 // TEST_CPU_DEVICES)  # 7 lanes padded to 8: 4 per device
    np.testing.assert_array_equal(out, np.arange(7.0) * 10 + per_device * 1000)


def test_bad_device_count_is_an_input_error(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "two")
    with pytest.raises(InputError, match=ENV_VAR):
        configure_cpu_devices()


def _fresh_python(code: str, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "XLA_FLAGS")}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )


def test_device_count_follows_the_environment_variable():
    code = (
        "from jaxserve.host import configure_cpu_devices; n = configure_cpu_devices(); "
        "import jax; print(n, jax.device_count())"
    )
    assert _fresh_python(code, **{ENV_VAR: "3"}).stdout.split() == ["3", "3"]


def test_cli_rejects_a_bad_device_count_in_one_line():
    code = "import sys; from jaxserve.cli import main; sys.exit(main(['simulate']))"
    proc = _fresh_python(code, **{ENV_VAR: "0"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"jaxserve: error: {ENV_VAR} = '0': expected a whole number >= 1"
    ]
