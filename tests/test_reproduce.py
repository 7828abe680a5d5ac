"""`jaxserve reproduce`: discovery, presets, smoke run, resumability, CLI errors."""

from __future__ import annotations

import ast
import dataclasses
import json

import pytest

from jaxserve import reproduce
from jaxserve.cli import main
from jaxserve.errors import InputError


def test_discovers_numbered_experiments_in_order():
    names = list(reproduce.discover())
    assert names == sorted(names)
    assert names[0].startswith("00_") and "01_stable" in names
    assert all(n[:2].isdigit() for n in names)  # fidelity.py is not an experiment


def test_only_selects_by_prefix_and_rejects_unknown():
    names = reproduce.discover()
    assert list(reproduce.select(names, "01,05")) == ["01_stable", "05_task_shift"]
    with pytest.raises(InputError, match="--only '42'"):
        reproduce.select(names, "42")


def test_every_experiment_has_frozen_presets_and_the_pipeline():
    for path in reproduce.discover().values():
        module = reproduce.load(path)
        for mode in ("smoke", "quick", "full"):
            config = reproduce.preset(module, mode)
            assert isinstance(config, module.Config)
            assert module.Config.__dataclass_params__.frozen
            assert json.dumps(dataclasses.asdict(config))
        for step in ("compute", "plot", "write_up", "main"):
            assert callable(getattr(module, step)), (path.name, step)


def test_experiments_import_only_the_package():
    """No sys.path changes, no sibling helpers: jaxserve, numpy, matplotlib and stdlib."""
    allowed = {"jaxserve", "numpy", "matplotlib", "jax", "__future__", "dataclasses", "time"}
    allowed |= {"pathlib"}
    for path in reproduce.discover().values():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert roots <= allowed, (path.name, roots)
        assert "sys.path" not in path.read_text(), path.name


def test_up_to_date_compares_mode_config_and_figures(tmp_path):
    module = reproduce.load(reproduce.discover()["00_baseline_sweep"])
    config = module.QUICK
    old = {"mode": "quick", "config": dataclasses.asdict(config), "figures": []}
    assert reproduce.up_to_date(old, config, "quick", tmp_path)
    assert not reproduce.up_to_date(old, config, "full", tmp_path)
    assert not reproduce.up_to_date(old, module.SMOKE, "quick", tmp_path)
    legacy = {"config": {**dataclasses.asdict(config), "_mode": "quick"}, "figures": []}
    assert reproduce.up_to_date(legacy, config, "quick", tmp_path)  # JSONs before presets
    missing = {**old, "figures": ["figures/nope.png"]}
    assert not reproduce.up_to_date(missing, config, "quick", tmp_path)


def test_smoke_run_writes_outputs_and_skips_when_up_to_date(tmp_path):
    docs = tmp_path / "docs"
    summary = reproduce.run_experiments(
        quick=True,
        only="01",
        smoke=True,
        docs_dir=docs,
        routers_dir=tmp_path / "r",
        progress=False,
    )
    assert summary["experiments"]["01_stable"]["skipped"] is False
    result = json.loads((docs / "experiments" / "01_stable.json").read_text())
    assert result["claims"] and result["figures"]
    assert result["mode"] == "smoke" and result["config"]["num_requests"] == 300
    for fig in result["figures"]:
        assert (docs / fig).stat().st_size > 0
    text = (docs / "results.md").read_text()
    assert "| paper claim / question |" in text and "01. Stable" in text
    assert "**Stable load (Exp 1).**" in text  # the script's discussion paragraph
    again = reproduce.run_experiments(
        quick=True, only="01", smoke=True, docs_dir=docs, progress=False
    )
    assert again["experiments"]["01_stable"]["skipped"] is True


def test_outside_a_checkout_is_one_input_error(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "EXPERIMENTS_DIR", tmp_path / "experiments")
    with pytest.raises(InputError, match="experiments/ folder"):
        reproduce.discover()


def test_cli_unknown_experiment_is_one_line_error(capsys):
    assert main(["reproduce", "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--only 'nope'" in err


@pytest.mark.slow
def test_quick_reproduce_runs_every_experiment(tmp_path):
    summary = reproduce.run_experiments(
        quick=True, docs_dir=tmp_path / "docs", routers_dir=tmp_path / "r", progress=False
    )
    assert set(summary["experiments"]) == set(reproduce.discover())
