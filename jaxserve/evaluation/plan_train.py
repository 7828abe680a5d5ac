"""The planner's learned routers: one population over placements, trained in one compiled call.

Placements of one zoo differ only in how many replicas (and so how much queue) each model
gets, so they share one program: the zoo's models, each model's replica axis padded to the
most any trained placement gives it (`padded_scenario`), and each member's active replicas
and queue capacities in its `SimParams` (docs/simulator.md, "Active replicas"). A model
a placement leaves out has 0 active replicas: a request routed there is rejected, and its
observation features are 0. Members are placements x seeds, all in one `jit(vmap)`
population (`rl.trainer.train_routers` with per-member env params). Each placement's best
seed (by the learner's own evaluation on its placement) is then cut down to the
placement's models (`restrict_params`: the absent models' input rows, which only ever saw
0, and their Q-values dropped), which makes it an ordinary router of the placement's
scenario. docs/planner.md has the decisions.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.evaluation.placements import (
    Placement,
    placement_scenario,
    replica_queue_capacity,
)
from jaxserve.rl.config import DQNConfig, HParams, finetune_overrides, hparams_with
from jaxserve.rl.envs import ServingAdapter, reference_capacity
from jaxserve.rl.knob import reward_hparams
from jaxserve.rl.networks import restrict_params
from jaxserve.rl.policy import config_policy
from jaxserve.rl.trainer import router_metadata, train_routers, write_router
from jaxserve.sim.base import action_index, observation_index
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.types import SimParams


@dataclasses.dataclass(frozen=True)
class PlacementRouter:
    """A placement's learned router: the best seed's Q-network cut down to its models."""

    placement: Placement
    scenario: Scenario  # the placement's own (its models only)
    config: DQNConfig  # the training, in the placement's terms (rates relative to it)
    params: dict  # Q-network parameters for the placement's observation and actions
    member: int  # index in the population (placement-major: placement x seeds + seed)
    eval_mean: float  # the learner's last evaluation of that member, on its placement
    finetuned_from: str | None = None  # the router checkpoint every member started from

    def policy(self):
        """The greedy policy on the placement's scenario (pure, jit-able)."""
        return config_policy(self.scenario.sim_config().num_actions, self.config, self.params)


def training_config(dqn: DQNConfig, scenario: Scenario, rates: np.ndarray) -> DQNConfig:
    """`dqn` with its training rates spanning the plan's (half the lowest to 1.5x the highest)."""
    scale = reference_capacity(scenario)
    return dataclasses.replace(
        dqn,
        min_rate_factor=float(rates.min()) / scale / 2,
        max_rate_factor=float(rates.max()) / scale * 1.5,
    )


def training_hparams(config: DQNConfig, scenario: Scenario, finetune_from) -> HParams:
    """The `HParams` every placement's router trains with (and its checkpoint records)."""
    defaults = reward_hparams(config, scenario.miss_penalty)
    return hparams_with(finetune_overrides(defaults, finetune_from))


def padded_scenario(zoo: Scenario, placements: list[Placement]) -> Scenario:
    """The zoo with each model's replicas (and queue) padded to the most any placement uses."""
    most = [max(1, *(p.replicas[k] for p in placements)) for k in range(zoo.num_models)]
    per_replica = replica_queue_capacity(zoo)
    return dataclasses.replace(
        zoo,
        name=f"{zoo.name}-plan-padded",
        replicas=tuple(most),
        queue_capacity=tuple(c * r for c, r in zip(per_replica, most, strict=True)),
    )


def member_params(
    padded: Scenario, zoo: Scenario, placements: list[Placement], seeds: int
) -> SimParams:
    """(placements x seeds,) stacked params: the padded scenario's, each placement's replicas."""
    base = padded.sim_params()
    per_replica = np.asarray(replica_queue_capacity(zoo), np.int32)
    rows = [
        base.replace(
            replicas=jnp.asarray(p.replicas, jnp.int32),
            queue_capacity=jnp.asarray(per_replica * np.asarray(p.replicas), jnp.int32),
        )
        for p in placements
        for _ in range(seeds)
    ]
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *rows)


