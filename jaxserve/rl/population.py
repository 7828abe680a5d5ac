"""Populations: `jit(vmap(...))` of the learner over (seed, hyperparameters), sharded over devices.

The population axis is the leading axis of every leaf of the stacked `LearnerState`. It is
laid out over a 1-D device mesh (axis "pop") with `jax.sharding.NamedSharding`; jit keeps
that layout through `run_chunk`, so each device trains its share of the members and no
member ever talks to another. With one device this is plain vmap. Several processes: call
`jax.distributed.initialize()` in every process before anything else; `jax.devices()` then
lists every process's devices, the same mesh spans them, each process must feed the same
keys and hyperparameters, and each trains the members of its own devices (docs/scaling.md).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxserve import multihost
from jaxserve.errors import InputError
from jaxserve.rl.config import HParams, as_arrays, stack_hparams
from jaxserve.rl.dqn import Learner

POP_AXIS = "pop"


def population_mesh(size: int) -> Mesh:
    """A 1-D mesh over as many devices as divide the population size (at most all)."""
    devices = jax.devices()
    count = max(d for d in range(1, len(devices) + 1) if size % d == 0)
    return Mesh(np.asarray(devices[:count]), (POP_AXIS,))


def shard_population(tree, mesh: Mesh):
    """Place every leaf's leading (population) axis across the mesh.

    Several processes: every process passes the same values and fills its own devices'
    members (`jax.device_put` cannot place onto other processes' devices).
    """
    sharding = NamedSharding(mesh, PartitionSpec(POP_AXIS))
    put = multihost.global_array if multihost.is_multiprocess() else jax.device_put
    return jax.tree.map(lambda x: put(x, sharding), tree)


def member_keys(seed: int, size: int) -> jax.Array:
    """One independent key per member (split of the run's seed)."""
    return jax.random.split(jax.random.key(seed), size)


def broadcast_hparams(hparams: HParams | list[HParams], size: int) -> HParams:
    """(M,) hyperparameters: one per member, or the same one repeated."""
    if isinstance(hparams, list):
        if len(hparams) != size:
            raise InputError(f"population: {len(hparams)} hyperparameter sets for {size} members")
        return stack_hparams(hparams)
    hp = as_arrays(hparams)
    return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (size,) + np.shape(x)), hp)


def make_population_fns(learner: Learner, size: int):
    """(init(keys, hparams, env_params=None) -> states, run_chunk(states) -> (states, metrics)).

    Jitted and sharded. `env_params`: per-member scenario params (leaves (M, ...)), e.g. one
    placement each; None = the adapter's for every member.
    """
    mesh = population_mesh(size)
    run_chunk = jax.jit(jax.vmap(learner.run_chunk), donate_argnums=0)
    # Members' states laid out as run_chunk returns them: otherwise XLA replicates init's
    # outputs and the second chunk compiles run_chunk again for the sharded layout.
    vinit = jax.jit(
        jax.vmap(learner.init), out_shardings=NamedSharding(mesh, PartitionSpec(POP_AXIS))
    )

    def init(keys, hparams, env_params=None):
        shard = lambda tree: shard_population(tree, mesh)
        return vinit(shard(keys), shard(hparams), shard(env_params))

    return init, run_chunk, mesh


def train_population(learner: Learner, keys: jax.Array, hparams: HParams, env_params=None):
    """Whole runs of every member in one call: `jit(vmap(train))`, sharded (tests, benches).

    `env_params`: per-member scenario params (leaves (M, ...)) or None (the adapter's).
    """
    mesh = population_mesh(keys.shape[0])
    shard = lambda tree: shard_population(tree, mesh)
    train = jax.jit(jax.vmap(learner.train))
    return train(shard(keys), shard(hparams), shard(env_params))


def select_members(tree, indices, mesh: Mesh):
    """The members at `indices` (leading axis), laid out over `mesh` (a smaller population).

    Successive halving uses it between chunks: the survivors' states move to a population of
    their own size, so dropped members cost nothing afterwards (docs/python-api.md).
    """
    idx = np.asarray(indices, np.int32)
    return shard_population(jax.tree.map(lambda x: x[idx], tree), mesh)
