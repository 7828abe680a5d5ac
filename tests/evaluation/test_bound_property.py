"""The fluid bound is a bound (docs/policies.md, "The fluid bound").

Hand-computed LP cases with per-task deadlines, then the property: on 180 random runs
(12 random scenarios with per-task hard deadlines x 5 policies x 3 rates), no run's
performance exceeds the bound computed from its own arrivals. The realised bound holds
for every finite run, so the tolerance is float rounding, not sampling error.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.evaluation.bounds import nominal_curve, realised_bound, sweep_bound
from jaxserve.evaluation.grid import make_switch_policy
from jaxserve.evaluation.simulate import simulate
from jaxserve.policies.baselines import make_policy
from jaxserve.policies.lp import fluid_upper_bound
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.metrics import absolute_arrival_times, counter_metrics
from jaxserve.sim.rollout import counter_rollouts
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec, make_workload

POLICIES = ("greedy", "jsq", "random", "static:0", "static:2")
RATE_FACTORS = (0.5, 1.5, 4.0)  # x the scenario's capacity at its shortest deadline
NUM_SCENARIOS, NUM_REQUESTS = 12, 600


def two_deadline_scenario(**overrides) -> Scenario:
    """One model, batch of 1 in 0.1 s or of 2 in 0.15 s; task a due in 0.1 s, task b in 0.2 s."""
    fields = dict(
        name="two-deadlines",
        model_names=("m",),
        task_names=("a", "b"),
        quality=((1.0,), (1.0,)),
        latency_s=((0.1, 0.15),),
        replicas=(1,),
        queue_capacity=(4,),
        deadline_s=(0.1, 0.2),
    )
    return Scenario(**(fields | overrides))


def test_per_task_capacity_by_hand():
    # μ(0.1) = 1/0.1 = 10/s (only batches of 1 meet it); μ(0.2) = 2/0.15 = 13.3/s.
    np.testing.assert_allclose(two_deadline_scenario().capacity_per_task(), [[10.0], [40 / 3]])


def test_per_task_deadlines_by_hand():
    # λ = 20/s, half each: x_a·10/10 + x_b·10/13.3 ≤ 1, i.e. x_a + 0.75 x_b ≤ 1. Serving all
    # of b leaves x_a = 0.25: 0.5·0.25 + 0.5·1 = 0.625 (serving all of a instead gives 0.5).
    value, x = fluid_upper_bound(two_deadline_scenario(), rate=20.0, task_mix=[0.5, 0.5])
    assert value == pytest.approx(0.625)
    np.testing.assert_allclose(x, [[0.25], [1.0]], atol=1e-9)
    # The old bound used the shortest deadline for both tasks: 10/20 = 0.5 < 0.625.
    old, _ = fluid_upper_bound(([[1.0], [1.0]], [10.0]), rate=20.0, task_mix=[0.5, 0.5])
    assert old == pytest.approx(0.5)


def test_deadline_scale_by_hand():
    # Scale 2: deadlines 0.2 and 0.4 s, both met by batches of 2 (13.3/s): 13.3/20 = 2/3.
    value, _ = fluid_upper_bound(two_deadline_scenario(), 20.0, [0.5, 0.5], deadline_scale=2.0)
    assert value == pytest.approx(2 / 3)


def test_miss_penalty_does_not_lower_the_performance_bound():
    s = two_deadline_scenario(miss_penalty=0.5)
    assert fluid_upper_bound(s, 20.0, [0.5, 0.5])[0] == pytest.approx(0.625)
    assert fluid_upper_bound(s, 20.0, [0.5, 0.5], penalty=0.5)[0] == pytest.approx(0.4375)


def test_realised_bound_by_hand():
    # 3 requests of task a over 1.9 s: rate 3 / (1.9 + 0.1) = 1.5/s, far below μ = 10/s.
    bound = realised_bound(two_deadline_scenario(), [0.1, 1.0, 2.0], [0, 0, 0])
    assert bound["fluid_upper_bound"] == pytest.approx(1.0)
    # 40 of task a in 0.9 s: rate 40 / (0.9 + 0.1) = 40/s, μ = 10/s: at most a quarter.
    many = realised_bound(two_deadline_scenario(), np.linspace(0, 0.9, 40), np.zeros(40, int))
    assert many["fluid_upper_bound"] == pytest.approx(0.25)


def test_no_bound_for_soft_deadlines_and_noise():
    soft = simulate(
        two_deadline_scenario(deadline_kind="soft"), "static:0", WorkloadSpec(rate=5.0), 200
    )
    assert soft["fluid_upper_bound"] is None and "soft" in soft["fluid_upper_bound_note"]
    noisy = two_deadline_scenario(noise_sigma=0.1)
    assert (
        sweep_bound(noisy, WorkloadSpec(), [1.0], [(0.5, 0.5)], [1.0])[
            "fluid_upper_bound_normalized"
        ]
        is None
    )


def test_sweep_bound_per_mix_and_scale():
    s = two_deadline_scenario()
    out = sweep_bound(s, WorkloadSpec(), [20.0], [(0.5, 0.5), (1.0, 0.0)], [1.0, 2.0])
    grid = np.asarray(out["fluid_upper_bound_normalized"])  # (R, M, D)
    np.testing.assert_allclose(grid, [[[0.625, 2 / 3], [0.5, 2 / 3]]])
    assert grid[0, 0, 0] == pytest.approx(nominal_curve(s, [20.0], (0.5, 0.5))[0])
    replay = sweep_bound(s, WorkloadSpec(kind="unpredictable"), [20.0], [(0.5, 0.5)], [1.0])
    assert replay["fluid_upper_bound_normalized"] is None


def test_simulate_with_a_deadline_schedule_stays_under_its_bound():
    w = WorkloadSpec(rate=30.0, deadline_schedule=((5.0, 0.5), (5.0, 3.0)))
    out = simulate(two_deadline_scenario(), "static:0", w, 2000)
    assert out["fluid_upper_bound"] is not None
    assert out["performance"] <= out["fluid_upper_bound"] + 1e-9


def _random_scenario(rng: np.random.Generator, index: int) -> Scenario:
    """3 models x 3 tasks, random batch latencies, qualities and per-task hard deadlines."""
    base = np.sort(rng.uniform(0.005, 0.04, 3))
    slope = rng.uniform(0.1, 0.9, 3)
    latency = [tuple(b * (1 + s * np.arange(4))) for b, s in zip(base, slope, strict=True)]
    deadlines = tuple(float(d) for d in rng.uniform(1.0, 8.0, 3) * base[0])
    return Scenario(
        name=f"random-{index}",
        model_names=("s", "m", "l"),
        task_names=("a", "b", "c"),
        quality=tuple(tuple(q) for q in rng.uniform(0.0, 1.0, (3, 3))),
        latency_s=tuple(latency),
        replicas=(1, 1, 2),
        queue_capacity=(8, 8, 8),
        deadline_s=deadlines,
    )


def _lanes(scenarios):
    """Every (scenario, policy, rate) as lane arrays: params, policy index, rate, seed."""
    params, policy, rate = [], [], []
    for s in scenarios:
        capacity = float(s.capacity_per_model().sum())
        for p in range(len(POLICIES)):
            for f in RATE_FACTORS:
                params.append(s.sim_params())
                policy.append(p)
                rate.append(f * capacity)
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)
    return stacked, np.asarray(policy, np.int32), np.asarray(rate, np.float32)


def test_no_run_beats_its_bound():
    rng = np.random.default_rng(12)
    scenarios = [_random_scenario(rng, i) for i in range(NUM_SCENARIOS)]
    workload = WorkloadSpec(kind="poisson", rate=1.0)
    env = make_env(dataclasses.replace(scenarios[0].sim_config(workload), emit_records=False))
    switch = make_switch_policy([make_policy(p, env, scenarios[0]) for p in POLICIES])
    params, policy, rate = _lanes(scenarios)
    wparams, generate = make_workload(workload, 3, NUM_REQUESTS)
    keys = jax.random.split(jax.random.key(0), 2 * len(rate)).reshape(2, len(rate))

    @jax.jit
    def run(keys, params, policy, rate):
        arrivals = jax.vmap(lambda k, r: generate(k, wparams.replace(rate=r)))(keys[0], rate)
        counters = counter_rollouts(
            env,
            lambda i: lambda *a: switch(i, *a),
            keys[1],
            params,
            arrivals,
            lane_args=policy,
            params_batched=True,
            shard=False,
        )
        return arrivals, counter_metrics(counters)["performance"]

    arrivals, performance = jax.tree.map(np.asarray, run(keys, params, policy, rate))
    per_scenario = len(POLICIES) * len(RATE_FACTORS)
    slack, beat_old_bound = [], 0
    for lane, perf in enumerate(performance):
        scenario = scenarios[lane // per_scenario]
        arrival_s = absolute_arrival_times(arrivals.gap_s[lane])
        bound = realised_bound(scenario, arrival_s, arrivals.task[lane])["fluid_upper_bound"]
        slack.append(bound - perf)
        mix = np.bincount(arrivals.task[lane], minlength=3) / NUM_REQUESTS
        old = fluid_upper_bound(
            (scenario.quality, scenario.capacity_per_model()), float(rate[lane]), mix
        )[0]
        beat_old_bound += perf > old + 0.02
    assert len(slack) >= 100
    assert min(slack) >= -1e-5, f"a run beat its bound by {-min(slack):.2e}"
    assert beat_old_bound > 0  # the shortest-deadline bound was not one: the test can fail


def test_miss_penalty_shapes_reward_not_performance():
    s = two_deadline_scenario()
    w = WorkloadSpec(rate=30.0)
    plain = simulate(s, "static:0", w, 1000)
    priced = simulate(dataclasses.replace(s, miss_penalty=0.5), "static:0", w, 1000)
    misses = plain["num_late"] + plain["num_dropped"] + plain["num_rejected"]
    assert misses > 0 and priced["performance"] == pytest.approx(plain["performance"])
    assert priced["reward"] == pytest.approx(plain["reward"] - 0.5 * misses / 1000)
    assert priced["fluid_upper_bound"] == pytest.approx(plain["fluid_upper_bound"])


@pytest.mark.parametrize("window_s", [0.0, -1.0, False])
def test_simulate_rejects_a_window_that_is_not_positive(window_s):
    with pytest.raises(InputError, match="window_s"):
        simulate(two_deadline_scenario(), "static:0", WorkloadSpec(rate=5.0), 10, window_s=window_s)
