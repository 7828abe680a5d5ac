"""The knob router (docs/knob.md): the miss penalty as a run-time input, checked by hand.

The toy: one task, two models with one replica each and batch size 1; OPT-like quality
0.5 (small, 1 ms) and 1.0 (big, 10 ms); service times are the profile times a log-normal
factor exp(0.5 Z). The deadline is 10 ms x exp(0.5 x 0.6745), so the big model is on time
with probability Phi(0.6745) = 0.75 and the small one with Phi(ln(14.01) / 0.5) = 1 - 6e-8.
At 1 request/s the system is idle at almost every arrival (utilisation 1 %), so with
discount 0 the Q-values are the expected utilities of one request:
    Q(small) = 0.5,   Q(big) = 0.75 x 1 - 0.25 x P,   Q(big) - Q(small) = 0.25 (1 - P):
big below P = 1, small above. Availability: 0.75 routing to big, 1.0 routing to small.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.checkpoint import read_metadata
from jaxserve.errors import InputError
from jaxserve.evaluation.knob import calibrate_knob
from jaxserve.evaluation.records import load_records
from jaxserve.evaluation.simulate import simulate
from jaxserve.evaluation.train import TrainConfig, train
from jaxserve.rl.config import DQNConfig
from jaxserve.rl.envs import ServingAdapter
from jaxserve.rl.knob import KnobTable, reward_hparams
from jaxserve.rl.networks import make_q_network
from jaxserve.rl.policy import load_learned_policy, load_router_params
from jaxserve.sim.base import knob_feature
from jaxserve.sim.scenarios import Scenario, scenario_to_toml
from jaxserve.sim.workloads import WorkloadSpec, make_workload

Z75 = 0.6744897501960817  # Phi(Z75) = 0.75
TOY = Scenario(
    name="knob-toy",
    model_names=("small", "big"),
    task_names=("t",),
    quality=((0.5, 1.0),),
    latency_s=((0.001,), (0.010,)),
    replicas=(1, 1),
    queue_capacity=(4, 4),
    deadline_s=(0.010 * math.exp(0.5 * Z75),),
    noise_sigma=0.5,
)
TOY_DQN = DQNConfig(
    hidden=(32, 32),
    num_envs=8,
    episode_length=256,
    total_env_steps=60_000,
    learning_starts=512,
    batch_size=64,
    buffer_size=8192,
    eval_length=64,
    eval_episodes=1,
    eval_rate_factors=(0.01,),
    min_rate_factor=0.01,  # 1 request/s: an idle system at every decision
    max_rate_factor=0.01,
    knob_range=(0.0, 3.0),
)


@pytest.fixture(scope="module")
def knob_router(tmp_path_factory):
    """The toy's knob router (discount 0), trained and calibrated once for the module."""
    out = tmp_path_factory.mktemp("knob") / "router"
    train(TrainConfig(scenario=TOY, dqn=TOY_DQN, hparams={"discount": 0.0}), out)
    calibrate_knob(out, num_rates=3, num_knobs=7, seeds=2, num_requests=400)
    return out


def _q_gap(router, penalty: float) -> float:
    """Q(big) - Q(small) in an idle system at 1 request/s, told `penalty`."""
    params, meta = load_router_params(router, TOY)
    network = make_q_network(2, tuple(meta["network"]["hidden"]))
    rate = 1.0 / TOY.reference_rate
    obs = jnp.asarray([1.0, 0, 0, 0, 0, 0, 0, rate, knob_feature(penalty)], jnp.float32)
    q = network.apply(params, obs)
    return float(q[1] - q[0])


