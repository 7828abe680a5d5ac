"""The virtual-clock engine IS the reference simulator when service times equal the profile."""

from __future__ import annotations

import threading

import jax
import numpy as np

from jaxserve.policies.baselines import make_policy
from jaxserve.serving import report
from jaxserve.serving.engine import VirtualEngine, run_virtual
from jaxserve.serving.router import Router
from jaxserve.serving.tasks import ByteTokenizer, TaskSet, read_task_rows
from jaxserve.sim import reference
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.workloads import fixed_arrivals


class ProfileRunner:
    """Stands in for a model: answers 0 and 'takes' exactly the profile latency."""

    def __init__(self, latency_s):
        self.latency_s = latency_s

    def run(self, prompts):
        return np.zeros(len(prompts), np.int64), self.latency_s[len(prompts) - 1]


class FixedRouter:
    """Replays given actions (for request-by-request comparison with the reference)."""

    def __init__(self, actions):
        self.actions = actions

    def decide(self, index, now_s, models):
        return int(self.actions[index])


def _engine(scenario):
    runners = [ProfileRunner(lat) for lat in scenario.latency_s]
    return VirtualEngine(scenario.sim_config(), scenario.sim_params(), runners)


def _task_set(scenario):
    return TaskSet(read_task_rows(), scenario.task_names, ByteTokenizer(), 16)


def test_matches_reference_request_by_request(scenario_toml):
    scenario = get_scenario(scenario_toml)
    rng = np.random.default_rng(0)
    arrival_s = np.cumsum(rng.exponential(1 / 2000.0, 300))  # overloaded: drops, rejections
    tasks = rng.integers(0, 2, 300)
    actions = rng.integers(0, 2, 300)
    engine, calls = _engine(scenario), []
    served = run_virtual(
        engine,
        FixedRouter(actions),
        arrival_s,
        tasks,
        _task_set(scenario),
        threading.Event(),
        calls.append,
    )
    assert calls == [1] * 300  # the progress callback: once per arrival
    expected = reference.simulate(
        scenario.sim_config(), scenario.sim_params(), arrival_s, tasks, actions
    )
    assert [r.outcome for r in served] == expected.outcome.tolist()
    np.testing.assert_allclose([r.completion_s for r in served], expected.completion_s)
    assert {0, 3} <= set(expected.outcome.tolist())  # on time and rejected (full queues)


def test_greedy_served_with_profile_times_equals_the_simulator_prediction(scenario_toml):
    scenario = get_scenario(scenario_toml)
    env = ServingEnv(scenario.sim_config())
    policy = make_policy("greedy", env, scenario)
    rng = np.random.default_rng(1)
    arrival_s = np.cumsum(rng.exponential(1 / 300.0, 200))
    tasks = rng.integers(0, 2, 200)
    arrivals = fixed_arrivals(arrival_s, tasks)
    arrival_s = np.cumsum(np.asarray(arrivals.gap_s, np.float64))  # the simulator's clock
    key_run = jax.random.key(3)
    router = Router(policy, env, scenario.sim_params(), arrivals, key_run)
    served = run_virtual(
        _engine(scenario), router, arrival_s, tasks, _task_set(scenario), threading.Event()
    )
    ledger = report.ledger_from_requests(served, len(arrival_s))
    measured = report.run_metrics(
        ledger, arrival_s, tasks, scenario.quality, 2, 0.1, ledger["outcome"] >= 0
    )
    predicted = report.predict(scenario, policy, arrivals, key_run, 0.1)
    for key in ("availability", "normalized_performance", "routing_fraction", "num_dropped"):
        np.testing.assert_allclose(measured[key], predicted[key], atol=1e-6)
    np.testing.assert_allclose(measured["latency_p50_s"], predicted["latency_p50_s"], rtol=1e-4)
    assert router.overhead_summary()["num_decisions"] == 200


def test_per_request_deadline_factors_match_the_reference(scenario_toml):
    """Dynamic deadlines: the engine applies each request's factor as the simulators do."""
    scenario = get_scenario(scenario_toml)
    rng = np.random.default_rng(2)
    arrival_s = np.cumsum(rng.exponential(1 / 800.0, 300))
    tasks, actions = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    scale = rng.choice([0.3, 1.0, 2.0], 300)
    served = run_virtual(
        _engine(scenario),
        FixedRouter(actions),
        arrival_s,
        tasks,
        _task_set(scenario),
        threading.Event(),
        deadline_scale=scale,
    )
    expected = reference.simulate(
        scenario.sim_config(),
        scenario.sim_params(),
        arrival_s,
        tasks,
        actions,
        deadline_scale=scale,
    )
    assert [r.outcome for r in served] == expected.outcome.tolist()
    unscaled = reference.simulate(
        scenario.sim_config(), scenario.sim_params(), arrival_s, tasks, actions
    )
    assert expected.outcome.tolist() != unscaled.outcome.tolist()  # the factors matter here


def test_the_knob_changes_mid_run_in_serve_as_in_the_simulator(scenario_toml):
    # A policy that reads only the knob (docs/knob.md): model 1 when told P > 1, else model 0.
    # The first 100 requests are told 0 and the last 100 are told 3 (per-request knob, as a
    # workload's knob_schedule sets it); the jitted router step reads it per decision.
    import jax.numpy as jnp

    from jaxserve.sim.base import knob_value

    scenario = get_scenario(scenario_toml)
    env = ServingEnv(scenario.sim_config())
    policy = lambda key, obs, state, params: (knob_value(state, params) > 1).astype(jnp.int32)
    rng = np.random.default_rng(2)
    tasks = rng.integers(0, 2, 200)
    arrivals = fixed_arrivals(np.cumsum(rng.exponential(1 / 100.0, 200)), tasks)
    arrivals = arrivals.replace(knob=jnp.asarray(np.repeat([0.0, 3.0], 100), jnp.float32))
    arrival_s = np.cumsum(np.asarray(arrivals.gap_s, np.float64))
    key_run = jax.random.key(4)
    router = Router(policy, env, scenario.sim_params(), arrivals, key_run)
    served = run_virtual(
        _engine(scenario), router, arrival_s, tasks, _task_set(scenario), threading.Event()
    )
    ledger = report.ledger_from_requests(served, 200)
    np.testing.assert_array_equal(ledger["action"], np.repeat([0, 1], 100))
    predicted = report.predict(scenario, policy, arrivals, key_run, 0.1)
    np.testing.assert_allclose(predicted["routing_fraction"][:2], [0.5, 0.5])
