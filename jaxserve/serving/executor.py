"""Batch execution on Flax OPT models: fixed-shape first-token scoring or greedy generation.

Every batch of b requests runs on a (b, prompt_tokens) array, whatever the prompts' lengths
(right-padded for scoring, left-padded for generation), so one compiled program per batch
size serves every batch and `jaxserve profile --call serve` times exactly this code path.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.models.opt.config import OPTConfig
from jaxserve.models.opt.generate import Sampling, generate_padded
from jaxserve.models.opt.model import forward
from jaxserve.serving.tasks import Prompt

MODES = ("score", "generate")
MAX_CHOICES = 8  # choice tokens per request are padded to this (one compiled shape)
NO_ANSWER = -1  # single-choice request whose greedy token is not the choice


@functools.partial(jax.jit, static_argnames=("config",))
def score_last(params, tokens, mask, last, choice_tokens, *, config: OPTConfig):
    """Log-probs of the choice tokens after each prompt, and the greedy next token.

    Args:
      tokens, mask: (B, T) right-padded prompt ids and 0/1 mask; last: (B,) last real index.
      choice_tokens: (B, C) scored token of each choice (pad with 0; ignored on the host).
    Returns:
      (B, C) float32 log-probabilities and (B,) int32 greedy tokens.
    """
    logits = forward(params, config, tokens, mask)  # (B, T, V)
    final = jnp.take_along_axis(logits, last[:, None, None], axis=1)[:, 0]  # (B, V)
    logprobs = jax.nn.log_softmax(final, axis=-1)
    return jnp.take_along_axis(logprobs, choice_tokens, axis=1), jnp.argmax(final, -1)


def pack_scoring(prompts: Sequence[Prompt], length: int, pad_id: int):
    """(tokens, mask, last, choice_tokens) numpy arrays of one scoring batch."""
    b = len(prompts)
    tokens = np.full((b, length), pad_id, np.int32)
    mask = np.zeros((b, length), np.int32)
    choices = np.zeros((b, MAX_CHOICES), np.int32)
    last = np.zeros(b, np.int32)
    for i, p in enumerate(prompts):
        tokens[i, : len(p.tokens)] = p.tokens
        mask[i, : len(p.tokens)] = 1
        last[i] = len(p.tokens) - 1
        choices[i, : len(p.choice_tokens)] = p.choice_tokens
    return tokens, mask, last, choices


def pack_generation(prompts: Sequence[Prompt], length: int, pad_id: int):
    """(tokens, mask) numpy arrays, left-padded, of one generation batch."""
    b = len(prompts)
    tokens = np.full((b, length), pad_id, np.int32)
    mask = np.zeros((b, length), np.int32)
    for i, p in enumerate(prompts):
        tokens[i, length - len(p.tokens) :] = p.tokens
        mask[i, length - len(p.tokens) :] = 1
    return tokens, mask


def answers_from_scores(prompts: Sequence[Prompt], logprobs, greedy) -> np.ndarray:
    """Chosen answer index per request (argmax over its choices; greedy match for one)."""
    out = np.empty(len(prompts), np.int64)
    for i, p in enumerate(prompts):
        n = len(p.choice_tokens)
        if n == 1:
            out[i] = 0 if int(greedy[i]) == p.choice_tokens[0] else NO_ANSWER
        else:
            out[i] = int(np.argmax(logprobs[i, :n]))
    return out


def answers_from_generation(prompts: Sequence[Prompt], generated) -> np.ndarray:
    """The choice whose token equals the first generated token, else NO_ANSWER."""
    first = np.asarray(generated)[:, 0]
    return np.array(
        [
            p.choice_tokens.index(int(t)) if int(t) in p.choice_tokens else NO_ANSWER
            for p, t in zip(prompts, first, strict=True)
        ],
        np.int64,
    )


class ModelRunner:
    """One model's params on one device; `run(prompts)` serves a batch and times it."""

    def __init__(
        self,
        config: OPTConfig,
        params: Any,
        prompt_tokens: int,
        mode: str = "score",
        gen_tokens: int = 0,
        device=None,
    ):
        if mode not in MODES:
            raise InputError(f"mode = {mode!r}: expected one of {list(MODES)}")
        if prompt_tokens + gen_tokens > config.max_positions:
            raise InputError(
                f"prompt_tokens + gen_tokens = {prompt_tokens + gen_tokens}: "
                f"expected <= max_positions {config.max_positions} of {config.name}"
            )
        self.config, self.mode = config, mode
        self.prompt_tokens, self.gen_tokens = prompt_tokens, max(gen_tokens, 1)
        self.device = device
        self.params = jax.device_put(params, device) if device is not None else params

    def _put(self, *arrays):
        return [
            jax.device_put(a, self.device) if self.device is not None else jnp.asarray(a)
            for a in arrays
        ]

    def execute(self, prompts: Sequence[Prompt]) -> np.ndarray:
        """Answer index per request (NO_ANSWER when a generated/greedy token matches none)."""
        c = self.config
        if self.mode == "score":
            packed = self._put(*pack_scoring(prompts, self.prompt_tokens, c.pad_id))
            logprobs, greedy = score_last(self.params, *packed, config=c)
            return answers_from_scores(prompts, np.asarray(logprobs), np.asarray(greedy))
        tokens, mask = self._put(*pack_generation(prompts, self.prompt_tokens, c.pad_id))
        out = generate_padded(
            self.params,
            tokens,
            mask,
            jax.random.key(0),
            jnp.float32(1.0),
            config=c,
            max_new_tokens=self.gen_tokens,
            sampling=Sampling(),
        )
        return answers_from_generation(prompts, out)

    def run(self, prompts: Sequence[Prompt]) -> tuple[np.ndarray, float]:
        """(answers, wall seconds) of one batch, host packing and result fetch included."""
        start = time.perf_counter()
        answers = self.execute(prompts)
        return answers, time.perf_counter() - start

    def warmup(self, max_batch: int, prompt: Prompt) -> list[float]:
        """Compile every batch size 1..max_batch (before the clock starts); compile seconds."""
        return [self.run([prompt] * b)[1] for b in range(1, max_batch + 1)]


def random_prompt(config: OPTConfig, prompt_tokens: int, seed: int = 0) -> Prompt:
    """A full-length prompt of random ids with four choices (profiling, warm-up)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, config.vocab_size, prompt_tokens)
    return Prompt(
        task="random", tokens=tuple(int(i) for i in ids), choice_tokens=(4, 5, 6, 7), label=0
    )
