"""`jit` for simulator rollouts, with the XLA CPU options that suit them.

XLA's CPU backend (JAX 0.10) hands some reductions to YNNPACK ("ynn fusions"). The
simulator's reductions are over short axes (a queue of 16, a few replicas) of arrays
with thousands of vmapped lanes, where those fusions cost 2-5x more than XLA's own loop
code: 0.5 ms for one `min` over (4096, 3, 16). `jaxserve bench` measures the simulator
1.4x faster without them, and another 4-10% faster with XLA's older loop emitters than
with its MLIR "fusion emitters" (docs/performance.md). The options are per compiled
function, so nothing else in the process (the router's matmuls, the OPT models) changes.
They are not used for the learner: its training program was slower with them (69.8 s vs
56.8 s for the 1.2 M-step benchmark run).
"""

from __future__ import annotations

import functools

import jax

CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "",
    "xla_cpu_use_fusion_emitters": False,
}


def compiler_options() -> dict:
    """Options for the default backend: the CPU ones on CPU, none elsewhere."""
    return dict(CPU_COMPILER_OPTIONS) if jax.default_backend() == "cpu" else {}


def sim_jit(fn=None, **kwargs):
    """`jax.jit` with `compiler_options()`; usable as `sim_jit(fn, ...)` or a decorator."""
    if fn is None:
        return functools.partial(sim_jit, **kwargs)
    return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


__all__ = ["CPU_COMPILER_OPTIONS", "compiler_options", "sim_jit"]
