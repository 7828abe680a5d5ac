"""Multiple-choice log-likelihoods against PyTorch OPT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jaxserve.errors import InputError
from jaxserve.models.opt.scoring import predict_choices, score_choices


def _torch_loglik(model, context, choice):
    tokens = torch.as_tensor([context + choice])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=tokens).logits[0].double(), -1)
    return sum(float(logprobs[len(context) + i - 1, t]) for i, t in enumerate(choice))


def test_choice_logliks_match_torch(opt_loaded):
    _, model, _, config, params = opt_loaded
    contexts = [[5, 9, 17, 33], [40, 41]]
    choices = [[[7], [8, 9, 10], [11, 12]], [[60, 61, 62, 63], [70]]]
    ours = score_choices(params, config, contexts, choices)
    for context, options, scores in zip(contexts, choices, ours, strict=True):
        expected = [_torch_loglik(model, context, option) for option in options]
        np.testing.assert_allclose(scores, expected, atol=1e-4)
    predicted = predict_choices(params, config, contexts, choices)
    assert list(predicted) == [int(np.argmax(s)) for s in ours]


@pytest.mark.parametrize("contexts, choices", [([[5]], []), ([[]], [[[6]]]), ([[5]], [[[]]])])
def test_bad_scoring_input(opt_loaded, contexts, choices):
    _, _, _, config, params = opt_loaded
    with pytest.raises(InputError):
        score_choices(params, config, contexts, choices)
