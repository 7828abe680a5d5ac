"""Tensor-parallel OPT on 4 fake CPU devices gives the single-device logits."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from jaxserve.errors import InputError
from jaxserve.models.opt.config import get_preset
from jaxserve.models.opt.sharding import param_specs

SCRIPT = pathlib.Path(__file__).with_name("sharded_check.py")


def test_four_device_mesh_matches_single_device(hf_opt):
    _, _, path = hf_opt
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def test_mesh_that_does_not_divide_heads_is_input_error():
    class FakeMesh:
        shape = {"tp": 3}

    with pytest.raises(InputError, match="num_heads"):
        param_specs({}, get_preset("tiny"), FakeMesh())
