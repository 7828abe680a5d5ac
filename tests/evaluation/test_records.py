"""Long-format records: CSV/JSON round trips, pandas, and sweep rows against a direct call."""

import sys

import numpy as np
import pytest

from jaxserve.evaluation import Records, SweepConfig, load_records, sweep
from jaxserve.evaluation.grid import run_sweep
from jaxserve.sim.scenarios import get_scenario

ROWS = [
    {"policy": "greedy", "rate": 50.0, "seed": 0, "ok": True, "note": None},
    {"policy": "static:2", "rate": 1e-4, "seed": 1, "ok": False, "extra": 3},
]


def test_csv_and_json_round_trip(tmp_path):
    records = Records(ROWS)
    assert records.columns == ["policy", "rate", "seed", "ok", "note", "extra"]
    back_csv = load_records(records.to_csv(tmp_path / "r.csv"))
    back_json = load_records(records.to_json(tmp_path / "r.json"))
    expected = [
        {**ROWS[0], "extra": None},
        {"policy": "static:2", "rate": 1e-4, "seed": 1, "ok": False, "note": None, "extra": 3},
    ]
    assert list(back_csv) == expected
    assert list(back_json) == ROWS
    header = (tmp_path / "r.csv").read_text().splitlines()[0]
    assert header == "policy,rate,seed,ok,note,extra"
    assert records.where(policy="static:2").column("rate") == [1e-4]


def test_to_pandas_and_missing_pandas(monkeypatch):
    pd = pytest.importorskip("pandas")
    frame = Records(ROWS).to_pandas()
    assert list(frame.columns) == Records(ROWS).columns and len(frame) == 2
    assert isinstance(frame, pd.DataFrame)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import fails as if not installed
    with pytest.raises(ImportError, match="pip install pandas"):
        Records(ROWS).to_pandas()


def test_bad_records_file_is_input_error(tmp_path):
    from jaxserve.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        load_records(tmp_path / "missing.csv")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(InputError, match=".csv or .json"):
        load_records(tmp_path / "x.txt")


def test_sweep_rows_match_a_direct_call():
    scenario = get_scenario("opt-a100x4")
    policies, rates, scales, seeds = ["greedy", "static:0"], [60.0, 500.0], [1.0, 0.5], 2
    config = SweepConfig(scenario, policies, rates, None, scales, num_requests=150, seeds=seeds)
    rows = sweep(config)
    assert len(rows) == len(policies) * len(rates) * len(scales) * seeds
    models = list(scenario.model_names)
    assert rows.columns[:3] == ["scenario", "policy", "rate"]
    for column in (
        *[f"mix_{t}" for t in scenario.task_names],
        "deadline_scale",
        "seed",
        "normalized_performance",
        "availability",
        *[f"routing_fraction_{m}" for m in models],
    ):
        assert column in rows.columns, column
    # The seed average of the rows equals run_sweep's own (seed-averaged) result.
    direct = run_sweep(scenario, policies, rates, None, scales, 150, seeds)
    for p, policy in enumerate(policies):
        for r, rate in enumerate(rates):
            for d, scale in enumerate(scales):
                mine = rows.where(policy=policy, rate=rate, deadline_scale=scale)
                assert sorted(mine.column("seed")) == [0, 1]
                for metric in ("normalized_performance", "availability", "latency_mean_s"):
                    want = direct[metric][p][r][0][d]
                    assert np.mean(mine.column(metric)) == pytest.approx(want, rel=1e-6)
                for k, m in enumerate(models):
                    want = direct["routing_fraction"][p][r][0][d][k]
                    got = np.mean(mine.column(f"routing_fraction_{m}"))
                    assert got == pytest.approx(want, rel=1e-6)
    # static:0 sends everything to the first model, in every row.
    assert set(rows.where(policy="static:0").column(f"routing_fraction_{models[0]}")) == {1.0}
