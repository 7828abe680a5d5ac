"""Session fixtures: tiny random HF OPT models saved to tmp dirs, and our loaded params."""

from __future__ import annotations

import pytest
from opt_truth import LAYOUTS, build_hf_model, save_hf_model

from jaxserve.models.opt.hf import load_hf_model


@pytest.fixture(scope="session", params=sorted(LAYOUTS))
def hf_opt(request, tmp_path_factory):
    """(layout name, torch model, saved dir) for each layout."""
    model = build_hf_model(seed=len(request.param), **LAYOUTS[request.param])
    path = save_hf_model(model, tmp_path_factory.mktemp(request.param))
    return request.param, model, path


@pytest.fixture(scope="session")
def opt_loaded(hf_opt):
    """(layout, torch model, dir, our config, our params) in float32."""
    layout, model, path = hf_opt
    config, params = load_hf_model(path)
    return layout, model, path, config, params
