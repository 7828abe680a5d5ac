"""`jaxserve bench --sections sim --quick` runs end to end (numbers reported, never asserted)."""

from __future__ import annotations

import jax

from jaxserve import bench
from jaxserve.testing import TEST_CPU_DEVICES


def test_sim_bench_reports_every_section_and_its_devices(monkeypatch):
    shards, rollouts = [], bench.counter_rollouts

    def recording(*args, shard, **kwargs):
        shards.append(shard)
        return rollouts(*args, shard=shard, **kwargs)

    monkeypatch.setattr(bench, "counter_rollouts", recording)
    result = bench.run_bench(bench.BenchConfig(sections=("sim",), quick=True))
    assert result["machine"]["devices"] == [str(d) for d in jax.devices()]
    expected = {
        "simulator": TEST_CPU_DEVICES,
        "simulator_one_device": 1,
        "simulator_full": TEST_CPU_DEVICES,
    }
    for section, devices in expected.items():
        run = result[section]
        assert run["lane_devices"] == devices
        assert run["num_envs"] == 64 and run["steps_per_env"] == 32
        assert set(run["policies"]) == {"static:2", "greedy"}
        for name, timing in run["policies"].items():
            assert timing["decisions_per_s"] > 0 and timing["wall_s"] > 0
            ratio = timing["decisions_per_s"] / result["reference"]["decisions_per_s"]
            assert abs(run["speedup_vs_reference"][name] - ratio) < 1e-9
    assert result["simulator"]["env"] == "CounterEnv"
    assert result["simulator_full"]["env"] == "ServingEnv"
    # Each section traces its rollout once per policy: sharded, unsharded, sharded.
    assert shards == [True, True, False, False, True, True]
