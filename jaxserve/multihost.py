"""Several processes, one program: what jaxserve needs from JAX's multi-process runtime.

Past one machine, every process calls `jax.distributed.initialize(...)` before any other JAX
call and then runs the same Python program (docs/scaling.md). `jax.devices()` then lists
every process's devices, but a process reads and writes only its own: an array laid out
over all of them (a population, lanes) is not fully addressable, so `np.asarray` on it
fails. The helpers here are the only places that care:

* `host_array` / `host_tree`: a numpy copy of a whole array in every process (a collective,
  `process_allgather`, when other processes hold parts of it; plain `np.asarray` otherwise);
* `global_array`: an array over a sharding that spans processes, from the same host value
  in every process (each process fills its own devices' blocks);
* `is_primary` / `barrier`: files are written by process 0 only, and the others wait until
  they are there.

With one process each is what the single-process code did before (`np.asarray`,
`jax.device_put`, no barrier).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxserve.keys import is_key_array


def is_multiprocess() -> bool:
    """Whether this program runs in more than one process (`jax.distributed`)."""
    return jax.process_count() > 1


def is_primary() -> bool:
    """Whether this process writes the files (process 0; always true in one process)."""
    return jax.process_index() == 0


def host_array(x) -> np.ndarray:
    """The whole value of `x` as numpy, in every process.

    An array with blocks on other processes' devices is gathered (`process_allgather`): a
    collective, so every process must call this for the same arrays in the same order.
    """
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def host_tree(tree):
    """`host_array` of every leaf (no PRNG key leaves: take their key data first)."""
    return jax.tree.map(host_array, tree)


def global_array(x, sharding: jax.sharding.Sharding) -> jax.Array:
    """`x` (the same value in every process; a key array too) laid out over `sharding`.

    Each process builds only its own devices' blocks (`make_array_from_callback`), so the
    sharding may span devices of other processes, which `jax.device_put` refuses.
    """
    if is_key_array(x):
        data = global_array(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = host_array(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def barrier(name: str) -> None:
    """Wait until every process gets here (no-op in one process); `name` must match."""
    if is_multiprocess():
        multihost_utils.sync_global_devices(name)


__all__ = [
    "barrier",
    "global_array",
    "host_array",
    "host_tree",
    "is_multiprocess",
    "is_primary",
]