def test_each_episode_draws_its_knob_and_the_router_observes_it():
    adapter = ServingAdapter(TOY, DQNConfig(num_envs=2, episode_length=16, knob_range=(0.0, 3.0)))
    assert adapter.obs_size == TOY.sim_config().obs_size + 1
    obs, state = jax.jit(jax.vmap(adapter.reset))(jax.random.split(jax.random.key(0), 256))
    penalty = np.asarray(state.params.miss_penalty)
    assert penalty.min() >= 0 and penalty.max() <= 3 and len(np.unique(penalty)) == 256
    np.testing.assert_allclose(np.asarray(obs[:, -1]), np.log1p(penalty), rtol=1e-6)
    # log(1 + P) uniform on [0, log 4]: mean log(4)/2 = 0.693, sd of the mean 0.40/16 = 0.025
    assert abs(np.log1p(penalty).mean() - np.log(4) / 2) < 0.1
    step = jax.jit(jax.vmap(adapter.step, in_axes=(0, 0, None)))
    keys = jax.random.split(jax.random.key(1), 256)
    next_obs, state, *_ = step(keys, state, jnp.int32(1))
    np.testing.assert_allclose(np.asarray(next_obs[:, -1]), np.log1p(penalty), rtol=1e-6)


def test_a_penalised_reward_defaults_to_a_huber_delta_past_its_largest_penalty():
    assert reward_hparams(TOY_DQN) == {"huber_delta": 4.0}
    assert reward_hparams(TOY_DQN, miss_penalty=5.0) == {"huber_delta": 6.0}
    assert reward_hparams(DQNConfig(), miss_penalty=0.3) == {"huber_delta": 1.3}
    assert reward_hparams(DQNConfig()) == {}
    member = TrainConfig(scenario=TOY, dqn=TOY_DQN).member_table()[0]
    assert member["huber_delta"] == 4.0
    penalised = dataclasses.replace(TOY, miss_penalty=2.0)
    assert TrainConfig(scenario=penalised).member_table()[0]["huber_delta"] == 3.0
    explicit = TrainConfig(scenario=penalised, hparams={"huber_delta": 1.0})
    assert explicit.member_table()[0]["huber_delta"] == 1.0  # an explicit value wins
    with pytest.raises(InputError, match="knob_range"):
        DQNConfig(knob_range=(3.0, 1.0))


def test_the_knob_schedule_sets_the_knob_of_each_arrival():
    spec = WorkloadSpec(kind="poisson", rate=50.0, knob_schedule=((1.0, 0.0), (1.0, 2.0)))
    params, generate = make_workload(spec, 1, 400)
    arrivals = generate(jax.random.key(0), params)
    times = np.cumsum(np.asarray(arrivals.gap_s, np.float64))
    expected = np.where(np.mod(times, 2.0) < 1.0, 0.0, 2.0)
    inside = np.abs(np.mod(times, 1.0) - 0.5) < 0.499  # away from float32 boundary rounding
    np.testing.assert_array_equal(np.asarray(arrivals.knob)[inside], expected[inside])


def test_the_router_learns_the_hand_computed_crossover(knob_router):
    gaps = {p: _q_gap(knob_router, p) for p in (0.0, 1.0, 3.0)}
    assert abs(gaps[0.0] - 0.25) < 0.08, gaps  # hand: 0.25 (1 - P)
    assert abs(gaps[1.0]) < 0.15, gaps
    assert gaps[3.0] < -0.25, gaps  # hand: -0.5
    assert gaps[0.0] > gaps[1.0] > gaps[3.0]


def test_changing_the_knob_mid_run_changes_the_routing(knob_router):
    spec = WorkloadSpec(kind="poisson", rate=1.0, knob_schedule=((200.0, 0.0), (200.0, 3.0)))
    policy = load_learned_policy(knob_router, TOY, knob_schedule=spec.knob_schedule)
    run = simulate(TOY, policy, spec, 400, window_s=200.0)
    # first 200 s told P = 0 (big), the next 200 s P = 3 (small): half the requests each
    big = run["routing_fraction"][1]
    assert 0.35 < big < 0.65, run["routing_fraction"]


def test_an_availability_target_picks_the_calibrated_knob(knob_router):
    table = KnobTable.from_json(read_metadata(knob_router)["knob_calibration"])
    avail = np.asarray(table.availability)
    assert avail[:, 0].max() < 0.85 and avail[:, -1].min() > 0.98  # 0.75 (big) and 1 (small)
    achieved = {}
    for target in (0.5, 0.95):
        policy = load_learned_policy(knob_router, TOY, availability_target=target)
        run = simulate(TOY, policy, WorkloadSpec(kind="poisson", rate=1.0), 600, seed=3)
        achieved[target] = run["availability"]
    assert abs(achieved[0.5] - 0.75) < 0.07  # the smallest knob meets 0.5: big, 0.75
    assert achieved[0.95] > 0.98  # only routing to small meets 0.95


