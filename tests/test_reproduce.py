"""`jaxserve reproduce`: discovery, selection, smoke run, resumability, CLI errors."""

from __future__ import annotations

import json

import pytest

from jaxserve import reproduce
from jaxserve.cli import main
from jaxserve.errors import InputError


def test_discovers_numbered_experiments_in_order():
    names = list(reproduce.discover())
    assert names == sorted(names)
    assert names[0].startswith("00_") and "01_stable" in names
    assert all(n[:2].isdigit() for n in names)  # _common.py, fidelity.py are not experiments


def test_only_selects_by_prefix_and_rejects_unknown():
    names = reproduce.discover()
    assert list(reproduce.select(names, "01,05")) == ["01_stable", "05_task_shift"]
    with pytest.raises(InputError, match="--only '42'"):
        reproduce.select(names, "42")


def test_every_experiment_has_configs():
    for path in reproduce.discover().values():
        module = reproduce._load(path)
        for kwargs in ({"quick": True}, {"quick": False}, {"quick": True, "smoke": True}):
            config = module.get_config(**kwargs)
            assert isinstance(config, dict) and json.dumps(config)


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
    for fig in result["figures"]:
        assert (docs / fig).stat().st_size > 0
    text = (docs / "results.md").read_text()
    assert "| paper claim / question |" in text and "01. Stable" in text
    again = reproduce.run_experiments(
        quick=True, only="01", smoke=True, docs_dir=docs, progress=False
    )
    assert again["experiments"]["01_stable"]["skipped"] is True


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
