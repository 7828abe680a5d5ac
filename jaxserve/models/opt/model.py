"""OPT decoder in Flax Linen, with an explicit KV cache.

Axis letters: B batch, T query positions, S key slots, D model, E embedding, N heads,
H head dim, F MLP hidden, V vocabulary, L layers.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.models.opt.config import LAYER_NORM_EPSILON, POSITION_OFFSET, OPTConfig

Cache = tuple[dict[str, jax.Array], ...]  # per layer {'k', 'v'}: (B, S, N, H)
INIT_STD = 0.02
MASKED_SCORE = -1e30  # finite, so a row with no valid key gives uniform weights, not NaN


def positions_from_mask(mask: jax.Array) -> jax.Array:
    """Token positions (B, T) from a 0/1 attention mask, as OPT counts them: pads get -1."""
    mask = mask.astype(jnp.int32)
    return jnp.cumsum(mask, axis=1) * mask - 1


class LayerNorm(nn.Module):
    """LayerNorm with float32 statistics, output in the input dtype."""

    dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """x (..., D) -> (..., D)."""
        width = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (width,), self.dtype)
        bias = self.param("bias", nn.initializers.zeros, (width,), self.dtype)
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + LAYER_NORM_EPSILON)
        return (y * scale.astype(jnp.float32) + bias.astype(jnp.float32)).astype(x.dtype)


def _weight(module: nn.Module, name: str, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return module.param(name, nn.initializers.normal(INIT_STD), shape, dtype)


def _bias(module: nn.Module, name: str, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return module.param(name, nn.initializers.zeros, shape, dtype)


class Projection(nn.Module):
    """Einsum projection with a named kernel layout and optional bias."""

    equation: str
    kernel_shape: tuple[int, ...]
    bias_shape: tuple[int, ...] | None
    dtype: Any

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply einsum(equation, x, kernel) + bias."""
        y = jnp.einsum(self.equation, x, _weight(self, "kernel", self.kernel_shape, self.dtype))
        if self.bias_shape is not None:
            y = y + _bias(self, "bias", self.bias_shape, self.dtype)
        return y


class Attention(nn.Module):
    """Multi-head causal self-attention reading and writing a KV cache."""

    config: OPTConfig

    @nn.compact
    def __call__(self, x, attend, cache, cache_index):
        """x (B,T,D), attend (B,T,S) bool, cache {'k','v'} (B,S,N,H) -> (B,T,D), cache."""
        c, dt = self.config, self.config.jnp_dtype
        d, n, h = c.model_dim, c.num_heads, c.head_dim
        proj = lambda name: Projection("btd,dnh->btnh", (d, n, h), (n, h), dt, name=name)
        # OPT scales q after its bias, before the dot product; keep that order for parity.
        q = proj("q_proj")(x) * jnp.asarray(h**-0.5, dt)
        k_new, v_new = proj("k_proj")(x), proj("v_proj")(x)
        k = jax.lax.dynamic_update_slice(
            cache["k"], k_new.astype(cache["k"].dtype), (0, cache_index, 0, 0)
        )
        v = jax.lax.dynamic_update_slice(
            cache["v"], v_new.astype(cache["v"].dtype), (0, cache_index, 0, 0)
        )
        scores = jnp.einsum("btnh,bsnh->bnts", q, k).astype(jnp.float32)
        scores = jnp.where(attend[:, None], scores, MASKED_SCORE)
        weights = jax.nn.softmax(scores, axis=-1).astype(dt)
        out = jnp.einsum("bnts,bsnh->btnh", weights, v)
        out = Projection("btnh,nhd->btd", (n, h, d), (d,), dt, name="out_proj")(out)
        return out, {"k": k, "v": v}


class DecoderLayer(nn.Module):
    """One OPT block: attention and ReLU MLP, each with a residual, pre- or post-LN."""

    config: OPTConfig

    @nn.compact
    def __call__(self, x, attend, cache, cache_index):
        """x (B,T,D) -> (B,T,D), updated layer cache."""
        c, dt = self.config, self.config.jnp_dtype
        attn_norm = LayerNorm(dt, name="self_attn_layer_norm")
        mlp_norm = LayerNorm(dt, name="final_layer_norm")
        y = attn_norm(x) if c.pre_layer_norm else x
        y, cache = Attention(c, name="self_attn")(y, attend, cache, cache_index)
        x = x + y
        x = x if c.pre_layer_norm else attn_norm(x)
        y = mlp_norm(x) if c.pre_layer_norm else x
        y = Projection("btd,df->btf", (c.model_dim, c.mlp_dim), (c.mlp_dim,), dt, name="fc1")(y)
        y = jax.nn.relu(y)
        y = Projection("btf,fd->btd", (c.mlp_dim, c.model_dim), (c.model_dim,), dt, name="fc2")(y)
        x = x + y
        return (x if c.pre_layer_norm else mlp_norm(x)), cache


