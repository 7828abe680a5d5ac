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
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

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
    assert jax.device_count() == TEST_CPU_DEVICES, (
        "tests/conftest.py could not set the CPU device count: unset XLA_FLAGS' "
        "--xla_force_host_platform_device_count and JAX_NUM_CPU_DEVICES to run the suite"
    )


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


def test_inside_a_sharded_program_the_lanes_stay_put():
    """Nested in shard_map or a mesh context, shard_lanes is fn(*args): no second split."""
    mesh = Mesh(np.asarray(jax.devices()), ("outer",))
    fn = lambda x: x * 2 + x.shape[0] * 1000  # records how many lanes fn saw
    lanes = jnp.arange(4.0)
    inner = lambda x: shard_lanes(fn, (x,), batched=(True,))
    nested = jax.jit(jax.shard_map(inner, mesh=mesh, in_specs=P("outer"), out_specs=P("outer")))
    per_device = 4 // TEST_CPU_DEVICES
    np.testing.assert_array_equal(nested(lanes), np.arange(4.0) * 2 + per_device * 1000)
    with jax.set_mesh(mesh):
        np.testing.assert_array_equal(jax.jit(inner)(lanes), np.arange(4.0) * 2 + 4000)


@pytest.mark.parametrize("text", ["two", "0", "-1", "\u00b2", "1.5"])
def test_bad_device_count_is_an_input_error(monkeypatch, text):
    monkeypatch.setenv(ENV_VAR, text)
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


@pytest.mark.parametrize(
    "other",
    [{"XLA_FLAGS": "--xla_force_host_platform_device_count=3"}, {"JAX_NUM_CPU_DEVICES": "3"}],
)
def test_an_explicit_xla_or_jax_device_count_wins(other):
    code = (
        "from jaxserve.host import configure_cpu_devices; n = configure_cpu_devices(); "
        "import jax; print(n, jax.device_count())"
    )
    assert _fresh_python(code, **{ENV_VAR: "2", **other}).stdout.split() == ["None", "3"]


@pytest.mark.parametrize(
    "code_before,env",
    [
        ("", {"JAX_PLATFORMS": "tpu"}),  # the user picks an accelerator platform
        ("import jaxserve.host as h; h.ACCELERATOR_MODULES = ('json',); ", {}),  # a plugin
    ],
    ids=["JAX_PLATFORMS", "plugin-installed"],
)
def test_no_cpu_device_split_on_an_accelerator_host(code_before, env):
    """On a faked GPU/TPU host the one-device-per-core setup is skipped (JAX not started)."""
    code = (
        code_before + "from jaxserve.host import configure_cpu_devices, expected_platform; "
        "from jax._src import xla_bridge; n = configure_cpu_devices(); "
        "print(n, expected_platform() != 'cpu', xla_bridge.backends_are_initialized())"
    )
    out = _fresh_python(code, **{ENV_VAR: "3", **env})
    assert out.stdout.split() == ["None", "True", "False"], out.stderr


def test_cpu_compiler_options_only_on_a_cpu_backend(monkeypatch):
    from jaxserve.sim import compile as sim_compile

    assert sim_compile.compiler_options() == sim_compile.CPU_COMPILER_OPTIONS  # the suite: CPU
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert sim_compile.compiler_options() == {}


SHARDED_VS_PLAIN_3_DEVICES = """
import dataclasses, jax, numpy as np
from jaxserve.host import configure_cpu_devices
assert configure_cpu_devices() == 3
from jaxserve.policies.baselines import make_policy
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.rollout import counter_rollouts
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.workloads import WorkloadSpec, make_workload
scenario = get_scenario("opt-a100x4")
env = make_env(dataclasses.replace(scenario.sim_config(), emit_records=False))
params = scenario.sim_params()
wparams, generate = make_workload(WorkloadSpec(kind="poisson", rate=300.0), 4, 120)
for lanes in (1, 4):  # fewer lanes than devices; two padding lanes
    keys = jax.random.split(jax.random.key(lanes), lanes)
    arrivals = jax.vmap(lambda k: generate(k, wparams))(keys)
    for name in ("static:0", "random"):
        policy = make_policy(name, env, scenario)
        run = lambda shard: sim_jit(
            lambda k, a: counter_rollouts(env, policy, k, params, a, shard=shard)
        )(jax.random.split(jax.random.key(9), lanes), arrivals)
        sharded, plain = run(True), run(False)
        for field in dataclasses.fields(plain):
            a, b = getattr(sharded, field.name), getattr(plain, field.name)
            assert a.shape[0] == lanes and np.array_equal(a, b), (lanes, name, field.name)
print("ok")
"""


def test_three_devices_with_padding_match_one_device():
    """Unbatched params, no lane args, 1 and 4 lanes on 3 devices (2 padding lanes each)."""
    proc = _fresh_python(SHARDED_VS_PLAIN_3_DEVICES, **{ENV_VAR: "3"})
    assert proc.returncode == 0 and proc.stdout.split() == ["ok"], proc.stderr[-2000:]


def test_cli_rejects_a_bad_device_count_in_one_line():
    code = "import sys; from jaxserve.cli import main; sys.exit(main(['simulate']))"
    proc = _fresh_python(code, **{ENV_VAR: "0"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"jaxserve: error: {ENV_VAR} = '0': expected a whole number >= 1"
    ]
