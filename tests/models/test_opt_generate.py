"""KV-cache decoding, greedy/sampled generation and bucketing against PyTorch OPT."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from opt_truth import random_batch

from jaxserve.errors import InputError
from jaxserve.models.opt import generate as gen
from jaxserve.models.opt.model import OPT, forward_jit, init_cache, positions_from_mask

NEW_TOKENS = 32


def test_cached_decoding_equals_full_forward(opt_loaded):
    _, _, _, config, params = opt_loaded
    tokens, mask = random_batch(seed=2, batch=2, length=10, lengths=[10, 6], left=True)
    full = np.asarray(forward_jit(params, config, tokens, mask))
    prefill_len, model = 6, OPT(config)
    cache = init_cache(config, 2, tokens.shape[1])
    positions = np.asarray(positions_from_mask(jnp.asarray(mask)))
    key_valid = np.zeros_like(mask)
    key_valid[:, :prefill_len] = mask[:, :prefill_len]
    logits, cache = model.apply(
        params, tokens[:, :prefill_len], positions[:, :prefill_len], key_valid, cache, 0
    )
    steps = [np.asarray(logits)]
    for slot in range(prefill_len, tokens.shape[1]):
        key_valid[:, slot] = mask[:, slot]
        logits, cache = model.apply(
            params,
            tokens[:, slot : slot + 1],
            positions[:, slot : slot + 1],
            key_valid,
            cache,
            slot,
        )
        steps.append(np.asarray(logits))
    cached = np.concatenate(steps, axis=1)
    valid = mask.astype(bool)
    np.testing.assert_allclose(cached[valid], full[valid], atol=1e-5)


def _torch_greedy(model, prompts, config):
    batch = len(prompts)
    length = max(map(len, prompts))
    tokens, mask = gen.pad_prompts(prompts, config, batch, length)
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.as_tensor(tokens, dtype=torch.long),
            attention_mask=torch.as_tensor(mask, dtype=torch.long),
            do_sample=False,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=0,
            pad_token_id=config.pad_id,
            eos_token_id=config.eos_id,
        )
    new = out[:, length:].numpy()
    # transformers stops when every row is done; our rows continue with pad_id.
    return np.pad(new, ((0, 0), (0, NEW_TOKENS - new.shape[1])), constant_values=config.pad_id)


def test_greedy_generation_matches_torch_generate(opt_loaded):
    _, model, _, config, params = opt_loaded
    rng = np.random.default_rng(3)
    prompts = [list(rng.integers(3, config.vocab_size, n)) for n in (9, 4, 13)]
    ours = gen.generate(params, config, prompts, NEW_TOKENS)
    np.testing.assert_array_equal(ours, _torch_greedy(model, prompts, config))


def test_sampled_generation_is_seeded_and_valid(opt_loaded):
    _, _, _, config, params = opt_loaded
    prompts = [[5, 6, 7], [8, 9]]
    sample = lambda seed: gen.generate(
        params, config, prompts, 8, key=jax.random.key(seed), temperature=1.0, top_k=20
    )
    first, again, other = sample(0), sample(0), sample(1)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (2, 8) and first.min() >= 0 and first.max() < config.vocab_size


def test_bucketing_bounds_recompilation(opt_loaded):
    _, _, _, config, params = opt_loaded
    gen.generate(params, config, [[5, 6, 7]], 4)
    before = gen.TRACE_COUNT["generate"]
    for prompts in ([[5, 6]], [[5] * 9, [6] * 3], [[7] * 16, [8], [9] * 2]):
        gen.generate(params, config, prompts, 3)
    # batch buckets 1, 2, 4 share the length bucket 16 and new-token bucket 4.
    assert gen.TRACE_COUNT["generate"] - before <= 2


@pytest.mark.parametrize(
    "prompts, new", [([], 4), ([[]], 4), ([[5, 999]], 4), ([[5]], 0), ([[5] * 120], 16)]
)
def test_bad_generation_input(opt_loaded, prompts, new):
    _, _, _, config, params = opt_loaded
    with pytest.raises(InputError):
        gen.generate(params, config, prompts, new)
