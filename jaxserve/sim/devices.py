"""Simulator lanes split over every device, one CPU device per core.

A batch of vmapped simulator lanes is embarrassingly parallel: no lane ever reads another.
`shard_lanes` splits the lane axis over a 1-D mesh of the default backend's devices
(every process's) with `jax.shard_map`, so each device runs its share as its own vmapped
program, with its own event loop: a device's lanes never wait for another device's busiest
lane. On GPUs and TPUs that is the usual data parallelism. On a CPU host XLA exposes one device
unless asked, and splits each op of that device's program over the cores, joining them
after every op; a simulator micro-step is ~55 small ops, so the joins cost about as much as
the work. `jaxserve.host.configure_cpu_devices` (called by the CLI before JAX starts)
exposes one XLA CPU device per usable core instead, and the cores run lanes side by side:
1.45x (static) to 1.5x (greedy) more decisions/s for 4096 lanes on a 2-core host
(docs/performance.md). Results are bit-identical to the unsharded run: sharding changes
where lanes run, not what they compute.

`JAXSERVE_CPU_DEVICES=N` sets the CPU device count (1 turns lane sharding off on a CPU host).

Several processes (`jax.distributed`, docs/scaling.md): the mesh spans every process's
devices, each process runs the lanes of its own devices, and the results are gathered back
(`all_gather` inside the program), so every process gets every lane, as with one process.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxserve.keys import is_key_array

LANE_AXIS = "lanes"


def lane_devices() -> list:
    """The devices `shard_lanes` splits lanes over: the default backend's devices of every
    process (in a multi-process run each process simulates the lanes of its own devices)."""
    return jax.devices()


def shard_lanes(fn, args: tuple, batched: tuple):
    """`fn(*args)` with the leading (lane) axis of the `batched` args split over devices.

    `fn` must treat lanes independently and return a pytree with a leading lane axis (a
    vmapped rollout, say); unbatched args are replicated. The lanes are padded to a
    multiple of the device count (copies of lane 0; all-zero key data for key arrays),
    whose results are dropped. With one device, or inside a program that is already
    sharded, this is `fn(*args)`. Call it under `jit` (as the `sim_jit` callers do), so
    that arrays committed to one device can move to the others.
    """
    devices = lane_devices()
    if len(devices) == 1 or not jax.sharding.get_abstract_mesh().empty:
        # Already inside a sharded program (shard_map, a `jax.set_mesh` context): the
        # caller owns the devices, so the lanes stay where they are.
        return fn(*args)
    lanes = [a for a, b in zip(args, batched, strict=True) if b]
    num = jax.tree.leaves(lanes)[0].shape[0]
    pad = -num % len(devices)
    if pad:
        repeat = lambda x: jnp.concatenate([x, _filler(x, pad)])
        args = tuple(
            jax.tree.map(repeat, a) if b else a for a, b in zip(args, batched, strict=True)
        )
    mesh = Mesh(np.asarray(devices), (LANE_AXIS,))
    specs = tuple(P(LANE_AXIS) if b else P() for b in batched)
    if jax.process_count() > 1:
        # Other processes hold some lanes: gather them, so every process can read them all.
        fn, out_spec = _gathered(fn), P()
    else:
        out_spec = P(LANE_AXIS)
    out = jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=out_spec, check_vma=False)(*args)
    return jax.tree.map(lambda x: x[:num], out) if pad else out


def _gathered(fn):
    """`fn` whose lane-axis outputs are gathered from every device (inside `shard_map`)."""

    def gathered(*args):
        gather = lambda x: jax.lax.all_gather(x, LANE_AXIS, tiled=True)
        return jax.tree.map(gather, fn(*args))

    return gathered


def _filler(x: jax.Array, pad: int) -> jax.Array:
    """`pad` padding lanes for `x`: copies of lane 0, or all-zero keys for a key array
    (a copied key would be a reused key to JAX's key-reuse checker)."""
    if is_key_array(x):
        data = jax.random.key_data(x)
        zeros = jnp.zeros((pad, *data.shape[1:]), data.dtype)
        return jax.random.wrap_key_data(zeros, impl=jax.random.key_impl(x))
    return jnp.repeat(x[:1], pad, axis=0)


__all__ = ["lane_devices", "shard_lanes"]