def test_knob_values_outside_the_trained_range_are_one_line_errors(knob_router, tmp_path):
    from jaxserve.cli import main

    toml = tmp_path / "toy.toml"
    toml.write_text(scenario_to_toml(TOY))
    with pytest.raises(InputError, match=r"outside the knob range \[0, 3\]"):
        load_learned_policy(knob_router, TOY.__class__(**{**TOY.__dict__, "miss_penalty": 5.0}))
    base = ["simulate", "--scenario", str(toml), "--policy", str(knob_router), "--rate", "1"]
    assert main([*base, "--miss-penalty", "5", "--num-requests", "10"]) == 2
    assert main([*base, "--workload", "poisson:knob_schedule=1/0;1/9", "--num-requests", "10"]) == 2
    greedy = ["simulate", "--scenario", str(toml), "--policy", "greedy", "--rate", "1"]
    assert main([*greedy, "--availability-target", "0.9", "--num-requests", "10"]) == 2
    assert main([*base, "--availability-target", "1.5"]) == 2


def test_a_sweep_over_the_knob_moves_only_the_knob_router(knob_router, tmp_path, capsys):
    from jaxserve.cli import main

    toml = tmp_path / "toy.toml"
    toml.write_text(scenario_to_toml(TOY))
    out = tmp_path / "front"
    args = ["sweep", "--scenario", str(toml), "--policies", f"{knob_router},greedy"]
    args += ["--rates", "1", "--miss-penalties", "0,3", "--seeds", "2", "--num-requests", "300"]
    assert main([*args, "--no-progress", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    avail = np.asarray(result["availability"])[:, 0, 0, 0]  # (policy, knob)
    assert result["miss_penalties"] == [0.0, 3.0] and out.with_suffix(".png").is_file()
    assert avail[0, 0] < 0.85 and avail[0, 1] > 0.98  # told 0: big (0.75); told 3: small (1)
    # Outside the trained range [0, 3]: one line, exit 2, before any simulation.
    base = args[:7] + ["--seeds", "2", "--num-requests", "300", "--no-progress"]  # no knob axis
    bad = [*base, "--miss-penalties", "0,5"]
    assert main(bad) == 2
    assert "--miss-penalties value = 5: outside the knob range [0, 3]" in capsys.readouterr().err
    # Steered by a target instead (no knob axis): only small meets 0.95 (availability 1).
    assert main([*base, "--json", "--availability-target", "0.95"]) == 0
    steered_avail = np.asarray(json.loads(capsys.readouterr().out)["availability"])
    assert steered_avail[0].min() > 0.98, steered_avail  # the scenario's P = 0 alone: 0.75
    assert avail[1, 0] == avail[1, 1]  # greedy ignores the knob: same arrivals, same runs
    # the reward under each penalty: quality delivered minus P per miss (hand rule)
    perf, reward = (np.asarray(result[k])[1, 0, 0, 0] for k in ("performance", "reward"))
    np.testing.assert_allclose(reward, perf - np.asarray([0.0, 3.0]) * (1 - avail[1]), atol=1e-5)
    rows = load_records(out.with_suffix(".csv"))
    assert sorted(set(rows.column("miss_penalty"))) == [0.0, 3.0]
    assert main(["calibrate-knob", str(knob_router), "--rates", "2", "--knobs", "2",
                 "--seeds", "1", "--num-requests", "100"]) == 0  # fmt: skip
    assert "availability (rows: Poisson rate" in capsys.readouterr().out


def test_finetuning_a_knob_router_without_a_knob_is_one_line(tmp_path, capsys):
    from jaxserve.cli import main

    argv = ["train", "--scenario", "opt-a100x4", "--steps", "2000", "--out", str(tmp_path / "o")]
    knob = str(Path(__file__).resolve().parents[2] / "checkpoints" / "opt-a100x4-knob")
    assert main([*argv, "--finetune-from", knob]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "observes the miss penalty" in err, err
