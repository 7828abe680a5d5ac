"""The plain-Python reference simulator against hand-computed answers and invariants."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from jaxserve.sim.reference import simulate
from jaxserve.sim.types import DROPPED, LATE, ON_TIME, REJECTED, SimConfig
from jaxserve.testing.toy import (
    absolute_times_s,
    random_config,
    random_scenario,
    toy_params,
    toy_scenario,
)


def _simulate_toy(**config_changes):
    config, params, arrival_s, tasks, actions, _ = toy_scenario()
    return simulate(
        dataclasses.replace(config, **config_changes), params, arrival_s, tasks, actions
    )


def test_toy_matches_hand_computed():
    config, params, arrival_s, tasks, actions, expected = toy_scenario()
    result = simulate(config, params, arrival_s, tasks, actions)
    for name, values in expected.items():
        np.testing.assert_array_equal(getattr(result, name), values, err_msg=name)


def test_toy_deadline_batching():
    """Same toy under the `deadline` rule, worked by hand.

    At 1.50 the queue is [1 (deadline 2.75), 2 (3.00)]: a batch of 2 would end at 3.00 > 2.75,
    so 1 goes alone, 1.50 -> 2.50, on time. At 2.50 the queue is [2 (3.00), 4 (2.75)]:
    2.50 + 1.0 = 3.50 misses both, so both are dropped at 2.50 (step 4 = (1.75, 3.00]).
    5 and 6 are as before.
    """
    result = _simulate_toy(batching="deadline")
    np.testing.assert_array_equal(
        result.outcome, [ON_TIME, ON_TIME, DROPPED, REJECTED, DROPPED, ON_TIME, REJECTED]
    )
    np.testing.assert_array_equal(result.completion_s, [1.5, 2.5, 2.5, 1.25, 2.5, 4.0, 3.25])
    np.testing.assert_array_equal(result.resolve_step, [3, 4, 4, 3, 4, 6, 6])
    np.testing.assert_array_equal(result.rewards, [0, 0, 0, 0.375, 0.125, 0, 0.375])


@pytest.mark.parametrize("decay, factor", [("linear", 0.75), ("exponential", math.exp(-0.25))])
def test_toy_soft_deadline(decay, factor):
    """Soft deadlines: request 1 is 0.25 s late with grace 1 s; it keeps quality * decay."""
    result = _simulate_toy(deadline_kind="soft", decay=decay)
    assert result.outcome[1] == LATE
    assert result.utility[1] == pytest.approx(0.625 * factor)
    assert result.outcome[2] == ON_TIME and result.utility[2] == 0.625  # lateness exactly 0


def test_toy_without_drop_expired_serves_the_expired_request_late():
    """drop_expired off: request 4 (deadline 2.75) is served alone 3.00 -> 4.00, late."""
    result = _simulate_toy(drop_expired=False)
    assert result.outcome[4] == LATE and result.completion_s[4] == 4.0
    assert result.utility[4] == -0.25
    # Request 5 now waits for 4: starts 4.00, ends 5.00 = its deadline, still on time.
    assert result.outcome[5] == ON_TIME and result.completion_s[5] == 5.0


def test_max_wait_holds_a_batch_until_full_or_timed_out():
    """max_wait 0.5 s, max_batch 2: a lone request waits 0.5 s; a second one starts it now."""
    config = SimConfig(
        num_tasks=1,
        max_batch=(2,),
        replicas=(1,),
        queue_capacity=(4,),
        batching="max",
        drop_expired=False,
    )
    params = dataclasses.replace(
        toy_params(),
        quality=np.array([[1.0]]),
        deadline_s=np.array([10.0]),
        grace_s=np.array([1.0]),
        max_wait_s=np.array([0.5]),
    )
    # 0 waits alone until 0.5 (ready time); 1 and 2 arrive at 3.0 and 3.25: the queue holds
    # max_batch at 3.25, so the batch of 2 starts at 3.25 and ends at 4.75.
    result = simulate(config, params, [0.0, 3.0, 3.25], [0, 0, 0], [0, 0, 0])
    np.testing.assert_array_equal(result.completion_s, [1.5, 4.75, 4.75])
    np.testing.assert_array_equal(result.resolve_step, [0, 2, 2])


def test_lowest_index_replica_and_parallel_service():
    """Two replicas serve two requests at once; a third waits for the first completion."""
    config = SimConfig(
        num_tasks=1,
        max_batch=(1,),
        replicas=(2,),
        queue_capacity=(4,),
        batching="max",
        drop_expired=False,
    )
    params = dataclasses.replace(
        toy_params(),
        quality=np.array([[1.0]]),
        latency_s=np.array([[1.0]]),
        deadline_s=np.array([10.0]),
        grace_s=np.array([1.0]),
    )
    result = simulate(config, params, [0.0, 0.25, 0.5], [0, 0, 0], [0, 0, 0])
    np.testing.assert_array_equal(result.completion_s, [1.0, 1.25, 2.0])


def test_noise_factors_scale_each_batch_in_start_order():
    config, params, arrival_s, tasks, actions, _ = toy_scenario()
    # Batch 0 (request 0) takes twice as long: 0.50 -> 2.50 = its deadline, still on time.
    result = simulate(
        config,
        dataclasses.replace(params, noise_sigma=np.float32(0.3)),
        arrival_s,
        tasks,
        actions,
        noise_factors=[2.0] + [1.0] * 10,
    )
    assert result.completion_s[0] == 2.5 and result.outcome[0] == ON_TIME


def test_bad_input_is_rejected():
    config, params, arrival_s, tasks, actions, _ = toy_scenario()
    with pytest.raises(ValueError, match="noise_sigma"):
        simulate(
            config,
            dataclasses.replace(params, noise_sigma=np.float32(0.1)),
            arrival_s,
            tasks,
            actions,
        )
    with pytest.raises(ValueError, match="non-decreasing"):
        simulate(config, params, arrival_s[::-1], tasks, actions)
    with pytest.raises(ValueError, match="actions"):
        simulate(config, params, arrival_s, tasks, actions + 5)
    with pytest.raises(ValueError, match="lengths"):
        simulate(config, params, arrival_s[:3], tasks, actions)


def _random_episodes(num_configs=15, per_config=4):
    for seed in range(num_configs):
        rng = np.random.default_rng(30_000 + seed)
        config = random_config(rng)
        for _ in range(per_config):
            yield config, random_scenario(rng, config)


def test_invariants_on_random_scenarios():
    """Every request resolves exactly once, in time, and rewards add up to total utility."""
    seen_outcomes = set()
    for config, episode in _random_episodes():
        arrival_s = absolute_times_s(episode.gap_s)
        result = simulate(config, episode.params, arrival_s, episode.task, episode.action)
        n, penalty = len(arrival_s), float(episode.params.miss_penalty)
        assert np.all(np.isin(result.outcome, [ON_TIME, LATE, DROPPED, REJECTED]))
        seen_outcomes.update(result.outcome.tolist())
        # Conservation: resolved by the end of step i <= arrived by step i; all at the end.
        decisions = np.arange(n)
        assert np.all((result.resolve_step >= decisions) & (result.resolve_step < n))
        # Resolution time lies in the step it is credited to: (a_i, a_{i+1}] or at a_i.
        step_start = arrival_s[result.resolve_step]
        step_end = np.append(arrival_s[1:], np.inf)[result.resolve_step]
        assert np.all((result.completion_s >= step_start) & (result.completion_s <= step_end))
        assert np.all(result.completion_s >= arrival_s)
        assert result.rewards.sum() == pytest.approx(result.utility.sum(), abs=1e-9)
        assert np.all((result.utility >= -penalty - 1e-12) & (result.utility <= 1.0))
        rejected_by_action = episode.action == config.num_models
        np.testing.assert_array_equal(result.model == -1, rejected_by_action)
        np.testing.assert_array_equal(
            result.model[~rejected_by_action], episode.action[~rejected_by_action]
        )
        completed = (result.outcome == ON_TIME) | (result.outcome == LATE)
        assert np.all(result.latency_s[~completed] == 0)
        assert np.all(result.latency_s[completed] > 0)
    assert seen_outcomes == {ON_TIME, LATE, DROPPED, REJECTED}
