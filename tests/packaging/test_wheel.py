"""The built wheel, installed into a fresh venv outside the checkout, runs on its own.

A fresh install must need nothing beside it: no checkout, no data folder (docs/install.md).
The wheel is built from a copy of the package sources; its dependencies are borrowed from
the test environment through a .pth line, so the test needs no network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(args, cwd, timeout=300):
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args}: {out.stderr[-2000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "jaxserve", src / "jaxserve", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), "."], src)
    (path,) = dist.glob("jaxserve-*.whl")
    return path


@pytest.fixture(scope="module")
def venv_bin(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          str(wheel)], venv)  # fmt: skip
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], venv
        ).strip()
    )
    (site / "_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin"


def test_wheel_ships_the_data_and_no_torch_dependency(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "jaxserve/data/quality/opt_lm_eval_zero_shot.csv",
        "jaxserve/data/latency/llama2_7b_linear_ms_vidur.csv",
        "jaxserve/data/traces/README.md",
        "jaxserve/data/traces/azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv",
        "jaxserve/scenarios/cpu-demo.toml",
    ):
        assert needed in names, needed
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line for line in zipfile.ZipFile(wheel).read(meta).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]  # fmt: skip
    assert requires and not any("torch" in line for line in requires)


@pytest.mark.parametrize(
    "workload",
    [None, "trace:name=azure_llm_2023_code,time_compression=20"],
    ids=["poisson", "trace"],
)
def test_installed_wheel_simulates_from_an_empty_folder(venv_bin, workload, tmp_path):
    where = _run(
        [str(venv_bin / "python"), "-c", "import jaxserve; print(jaxserve.__file__)"], tmp_path
    )
    assert where.startswith(str(venv_bin.parent)), where  # the wheel, not the checkout
    args = [str(venv_bin / "jaxserve"), "simulate", "--num-requests", "500", "--json"]
    result = json.loads(_run(args + (["--workload", workload] if workload else []), tmp_path))
    assert result["num_arrived"] == 500 and 0.0 < result["performance"] <= result["peak"]
