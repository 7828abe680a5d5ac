"""Jitted prefill + KV-cache decode, greedy or sampled, with batch and length bucketing."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.models.opt.config import OPTConfig
from jaxserve.models.opt.model import OPT, init_cache, positions_from_mask

MIN_LENGTH_BUCKET = 16
TRACE_COUNT = {"generate": 0}  # incremented at trace time: tests bound recompilation with it


def bucket(n: int, minimum: int = 1) -> int:
    """Smallest power of two >= max(n, minimum): shapes come from a short list."""
    return max(minimum, 1 << max(0, int(n) - 1).bit_length())


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Static decoding choice: greedy, or temperature sampling from the top_k tokens."""

    greedy: bool = True
    top_k: int | None = None


def _choose(logits: jax.Array, key: jax.Array, temperature: jax.Array, sampling: Sampling):
    """Next tokens (B,) from last-position logits (B, V)."""
    if sampling.greedy:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if sampling.top_k is not None:
        kth = jax.lax.top_k(logits, sampling.top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("config", "max_new_tokens", "sampling"))
def generate_padded(
    params,
    tokens,
    mask,
    key,
    temperature,
    *,
    config: OPTConfig,
    max_new_tokens: int,
    sampling: Sampling = Sampling(),
):
    """Generate from left-padded prompts.

    Args:
      tokens, mask: (B, T) left-padded prompt ids and 0/1 mask.
      key: PRNG key (unused when greedy); temperature: scalar float.
    Returns:
      (B, max_new_tokens) int32; after a row emits eos it continues with pad_id.
    """
    TRACE_COUNT["generate"] += 1
    model = OPT(config)
    batch, prompt_len = tokens.shape
    key_valid = jnp.concatenate([mask, jnp.zeros((batch, max_new_tokens), mask.dtype)], 1) > 0
    cache = init_cache(config, batch, prompt_len + max_new_tokens)
    logits, cache = model.apply(params, tokens, positions_from_mask(mask), key_valid, cache, 0)
    step_keys = jax.random.split(key, max_new_tokens)
    first = _choose(logits[:, -1], step_keys[0], temperature, sampling)
    done = first == config.eos_id
    position = mask.sum(axis=1).astype(jnp.int32)  # next position per row

    def step(carry, step_key):
        token, done, position, key_valid, cache, slot = carry
        key_valid = jax.lax.dynamic_update_slice(key_valid, jnp.ones((batch, 1), bool), (0, slot))
        logits, cache = model.apply(
            params, token[:, None], position[:, None], key_valid, cache, slot
        )
        next_token = _choose(logits[:, -1], step_key, temperature, sampling)
        next_token = jnp.where(done, config.pad_id, next_token)
        done = done | (next_token == config.eos_id)
        return (next_token, done, position + 1, key_valid, cache, slot + 1), next_token

    carry = (first, done, position, key_valid, cache, jnp.int32(prompt_len))
    _, rest = jax.lax.scan(step, carry, step_keys[1:])
    return jnp.concatenate([first[:, None], rest.T], axis=1)


def pad_prompts(prompts: Sequence[Sequence[int]], config: OPTConfig, batch: int, length: int):
    """Left-pad prompts into (batch, length) tokens and mask; extra rows are one pad token."""
    tokens = np.full((batch, length), config.pad_id, np.int32)
    mask = np.zeros((batch, length), np.int32)
    mask[len(prompts) :, -1] = 1  # filler rows get one token so they stay well defined
    for row, prompt in enumerate(prompts):
        tokens[row, length - len(prompt) :] = prompt
        mask[row, length - len(prompt) :] = 1
    return tokens, mask


def check_prompts(prompts: Sequence[Sequence[int]], config: OPTConfig, max_new_tokens: int):
    """InputError for empty prompts, bad token ids or prompts that overflow max_positions."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise InputError("prompts: an empty batch or prompt, expected at least one token each")
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > config.max_positions:
        raise InputError(
            f"prompt length {longest} + max_new_tokens {max_new_tokens}: expected "
            f"<= max_positions {config.max_positions}"
        )
    if min(min(p) for p in prompts) < 0 or max(max(p) for p in prompts) >= config.vocab_size:
        raise InputError(f"prompt token ids: expected 0 <= id < {config.vocab_size}")


def generate(
    params: Any,
    config: OPTConfig,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    key: jax.Array | None = None,
    temperature: float = 0.0,
    top_k: int | None = None,
) -> np.ndarray:
    """(len(prompts), max_new_tokens) new tokens; greedy when temperature == 0."""
    if max_new_tokens <= 0:
        raise InputError(f"max_new_tokens={max_new_tokens}: expected a positive int")
    check_prompts(prompts, config, max_new_tokens)
    batch = bucket(len(prompts))
    length = bucket(max(len(p) for p in prompts), MIN_LENGTH_BUCKET)
    tokens, mask = pad_prompts(prompts, config, batch, length)
    sampling = Sampling(greedy=temperature == 0.0, top_k=top_k)
    key = jax.random.key(0) if key is None else key
    out = generate_padded(
        params,
        tokens,
        mask,
        key,
        jnp.float32(max(temperature, 1e-6)),
        config=config,
        max_new_tokens=bucket(max_new_tokens),
        sampling=sampling,
    )
    return np.asarray(out)[: len(prompts), :max_new_tokens]
