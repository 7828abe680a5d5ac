"""Shared test setup: key-reuse checking on, two CPU devices, the packaged data directory."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

from jaxserve.data import data_path
from jaxserve.host import ENV_VAR, configure_cpu_devices
from jaxserve.testing import TEST_CPU_DEVICES

# STYLE: never reuse a PRNG key; tests run with the checker on.
jax.config.update("jax_debug_key_reuse", True)
# Two CPU devices whatever the host, as the CLI gives a 2-core machine: every batched
# rollout in the suite (sweeps, bench, experiments) runs sharded over lanes
# (jaxserve/sim/devices.py), and test_devices.py holds it to the unsharded run.
os.environ[ENV_VAR] = str(TEST_CPU_DEVICES)  # for a later `main()` or experiment import, too
configure_cpu_devices(TEST_CPU_DEVICES)
jax.devices()  # start JAX now, so nothing later in the session changes the count

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data the package ships (`jaxserve/data/`: traces, quality, latency)."""
    return data_path(".")
