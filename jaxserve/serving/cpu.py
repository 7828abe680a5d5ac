"""XLA CPU threading for serving and profiling on a shared CPU host.

With its default thread pool, an XLA CPU computation splits each op over every core and
waits for the slowest thread; when other processes hold a core, batch times swing by 2x and
more (measured: cpu-demo-l batch of 8, p10/p50/p90 = 49/88/110 ms multi-threaded vs
48/49/52 ms single-threaded, same host, same minute). One thread per model call is both
steadier and, for these small models, as fast: it is how the cpu-demo profiles were
measured, and `jaxserve serve --cpu-threads 1` asks for it (the default stays "all": one
thread requested after JAX has started would only print a warning). The flags only affect
the CPU backend, so they are harmless on accelerators.
"""

from __future__ import annotations

import os
import sys

SINGLE_THREAD_FLAGS = ("--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1")
CPU_THREADS = ("1", "all")


def configure_cpu_threads(mode: str) -> str:
    """Ask XLA's CPU backend for one thread ("1") or its default pool ("all").

    Must run before JAX initialises its backends; returns the mode in effect.
    """
    from jax._src import xla_bridge

    from jaxserve.errors import InputError

    if mode not in CPU_THREADS:
        raise InputError(f"--cpu-threads = {mode!r}: expected one of {list(CPU_THREADS)}")
    flags = os.environ.get("XLA_FLAGS", "")
    single = all(f in flags for f in SINGLE_THREAD_FLAGS)
    if mode == "all" or single:
        return "1" if single else "all"
    if xla_bridge.backends_are_initialized():
        print(
            "jaxserve: warning: --cpu-threads 1 ignored: the JAX backend is already "
            "initialised (set XLA_FLAGS before starting)",
            file=sys.stderr,
        )
        return "all"
    os.environ["XLA_FLAGS"] = " ".join([flags, *SINGLE_THREAD_FLAGS]).strip()
    return "1"
