"""Serving test setup: a two-model scenario over the shipped task names, run on cpu-demo-s."""

from __future__ import annotations

import pytest
from serving_helpers import TWO_MODEL_TOML


@pytest.fixture
def scenario_toml(tmp_path):
    """Path of the two-model test scenario (max_batch 2, small queues: overload is easy)."""
    path = tmp_path / "serve-test.toml"
    path.write_text(TWO_MODEL_TOML)
    return path
