"""The serving simulator: environment, reference oracle, workloads, scenarios, metrics."""

from jaxserve.sim.compile import sim_jit
from jaxserve.sim.counter_env import CounterEnv, make_env
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.ring import RingState
from jaxserve.sim.rollout import (
    counter_rollout,
    counter_rollouts,
    lane_rollout,
    lane_rollouts,
    ledger_rollout,
    run_actions,
)
from jaxserve.sim.scenarios import Scenario, get_scenario, list_scenarios, zoo_scenario
from jaxserve.sim.types import Arrivals, EnvState, QueueView, Records, SimConfig, SimParams
from jaxserve.sim.workloads import WorkloadSpec, make_workload

__all__ = [
    "Arrivals",
    "CounterEnv",
    "EnvState",
    "Records",
    "RingState",
    "Scenario",
    "QueueView",
    "ServingEnv",
    "SimConfig",
    "SimParams",
    "WorkloadSpec",
    "counter_rollout",
    "counter_rollouts",
    "get_scenario",
    "lane_rollout",
    "lane_rollouts",
    "ledger_rollout",
    "list_scenarios",
    "make_env",
    "make_workload",
    "run_actions",
    "sim_jit",
    "zoo_scenario",
]
