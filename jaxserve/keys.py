"""PRNG key helpers shared by checkpoints, lane sharding and the benchmarks."""

from __future__ import annotations

import jax


def is_key_array(x) -> bool:
    """Whether `x` is a typed PRNG key array (`jax.random.key`), not raw key data."""
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


__all__ = ["is_key_array"]
