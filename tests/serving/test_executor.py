"""Batch execution: packing, answer extraction, and a real run on a cpu-demo model."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.models.opt.config import get_preset
from jaxserve.models.opt.model import init_params
from jaxserve.serving.executor import (
    NO_ANSWER,
    ModelRunner,
    answers_from_scores,
    pack_generation,
    pack_scoring,
)
from jaxserve.serving.tasks import Prompt

P1 = Prompt("t", (2, 10, 11), (20, 21, 22), 2)
P2 = Prompt("t", (2, 12), (30,), 0)


def test_pack_scoring_right_pads_to_the_fixed_length():
    tokens, mask, last, choices = pack_scoring([P1, P2], length=5, pad_id=1)
    assert tokens.shape == mask.shape == (2, 5)
    assert tokens[1].tolist() == [2, 12, 1, 1, 1] and mask[1].tolist() == [1, 1, 0, 0, 0]
    assert last.tolist() == [2, 1] and choices[0, :3].tolist() == [20, 21, 22]
    tokens, mask = pack_generation([P2], length=4, pad_id=1)
    assert tokens[0].tolist() == [1, 1, 2, 12] and mask[0].tolist() == [0, 0, 1, 1]


def test_answers_argmax_over_choices_and_greedy_match_for_one_choice():
    logprobs = np.array([[-3.0, -1.0, -2.0, 0.0], [-1.0, 0.0, 0.0, 0.0]])
    assert answers_from_scores([P1, P2], logprobs, np.array([5, 30])).tolist() == [1, 0]
    assert answers_from_scores([P1, P2], logprobs, np.array([5, 31])).tolist() == [1, NO_ANSWER]


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_runner_serves_a_batch(mode):
    config = get_preset("cpu-demo-s")
    runner = ModelRunner(config, init_params(config, jax.random.key(0)), 8, mode, gen_tokens=2)
    answers, seconds = runner.run([P1, P2, P1])
    assert answers.shape == (3,) and seconds > 0
    assert all(a == NO_ANSWER or 0 <= a < 3 for a in answers)


def test_runner_rejects_prompts_longer_than_the_model():
    config = get_preset("cpu-demo-s")
    with pytest.raises(InputError, match="max_positions"):
        ModelRunner(config, None, config.max_positions, "generate", gen_tokens=4)