def train_placement_routers(
    zoo: Scenario,
    placements: list[Placement],
    dqn: DQNConfig,
    rates: np.ndarray,
    seed: int = 0,
    seeds: int = 1,
    finetune_from: str | Path | None = None,
) -> tuple[list[PlacementRouter], float]:
    """One router per placement from one population call; (routers, its wall seconds).

    `finetune_from`: a router checkpoint of the zoo's models (e.g. the shipped
    `checkpoints/opt-a100x4-hard`) that every member starts from, as `train
    --finetune-from` does; its observation does not depend on replica counts, so one
    router fits every placement (docs/planner.md, "Warm start").
    """
    padded = padded_scenario(zoo, placements)
    config = training_config(dqn, padded, rates)
    env_params = member_params(padded, zoo, placements, seeds)
    hparams = training_hparams(config, padded, finetune_from)
    start = time.perf_counter()
    summary, states = train_routers(
        padded, config, None, hparams, seed, len(placements) * seeds, finetune_from,
        progress=False, env_params=env_params,
    )  # fmt: skip
    wall_s = time.perf_counter() - start
    sim_config = ServingAdapter(padded, config).env.config
    eval_mean = np.asarray(summary["eval_mean"]).reshape(len(placements), seeds)
    routers = []
    for i, placement in enumerate(placements):
        member = i * seeds + int(np.argmax(eval_mean[i]))
        params = jax.tree.map(lambda x, m=member: np.asarray(x[m]), states.params)
        scenario = placement_scenario(zoo, placement)
        router = PlacementRouter(
            placement,
            scenario,
            training_config(dqn, scenario, rates),
            restrict_to_placement(params, sim_config, placement),
            member,
            float(eval_mean.flat[member]),
            None if finetune_from is None else str(finetune_from),
        )
        routers.append(router)
    return routers, wall_s


def restrict_to_placement(params, sim_config, placement: Placement):
    """Q-network params of the padded program cut down to the placement's models."""
    keep = [k for k, r in enumerate(placement.replicas) if r > 0]
    inputs = observation_index(sim_config, keep)
    return restrict_params(params, inputs, action_index(sim_config, keep))


def time_training(
    zoo: Scenario, placements: list[Placement], dqn: DQNConfig, rates: np.ndarray, seed: int = 0
) -> tuple[dict, list, list]:
    """The routers of `placements` trained as one population and one by one
    (`evaluation.train` on each placement's scenario, as the planner did before).

    Returns (wall seconds of each, compilation included; the population's routers; the
    one-by-one routers' policies), for docs/planner.md, "Measured".
    """
    from jaxserve.evaluation.train import TrainConfig, train

    routers, population_s = train_placement_routers(zoo, placements, dqn, rates, seed)
    sequential_s, policies = [], []
    for placement in placements:
        scenario = placement_scenario(zoo, placement)
        config = TrainConfig(
            scenario=scenario, dqn=training_config(dqn, scenario, rates), seed=seed
        )
        start = time.perf_counter()
        policies.append(train(config).policy(0))
        sequential_s.append(time.perf_counter() - start)
    timings = {
        "placements": [p.key for p in placements],
        "population_s": population_s,
        "sequential_s": sequential_s,
        "sequential_total_s": float(sum(sequential_s)),
    }
    return timings, routers, policies


def save_placement_router(router: PlacementRouter, seed: int, out_dir: str | Path) -> None:
    """A finished router checkpoint of the placement (its scenario TOML inside)."""
    config = router.config
    adapter = ServingAdapter(router.scenario, config)
    hparams = training_hparams(config, router.scenario, router.finetuned_from)
    extra = {
        "finetuned_from": router.finetuned_from,
        "trained_in": "plan population over placements (docs/planner.md)",
        "population_member": router.member,
    }
    meta = router_metadata(router.scenario, config, adapter, hparams, seed, 1, extra)
    policy = jax.tree.map(lambda x: np.asarray(x)[None], router.params)
    total = config.num_chunks
    write_router(Path(out_dir), meta, policy, total, total, [router.eval_mean])


__all__ = [
    "PlacementRouter",
    "member_params",
    "padded_scenario",
    "save_placement_router",
    "time_training",
    "train_placement_routers",
    "training_config",
]
