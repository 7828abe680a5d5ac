"""Action and observation spaces with gymnax's interface (`sample`, `contains`, `shape`).

jaxserve implements them itself so that gymnax is not a runtime dependency; the attribute
names (`n`, `low`, `high`, `shape`, `dtype`) are gymnax's, so its wrappers read them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


class Space:
    """A set of values with a jittable `sample(key)` and `contains(x)`."""

    shape: tuple[int, ...]
    dtype: jnp.dtype

    def sample(self, key: jax.Array) -> jax.Array:
        raise NotImplementedError

    def contains(self, x: jax.Array) -> jax.Array:
        raise NotImplementedError


class Discrete(Space):
    """The integers 0 .. n - 1 (one action per model, plus "reject" when allowed)."""

    def __init__(self, num_categories: int, dtype=jnp.int32):
        if num_categories < 1:
            raise ValueError(f"Discrete({num_categories}): expected at least one category")
        self.n = int(num_categories)
        self.shape = ()
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Discrete({self.n})"

    def sample(self, key: jax.Array) -> jax.Array:
        """A uniformly random category."""
        return jax.random.randint(key, self.shape, 0, self.n, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        """Whether `x` is an integer in [0, n) (a scalar bool array)."""
        x = jnp.asarray(x)
        integral = jnp.all(x == jnp.round(x)) if jnp.issubdtype(x.dtype, jnp.floating) else True
        return jnp.logical_and(integral, jnp.logical_and(x >= 0, x < self.n))


class Box(Space):
    """Arrays of `shape` with `low <= x <= high` elementwise; bounds may be infinite.

    `sample` draws bounded dimensions uniformly, and half-bounded ones as the finite bound
    plus (or minus) an exponential draw, as gymnasium does; gymnax's `Box` would draw
    `uniform(low, inf)`, which is not finite.
    """

    def __init__(self, low, high, shape: tuple[int, ...], dtype=jnp.float32):
        self.low = np.broadcast_to(np.asarray(low, dtype), shape)
        self.high = np.broadcast_to(np.asarray(high, dtype), shape)
        if np.any(self.low > self.high):
            raise ValueError(f"Box: low {self.low} above high {self.high}")
        self.shape = tuple(shape)
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Box(low={self.low.tolist()}, high={self.high.tolist()}, shape={self.shape})"

    def sample(self, key: jax.Array) -> jax.Array:
        """A random element: uniform where bounded, exponential beyond a single bound."""
        key_uniform, key_exp, key_normal = jax.random.split(key, 3)
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        low_finite, high_finite = jnp.isfinite(low), jnp.isfinite(high)
        safe_low, safe_high = jnp.where(low_finite, low, 0), jnp.where(high_finite, high, 0)
        uniform = jax.random.uniform(key_uniform, self.shape, minval=safe_low, maxval=safe_high)
        exponential = jax.random.exponential(key_exp, self.shape)
        x = jax.random.normal(key_normal, self.shape)  # unbounded both ways
        x = jnp.where(~low_finite & high_finite, safe_high - exponential, x)  # (-inf, high]
        x = jnp.where(low_finite & ~high_finite, safe_low + exponential, x)  # [low, inf)
        x = jnp.where(low_finite & high_finite, uniform, x)
        return x.astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        """Whether `x` has this shape and lies within the bounds (a scalar bool array)."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.bool_(False)
        return jnp.all((x >= self.low) & (x <= self.high))


__all__ = ["Box", "Discrete", "Space"]
