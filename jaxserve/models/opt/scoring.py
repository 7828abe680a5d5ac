"""Batched log-likelihood of answer choices given a context (multiple-choice evaluation)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.models.opt.config import OPTConfig
from jaxserve.models.opt.generate import MIN_LENGTH_BUCKET, bucket
from jaxserve.models.opt.model import forward

MAX_SCORING_BATCH = 32


@functools.partial(jax.jit, static_argnames=("config",))
def sequence_logprobs(params, tokens, mask, target_mask, *, config: OPTConfig):
    """Sum of log p(token t | tokens < t) over target_mask positions.

    Args:
      tokens, mask, target_mask: (B, T) right-padded ids, 0/1 mask, 0/1 targets to score.
    Returns:
      (B,) float32 log-likelihoods and (B,) bool: every target was the greedy choice.
    """
    logits = forward(params, config, tokens, mask)[:, :-1]  # predicts tokens[:, 1:]
    logprobs = jax.nn.log_softmax(logits, axis=-1)
    targets = tokens[:, 1:]
    picked = jnp.take_along_axis(logprobs, targets[..., None], axis=-1)[..., 0]
    scored = target_mask[:, 1:] > 0
    is_greedy = jnp.all((jnp.argmax(logits, -1) == targets) | ~scored, axis=1)
    return jnp.sum(jnp.where(scored, picked, 0.0), axis=1), is_greedy


def _rows(contexts: Sequence[Sequence[int]], choices: Sequence[Sequence[Sequence[int]]]):
    """Flatten (question, choice) pairs to (tokens, first scored index)."""
    if len(contexts) != len(choices):
        raise InputError(
            f"choices: {len(choices)} lists for {len(contexts)} contexts, "
            "expected one list per context"
        )
    rows = []
    for context, options in zip(contexts, choices, strict=True):
        if not context or not options or any(len(o) == 0 for o in options):
            raise InputError(
                "contexts/choices: empty context, choice list or choice, "
                "expected at least one token each"
            )
        rows += [(list(context) + list(option), len(context)) for option in options]
    return rows


def score_choices(
    params: Any,
    config: OPTConfig,
    contexts: Sequence[Sequence[int]],
    choices: Sequence[Sequence[Sequence[int]]],
) -> list[np.ndarray]:
    """Per context, the log-likelihood (num_choices,) of each choice's tokens after it."""
    rows = _rows(contexts, choices)
    longest = max(len(r[0]) for r in rows)
    if longest > config.max_positions:
        raise InputError(f"context+choice length {longest}: expected <= {config.max_positions}")
    length = bucket(longest, MIN_LENGTH_BUCKET)
    scores = []
    for start in range(0, len(rows), MAX_SCORING_BATCH):
        chunk = rows[start : start + MAX_SCORING_BATCH]
        tokens, mask, target = _pack(chunk, config, bucket(len(chunk)), length)
        logprob, _ = sequence_logprobs(params, tokens, mask, target, config=config)
        scores.append(np.asarray(logprob)[: len(chunk)])
    flat = np.concatenate(scores)
    splits = np.cumsum([len(options) for options in choices])[:-1]
    return np.split(flat, splits)


def _pack(rows, config: OPTConfig, batch: int, length: int):
    tokens = np.full((batch, length), config.pad_id, np.int32)
    mask = np.zeros((batch, length), np.int32)
    target = np.zeros((batch, length), np.int32)
    mask[len(rows) :, 0] = 1  # filler rows: one token, nothing scored
    for i, (row, first) in enumerate(rows):
        tokens[i, : len(row)] = row
        mask[i, : len(row)] = 1
        target[i, first : len(row)] = 1
    return tokens, mask, target


def predict_choices(
    params: Any, config: OPTConfig, contexts, choices, length_normalise: bool = False
) -> np.ndarray:
    """Index of the most likely choice per context (optionally per-token normalised)."""
    scores = score_choices(params, config, contexts, choices)
    if length_normalise:
        scores = [
            s / np.array([len(o) for o in opts]) for s, opts in zip(scores, choices, strict=True)
        ]
    return np.array([int(np.argmax(s)) for s in scores])
