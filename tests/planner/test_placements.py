"""Placements: the enumeration count, GPUs per replica, and the placement's scenario."""

from __future__ import annotations

import dataclasses
from math import comb

import pytest

from jaxserve.errors import InputError
from jaxserve.evaluation.placements import (
    Placement,
    check_fits,
    enumerate_placements,
    gpus_per_replica,
    parse_placement,
    placement_scenario,
)
from jaxserve.sim.scenarios import equal_hardware, get_scenario
from jaxserve.testing.planner import toy_zoo


@pytest.mark.parametrize("models", [1, 2, 3, 4])
@pytest.mark.parametrize("gpus", [1, 2, 4, 6, 8])
def test_count_is_the_multiset_formula(models, gpus):
    """One GPU per replica: the multisets of `gpus` models out of `models`, C(K + N - 1, N)."""
    found = enumerate_placements([f"m{k}" for k in range(models)], [1] * models, gpus)
    assert len(found) == comb(models + gpus - 1, gpus)
    assert len(set(found)) == len(found) and all(p.gpus == gpus for p in found)


def test_multi_gpu_replicas_are_enumerated_by_hand():
    """g = (1, 1, 2) on 3 GPUs: r3 = 0 with r1 + r2 = 3 (4 ways), r3 = 1 with r1 + r2 = 1
    (2 ways): 6 placements, each on exactly 3 GPUs."""
    found = enumerate_placements(["a", "b", "c"], [1, 1, 2], 3)
    assert sorted(p.replicas for p in found) == [
        (0, 1, 1), (0, 3, 0), (1, 0, 1), (1, 2, 0), (2, 1, 0), (3, 0, 0)
    ]  # fmt: skip


def test_maximal_when_gpus_cannot_all_be_used():
    """Only 2-GPU replicas on 3 GPUs: one replica, one GPU left idle (nothing else fits)."""
    assert [p.replicas for p in enumerate_placements(["a"], [2], 3)] == [(1,)]


def test_memory_decides_gpus_per_replica():
    zoo = get_scenario("opt-a100x4")
    assert gpus_per_replica(zoo, 80.0, {}) == (1, 1, 1)  # roofline: OPT-6.7B ~14 GB
    assert gpus_per_replica(zoo, 80.0, {"opt-6.7b": 100.0}) == (1, 1, 2)
    assert gpus_per_replica(zoo, 10.0, {}) == (1, 1, 2)  # 13.4 GB of weights alone


def test_a_model_without_memory_data_is_one_error():
    with pytest.raises(InputError, match="model = 'small': no memory size"):
        gpus_per_replica(toy_zoo(), 80.0, {})


def test_paper_placement_is_the_paper_scenario():
    """1/1/2 of opt-a100x4's zoo is opt-a100x4 itself; 0/0/4 is OPT-6.7B x4 (equal hardware)."""
    zoo = get_scenario("opt-a100x4")
    placements = {p.key: p for p in enumerate_placements(zoo.model_names, (1, 1, 1), 4)}
    same = lambda a, b: (
        dataclasses.replace(a, name="x", description="")
        == dataclasses.replace(b, name="x", description="")
    )
    assert same(placement_scenario(zoo, placements["1/1/2"]), zoo)
    assert same(placement_scenario(zoo, placements["0/0/4"]), equal_hardware(zoo, 2))


def test_bad_placements_are_one_line():
    with pytest.raises(InputError, match="expected 3 replica counts"):
        parse_placement("1/1", ("a", "b", "c"), (1, 1, 1))
    big = Placement(("a", "b"), (2, 2), (1, 1))
    with pytest.raises(InputError, match=r"placement 2/2 \(2xa \+ 2xb\) needs 4 GPUs: expected"):
        check_fits(big, 3)
