"""The planner's learned routers: one population over placements (evaluation/plan_train.py).

The toy zoo of jaxserve/testing/planner.py (small: quality 0.5, 0.01 s; big: 1.0, 0.1 s;
deadline 0.25 s) at 2 requests/s, an idle system at almost every decision: a router
should send everything to big where big is placed, and to small where it is not.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxserve.cli import main
from jaxserve.evaluation.placements import parse_placement, placement_scenario
from jaxserve.evaluation.plan import PlanConfig, plan
from jaxserve.evaluation.plan_report import plan_json
from jaxserve.evaluation.plan_train import (
    PlacementRouter,
    member_params,
    padded_scenario,
    restrict_to_placement,
    save_placement_router,
    train_placement_routers,
    training_config,
)
from jaxserve.rl.config import DQNConfig, hparams_with
from jaxserve.rl.envs import ServingAdapter
from jaxserve.rl.networks import init_params, make_q_network
from jaxserve.rl.policy import load_checkpoint_scenario, load_learned_policy, make_q_policy
from jaxserve.rl.trainer import train_routers
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.rollout import counter_rollout
from jaxserve.sim.workloads import WorkloadSpec, make_workload
from jaxserve.testing.planner import TOY_MEMORY_GB, toy_zoo

REPO = Path(__file__).resolve().parents[2]
RATES = np.asarray([2.0])
TINY_DQN = DQNConfig(
    hidden=(16,),
    num_envs=8,
    episode_length=64,
    total_env_steps=8 * 64 * 12,
    episodes_per_chunk=12,
    learning_starts=128,
    batch_size=64,
    buffer_size=2048,
    eval_length=64,
    eval_episodes=1,
    eval_rate_factors=(0.1,),
    credit="completion",  # idle system: a request resolves within its own step
)
PLACEMENTS = ("2/0", "0/2", "1/1")  # replicas of (small, big)


def run_counters(env, policy, sim_params, num_tasks: int, members: bool = False):
    """Counters of one 200-arrival Poisson run at 2 req/s (the same arrivals every call).

    `members`: `policy(params)` makes the policy and `sim_params` is a (Q-params, sim
    params) pair stacked over members, all run in one vmapped call.
    """
    wparams, generate = make_workload(WorkloadSpec(kind="poisson", rate=2.0), num_tasks, 200)
    arrivals = generate(jax.random.key(7), wparams)
    one = lambda pol, p: counter_rollout(env, pol, jax.random.key(8), p, arrivals)
    if members:
        run = jax.vmap(lambda q, p: one(policy(q), p))
        return jax.tree.map(np.asarray, jax.jit(run)(*sim_params))
    return jax.tree.map(np.asarray, jax.jit(lambda p: one(policy, p))(sim_params))


def test_members_respect_their_placements_and_restrict_exactly():
    zoo = toy_zoo()
    placements = [parse_placement(t, zoo.model_names, (1, 1)) for t in PLACEMENTS]
    padded = padded_scenario(zoo, placements)
    config = training_config(TINY_DQN, padded, RATES)
    env_params = member_params(padded, zoo, placements, seeds=1)
    hp = hparams_with({"discount": 0.0, "learning_rate": 3e-3})
    _, states = train_routers(
        padded, config, None, hp, 0, len(placements), progress=False, env_params=env_params
    )
    adapter = ServingAdapter(padded, config)
    network = make_q_network(adapter.num_actions, config.hidden)
    policy = lambda params: make_q_policy(network, params)
    members = run_counters(
        adapter.eval_env, policy, (states.params, env_params), zoo.num_tasks, members=True
    )
    for m, placement in enumerate(placements):
        routed = members.num_routed[m]
        absent = [k for k, r in enumerate(placement.replicas) if r == 0]
        assert np.all(routed[absent] == 0), (placement.key, routed)
        want = 0 if placement.key == "2/0" else 1  # big where placed, else small
        assert routed[want] == 200, (placement.key, routed)
    # Cut down to its models, the member without big routes its own scenario identically.
    placement = placements[0]
    scenario = placement_scenario(zoo, placement)
    params = jax.tree.map(lambda x: np.asarray(x[0]), states.params)
    restricted = restrict_to_placement(params, adapter.env.config, placement)
    own = run_counters(
        make_env(scenario.sim_config(emit_records=False)),
        make_q_policy(make_q_network(scenario.num_models, config.hidden), restricted),
        scenario.sim_params(),
        zoo.num_tasks,
    )
    np.testing.assert_array_equal(own.num_routed, members.num_routed[0][:1])
    np.testing.assert_array_equal(own.num_outcome, members.num_outcome[0])
    np.testing.assert_allclose(own.sum_utility, members.sum_utility[0], rtol=1e-6)


@pytest.mark.slow  # keeps the default suite near 10 min on 2 cores; `pytest -m slow`
def test_plan_trains_every_survivor_in_one_population(tmp_path):
    config = PlanConfig(
        scenario=toy_zoo(),
        gpus=2,
        rates=tuple(RATES),
        memory_gb=TOY_MEMORY_GB,
        include=("2/0",),
        num_requests=300,
        seeds=2,
        dqn=TINY_DQN,
    )
    result = plan(config, out_dir=tmp_path)
    data = plan_json(result)
    learned = {
        p["placement"]: p["policies"]["learned"]["performance"]
        for p in data["placements"]
        if "learned" in p["policies"]
    }
    assert set(learned) == {"2/0", "0/2", "1/1"}, learned  # every simulated placement
    assert learned["2/0"] == 0.5  # small only: every request on time at quality 0.5
    assert learned["0/2"] > 0.97 and learned["1/1"] > 0.97
    assert result.train_wall_s is not None and result.train_wall_s > 0
    # Each placement's router is an ordinary checkpoint of its own scenario.
    for key in learned:
        router = tmp_path / "routers" / key.replace("/", "-")
        scenario = load_checkpoint_scenario(router)
        assert scenario.replicas == tuple(r for r in map(int, key.split("/")) if r)
        load_learned_policy(router, scenario)
    chosen = load_checkpoint_scenario(tmp_path / "router")
    assert chosen.model_names == placement_scenario(result.zoo, result.chosen.placement).model_names


def test_finetune_from_starts_every_member_from_the_checkpoint(tmp_path):
    zoo = toy_zoo()
    full = parse_placement("1/1", zoo.model_names, (1, 1))
    network = make_q_network(zoo.num_models, TINY_DQN.hidden)
    obs_size = zoo.sim_config().obs_size
    start = init_params(network, jax.random.key(3), obs_size)
    scenario = placement_scenario(zoo, full)
    router = PlacementRouter(full, scenario, TINY_DQN, start, member=0, eval_mean=0.0)
    save_placement_router(router, 0, tmp_path / "start")
    # No update happens before `learning_starts`: every member must keep the start exactly.
    frozen = dataclasses.replace(TINY_DQN, learning_starts=TINY_DQN.total_env_steps + 1)
    placements = [parse_placement(t, zoo.model_names, (1, 1)) for t in PLACEMENTS]
    routers, _ = train_placement_routers(
        zoo, placements, frozen, RATES, finetune_from=tmp_path / "start"
    )
    sim_config = padded_scenario(zoo, placements).sim_config()
    for got in routers:
        want = restrict_to_placement(start, sim_config, got.placement)
        jax.tree.map(np.testing.assert_array_equal, got.params, want)
        assert got.finetuned_from == str(tmp_path / "start")


def test_finetune_from_a_router_of_another_zoo_is_one_line(capsys):
    router = str(REPO / "checkpoints" / "opt-a100x4-hard")  # 3 models; the zoo here has 2
    argv = ["plan", "--models", "opt-125m,opt-6.7b", "--finetune-from", router]
    assert main([*argv, "--train-top", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "obs_size" in err, err