class OPT(nn.Module):
    """OPT causal LM with a tied head; logits are float32."""

    config: OPTConfig

    @nn.compact
    def __call__(self, tokens, positions, key_valid, cache, cache_index=0):
        """Run T new tokens against a cache of S slots.

        Args:
          tokens: (B, T) int token ids.
          positions: (B, T) int positions from positions_from_mask (pads are -1).
          key_valid: (B, S) bool, slots holding real tokens (after this call's writes).
          cache: per-layer {'k','v'} (B, S, N, H); new keys go to slots cache_index + t.
          cache_index: scalar int, slot of the first new token.
        Returns:
          logits (B, T, V) float32 and the updated cache.
        """
        c, dt = self.config, self.config.jnp_dtype
        embed = _weight(self, "embed_tokens", (c.vocab_size, c.embed_dim), dt)  # (V, E)
        position_table = _weight(
            self, "embed_positions", (c.max_positions + POSITION_OFFSET, c.model_dim), dt
        )
        x = jnp.take(embed, tokens, axis=0)  # (B, T, E)
        if c.projects_embeddings:
            x = Projection("bte,ed->btd", (c.embed_dim, c.model_dim), None, dt, name="project_in")(
                x
            )
        x = x + jnp.take(position_table, positions + POSITION_OFFSET, axis=0)
        attend = causal_attend(key_valid, tokens.shape[1], cache_index)
        new_cache = []
        for i in range(c.num_layers):
            x, layer_cache = DecoderLayer(c, name=f"layers_{i}")(x, attend, cache[i], cache_index)
            new_cache.append(layer_cache)
        if c.final_layer_norm:
            x = LayerNorm(dt, name="final_layer_norm")(x)
        if c.projects_embeddings:
            x = Projection("btd,de->bte", (c.model_dim, c.embed_dim), None, dt, name="project_out")(
                x
            )
        logits = jnp.einsum("bte,ve->btv", x, embed)
        return logits.astype(jnp.float32), tuple(new_cache)


def causal_attend(key_valid: jax.Array, num_queries: int, cache_index) -> jax.Array:
    """(B, T, S) bool: query t (at slot cache_index + t) sees valid slots s <= its own."""
    query_slot = cache_index + jnp.arange(num_queries)[:, None]  # (T, 1)
    key_slot = jnp.arange(key_valid.shape[1])[None, :]  # (1, S)
    return (key_slot <= query_slot)[None] & key_valid[:, None, :].astype(bool)


def init_cache(config: OPTConfig, batch: int, num_slots: int) -> Cache:
    """An empty KV cache: per layer {'k','v'} zeros (B, S, N, H)."""
    shape = (batch, num_slots, config.num_heads, config.head_dim)
    zeros = lambda: jnp.zeros(shape, config.jnp_dtype)
    return tuple({"k": zeros(), "v": zeros()} for _ in range(config.num_layers))


def forward(params, config: OPTConfig, tokens, mask) -> jax.Array:
    """Full forward without a persistent cache: tokens, mask (B,T) -> logits (B,T,V) float32."""
    mask = jnp.asarray(mask)
    cache = init_cache(config, tokens.shape[0], tokens.shape[1])
    logits, _ = OPT(config).apply(params, tokens, positions_from_mask(mask), mask, cache, 0)
    return logits


forward_jit = jax.jit(forward, static_argnames=("config",))


def abstract_params(config: OPTConfig) -> Any:
    """ShapeDtypeStructs of the params pytree (traced only: no compile, no device work)."""
    tokens = jnp.zeros((1, 1), jnp.int32)
    cache = init_cache(config, 1, 1)
    init = lambda k: OPT(config).init(k, tokens, tokens, tokens == 0, cache, 0)
    return jax.eval_shape(init, jax.random.key(0))


def init_params(config: OPTConfig, key: jax.Array) -> Any:
    """Random parameters (normal(0.02) weights, zero biases, unit norms) for config."""
    shapes = abstract_params(config)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())

    def fill(path, leaf):
        name = getattr(path[-1], "key", "")
        if name in ("bias", "scale"):
            return jnp.full(leaf.shape, 0.0 if name == "bias" else 1.0, leaf.dtype)
        values = rng.standard_normal(leaf.shape, np.float32) * np.float32(INIT_STD)
        return jnp.asarray(values, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)
