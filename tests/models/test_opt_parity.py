"""Flax OPT vs transformers' PyTorch OPT on tiny random configs (float32 ≤ 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
from opt_truth import random_batch, torch_logits

from jaxserve.models.opt.model import forward_jit

TOLERANCE_F32 = 1e-4


@pytest.mark.parametrize("left", [False, True], ids=["right_pad", "left_pad"])
def test_logits_match_torch(opt_loaded, left):
    _, model, _, config, params = opt_loaded
    tokens, mask = random_batch(seed=1, batch=3, length=12, lengths=[12, 7, 3], left=left)
    ours = np.asarray(forward_jit(params, config, tokens, mask))
    theirs = torch_logits(model, tokens, mask)
    valid = mask.astype(bool)
    assert np.max(np.abs(ours[valid] - theirs[valid])) <= TOLERANCE_F32
