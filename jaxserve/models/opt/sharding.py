"""Tensor parallelism: OPT params sharded over a 1-D device mesh axis 'tp'.

Attention is split by heads (N) and the MLP by its hidden width (F) — the Megatron layout, so
each layer needs one all-reduce after out_proj and one after fc2. The tied embedding/LM head
is split over the vocabulary (V) when V divides evenly.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxserve.errors import InputError
from jaxserve.models.opt.config import OPTConfig

TP_AXIS = "tp"
TP = TP_AXIS  # short alias for the spec table
# Parameter name path suffix -> partition spec; anything not listed is replicated.
SPEC_RULES: dict[tuple[str, ...], PartitionSpec] = {
    **{(p, "kernel"): PartitionSpec(None, TP, None) for p in ("q_proj", "k_proj", "v_proj")},
    **{(p, "bias"): PartitionSpec(TP, None) for p in ("q_proj", "k_proj", "v_proj")},
    ("out_proj", "kernel"): PartitionSpec(TP, None, None),
    ("fc1", "kernel"): PartitionSpec(None, TP),
    ("fc1", "bias"): PartitionSpec(TP),
    ("fc2", "kernel"): PartitionSpec(TP, None),
}


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first num_devices devices (all by default)."""
    devices = jax.devices()
    count = len(devices) if num_devices is None else num_devices
    if not 1 <= count <= len(devices):
        raise InputError(f"num_devices={num_devices}: expected 1..{len(devices)}")
    return Mesh(np.array(devices[:count]), (TP_AXIS,))


def _spec(path: tuple[Any, ...], leaf: jax.Array, config: OPTConfig) -> PartitionSpec:
    names = tuple(getattr(k, "key", str(k)) for k in path)
    if names[-1] == "embed_tokens":
        return PartitionSpec(TP, None)
    return SPEC_RULES.get(names[-2:], PartitionSpec())


def param_specs(params: Any, config: OPTConfig, mesh: Mesh) -> Any:
    """A pytree of PartitionSpec matching params; InputError if the mesh does not divide."""
    size = mesh.shape[TP_AXIS]
    for field in ("num_heads", "mlp_dim"):
        if getattr(config, field) % size:
            raise InputError(
                f"OPT config field {field}={getattr(config, field)}: expected a "
                f"multiple of the tensor-parallel size {size}"
            )
    specs = jax.tree_util.tree_map_with_path(lambda p, x: _spec(p, x, config), params)
    if config.vocab_size % size:  # uneven vocabulary: keep the embedding whole
        specs["params"]["embed_tokens"] = PartitionSpec()
    return specs


def shard_params(params: Any, config: OPTConfig, mesh: Mesh) -> Any:
    """params placed on mesh with the tensor-parallel layout."""
    specs = param_specs(params, config, mesh)
    shardings = jax.tree.map(lambda s: NamedSharding(mesh, s), specs)
    return jax.device_put(params, shardings)
