"""The planner on a zoo worked out by hand (jaxserve/testing/planner.py)."""

from __future__ import annotations

import dataclasses

import pytest

from jaxserve.errors import InputError
from jaxserve.evaluation.plan import PlanConfig, plan
from jaxserve.evaluation.plan_report import format_plan, plan_json
from jaxserve.testing.planner import TOY_BEST, TOY_BOUNDS, TOY_MEMORY_GB, TOY_RATE, toy_zoo

TOY = PlanConfig(
    scenario=toy_zoo(),
    gpus=2,
    rates=(TOY_RATE,),
    memory_gb=TOY_MEMORY_GB,
    num_requests=1000,
    seeds=8,
    train_top=0,
)


def test_finds_the_hand_computed_best_placement():
    """Bounds 0.5 / 0.625 / 0.5 (docstring of jaxserve.testing.planner): small + big is
    simulated first, reaches about 0.62 with greedy, and both others are screened out by
    their bound 0.5 without being simulated."""
    result = plan(TOY)
    data = plan_json(result)
    assert data["num_enumerated"] == 3 and data["num_simulated"] == 1
    assert data["chosen"]["placement"] == TOY_BEST and data["chosen"]["policy"] == "greedy"
    bounds = {p["placement"]: p["bound"] for p in data["placements"]}
    assert bounds == pytest.approx(TOY_BOUNDS, abs=1e-6)
    best = data["placements"][0]["policies"]["greedy"]
    assert 0.58 < best["performance"] < 0.64 and best["performance_ci"][0] > 0.5
    assert all(p["screened"].startswith("bound 0.500") for p in data["placements"][1:])
    assert "chosen: 1xsmall + 1xbig (1/1) with greedy" in format_plan(result)


def test_fewest_gpus_skips_counts_the_bound_rules_out():
    """Target 0.6: on 1 GPU the bounds are 0.25 and 0.5, so 1 is ruled out unsimulated;
    on 2 GPUs small + big reaches about 0.62."""
    result = plan(dataclasses.replace(TOY, min_performance=0.6))
    fewest = result.fewest_gpus
    assert fewest["gpus"] == 2 and fewest["placement"] == TOY_BEST
    assert "bound is below the target" in fewest["tried"][0]["note"]
    assert result.gpus == 2


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"gpus": 0}, "PlanConfig.gpus = 0"),
        ({"seeds": 1}, "PlanConfig.seeds = 1"),
        ({"include": ("2/1",)}, "placement 2/1 (2xsmall + 1xbig) needs 3 GPUs"),
        ({"models": ("huge",)}, "model = 'huge': no latency data in zoo 'toy-zoo'"),
        ({"memory_gb": {"small": 10.0, "big": 200.0}, "models": ("big",)}, "no model of zoo"),
        ({"memory_gb": {}}, "model = 'small': no memory size"),
    ],
)
def test_bad_input_is_one_input_error(change, needle):
    with pytest.raises(InputError) as info:
        plan(dataclasses.replace(TOY, **change))
    assert needle in str(info.value) and "\n" not in str(info.value)
