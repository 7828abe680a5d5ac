"""Host (XLA CPU) settings that must be made before JAX initialises its backends.

Kept out of `jaxserve.sim`, whose import already starts JAX. See `jaxserve.sim.devices`
for why the simulator wants one CPU device per core.
"""

from __future__ import annotations

import importlib.util
import os

import jax

from jaxserve.errors import InputError

ENV_VAR = "JAXSERVE_CPU_DEVICES"
# Accelerator plugins JAX discovers at start-up (the modules `jax[cuda12]`, `jax[tpu]`, ...
# install); any of them present means the default backend will not be the CPU.
ACCELERATOR_MODULES = (
    "jax_cuda12_plugin",
    "jax_cuda13_plugin",
    "jax_rocm7_plugin",
    "libtpu",
)


def expected_platform() -> str:
    """The platform JAX's default backend will be, found without starting JAX.

    `JAX_PLATFORMS` (or `jax_platforms`) decides when set; otherwise "accelerator" when an
    accelerator plugin is installed, else "cpu".
    """
    platforms = (jax.config.jax_platforms or os.environ.get("JAX_PLATFORMS", "")).strip()
    if platforms:
        return platforms.split(",")[0].strip().lower()
    installed = any(importlib.util.find_spec(m) is not None for m in ACCELERATOR_MODULES)
    return "accelerator" if installed else "cpu"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the host's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_cpu_devices(count: int | None = None) -> int | None:
    """Ask XLA for `count` CPU devices (default: `$JAXSERVE_CPU_DEVICES`, else one per core).

    Only for a CPU backend (`expected_platform()`): on a GPU or TPU host the lanes are
    split over the accelerators instead, and it changes nothing. Must run before JAX
    initialises its backends; afterwards, or when `XLA_FLAGS`
    (`--xla_force_host_platform_device_count`) or `JAX_NUM_CPU_DEVICES` already fix the
    count, it changes nothing (silently: a second call after JAX started is normal, e.g. an
    experiment script imported by `jaxserve reproduce`). Returns the count set, or None.
    """
    from jax._src import xla_bridge

    if count is None:
        text = os.environ.get(ENV_VAR, "").strip()
        if text:
            if not (text.isascii() and text.isdecimal()) or int(text) < 1:
                raise InputError(f"{ENV_VAR} = {text!r}: expected a whole number >= 1")
            count = int(text)
        else:
            count = usable_cores()
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return None  # the user's XLA_FLAGS fix the count
    if os.environ.get("JAX_NUM_CPU_DEVICES"):
        return None  # so does JAX's own variable
    if xla_bridge.backends_are_initialized() or expected_platform() != "cpu":
        return None
    jax.config.update("jax_num_cpu_devices", count)
    return count


__all__ = ["ENV_VAR", "configure_cpu_devices", "expected_platform", "usable_cores"]
