"""Test doubles: a toy scenario worked out by hand, random scenarios, arrival helpers.

The toy (docs/simulator.md semantics, every outcome worked out below): every number is a
binary fraction, so float32 (JAX) and float64 (reference) agree exactly and the boundary
case "lateness exactly 0 is on time" is really exercised. It covers batching, a full-queue
rejection, a reject action, a late completion, a drop, events at exactly the next arrival
time, and the drain.

Scenario: one model (k = 0) with one replica, max_batch 2, queue capacity 2, latency
1.0 s alone and 1.5 s for a batch of 2; `max` batching, hard deadlines, drop_expired on,
reject action allowed (action 1). Task 0: deadline 2.0 s, quality 0.625. Task 1: deadline
1.0 s, quality 0.75. miss_penalty 0.25, no max_wait, no noise.

Timeline (step i covers (a_i, a_{i+1}]; the last step also covers the drain):
* 0.50  #0 arrives; the replica is idle: #0 starts alone, busy until 1.50.
* 0.75  #1 queued (queue [1]).   1.00  #2 queued (queue [1, 2]: full).
* 1.25  #3 routed to the full queue (2 == capacity): rejected, model 0.
* 1.50  (step 3) #0 completes. Batch start: drop check 1.50 + 1.0 = 2.50 <= 2.75, 3.00,
        nobody dropped; max rule b = min(2, 2) = 2: {#1, #2} busy until 1.50 + 1.5 = 3.00.
* 1.75  #4 (task 1, deadline 2.75) queued (queue [4]).
* 3.00  = a_5, so these events come before decision 5 (step 4): {#1, #2} completes first
        (completion before start); then a batch start drops #4 (3.00 + 1.0 > 2.75) and,
        the queue being empty, starts nothing. Then #5 arrives: starts alone, until 4.00.
* 3.25  #6 takes the reject action: rejected, model -1.
* 4.00  (drain, step 6) #5 completes.

 i | arr. | task | act | deadline | outcome  | model | utility | done at | latency | step
---|------|------|-----|----------|----------|-------|---------|---------|---------|-----
 0 | 0.50 | 0    | 0   | 2.50     | on time  | 0     | +0.625  | 1.50    | 1.00    | 3
 1 | 0.75 | 0    | 0   | 2.75     | late     | 0     | -0.25   | 3.00    | 2.25    | 4
 2 | 1.00 | 0    | 0   | 3.00     | on time* | 0     | +0.625  | 3.00    | 2.00    | 4
 3 | 1.25 | 0    | 0   | 3.25     | rejected | 0     | -0.25   | 1.25    | 0       | 3
 4 | 1.75 | 1    | 0   | 2.75     | dropped  | 0     | -0.25   | 3.00    | 0       | 4
 5 | 3.00 | 0    | 0   | 5.00     | on time  | 0     | +0.625  | 4.00    | 1.00    | 6
 6 | 3.25 | 1    | 1   | 4.25     | rejected | -1    | -0.25   | 3.25    | 0       | 6
(* lateness exactly 0 counts as on time.)

Rewards per step: 0, 0, 0, 0.625 - 0.25 = 0.375, -0.25 + 0.625 - 0.25 = 0.125, 0,
0.625 - 0.25 = 0.375; their sum 0.875 = total utility.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxserve.sim.types import (
    DROPPED,
    LATE,
    NEVER_S,
    ON_TIME,
    REJECTED,
    Arrivals,
    SimConfig,
    SimParams,
    to_jnp_tuple,
)

TOY_CONFIG = SimConfig(
    num_tasks=2,
    max_batch=(2,),
    replicas=(1,),
    queue_capacity=(2,),
    batching="max",
    deadline_kind="hard",
    drop_expired=True,
    allow_reject=True,
)

TOY_GAPS_S = np.array([0.5, 0.25, 0.25, 0.25, 0.5, 1.25, 0.25], dtype=np.float32)
TOY_TASKS = np.array([0, 0, 0, 0, 1, 0, 1], dtype=np.int32)
TOY_ACTIONS = np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.int32)


def toy_params() -> SimParams:
    """Parameters of the toy scenario (see the module docstring)."""
    return SimParams(
        quality=to_jnp_tuple([[0.625], [0.75]]),
        latency_s=to_jnp_tuple([[1.0, 1.5]]),
        deadline_s=to_jnp_tuple([2.0, 1.0]),
        grace_s=to_jnp_tuple([1.0, 1.0]),
        max_wait_s=to_jnp_tuple([0.0]),
        miss_penalty=to_jnp_tuple(0.25),
        noise_sigma=to_jnp_tuple(0.0),
        reference_rate=to_jnp_tuple(1.0),
        rate_window_s=to_jnp_tuple(10.0),
    )


def toy_expected() -> dict[str, np.ndarray]:
    """The hand-computed outcome of every toy request (module docstring), by decision."""
    return {
        "outcome": np.array([ON_TIME, LATE, ON_TIME, REJECTED, DROPPED, ON_TIME, REJECTED]),
        "model": np.array([0, 0, 0, 0, 0, 0, -1]),
        "utility": np.array([0.625, -0.25, 0.625, -0.25, -0.25, 0.625, -0.25]),
        "completion_s": np.array([1.5, 3.0, 3.0, 1.25, 3.0, 4.0, 3.25]),
        "latency_s": np.array([1.0, 2.25, 2.0, 0.0, 0.0, 1.0, 0.0]),
        "resolve_step": np.array([3, 4, 4, 3, 4, 6, 6]),
        "rewards": np.array([0.0, 0.0, 0.0, 0.375, 0.125, 0.0, 0.375]),
    }


def toy_scenario():
    """(config, params, arrival_times_s, tasks, actions, expected) of the hand-worked toy."""
    return (
        TOY_CONFIG,
        toy_params(),
        absolute_times_s(TOY_GAPS_S),
        TOY_TASKS.copy(),
        TOY_ACTIONS.copy(),
        toy_expected(),
    )


def arrivals_from_gaps(gap_s, task, num_padded: int | None = None) -> Arrivals:
    """Builds `Arrivals` from numpy gaps and tasks, padded with invalid entries if asked."""
    gap_s = np.asarray(gap_s, dtype=np.float32)
    task = np.asarray(task, dtype=np.int32)
    n = len(gap_s)
    size = n if num_padded is None else num_padded
    if size < n:
        raise ValueError(f"num_padded = {num_padded} < number of arrivals {n}")
    pad = size - n
    return Arrivals(
        gap_s=to_jnp_tuple(np.concatenate([gap_s, np.zeros(pad, np.float32)])),
        task=to_jnp_tuple(np.concatenate([task, np.zeros(pad, np.int32)]), dtype=np.int32),
        valid=to_jnp_tuple(np.arange(size) < n, dtype=bool),
    )


def absolute_times_s(gap_s) -> np.ndarray:
    """Float64 absolute arrival times from float32 gaps (what the reference should consume)."""
    return np.cumsum(np.asarray(gap_s, dtype=np.float32).astype(np.float64))


# ---------------------------------------------------------------- random scenarios
@dataclasses.dataclass(frozen=True)
class RandomScenario:
    """One randomised episode for differential / property tests (float32 numpy inputs)."""

    params: SimParams
    gap_s: np.ndarray  # (n,) float32
    task: np.ndarray  # (n,) int32
    action: np.ndarray  # (n,) int32


def random_config(rng: np.random.Generator, num_models: int | None = None, **fixed) -> SimConfig:
    """A random static config: 1-6 models, max_batch 1-16, replicas 1-3, capacity 1-20.

    `fixed` overrides any SimConfig field (e.g. batching="max").
    """
    num_models = int(rng.integers(1, 7)) if num_models is None else num_models
    ints = lambda lo, hi: tuple(int(v) for v in rng.integers(lo, hi + 1, num_models))
    config = SimConfig(
        num_tasks=int(rng.integers(1, 5)),
        max_batch=ints(1, 16),
        replicas=ints(1, 3),
        queue_capacity=ints(1, 20),
        batching=str(rng.choice(["max", "deadline"])),
        deadline_kind=str(rng.choice(["hard", "soft"])),
        decay=str(rng.choice(["linear", "exponential"])),
        drop_expired=bool(rng.random() < 0.5),
        allow_reject=bool(rng.random() < 0.5),
    )
    return dataclasses.replace(config, **fixed)


def random_latency_s(rng: np.random.Generator, config: SimConfig) -> np.ndarray:
    """(K, pad_batch) positive non-decreasing latency tables, NEVER_S past each max_batch."""
    table = np.full((config.num_models, config.pad_batch), NEVER_S, dtype=np.float64)
    for k, max_batch in enumerate(config.max_batch):
        alone_s = rng.uniform(0.02, 0.5)
        per_extra_s = alone_s * rng.uniform(0.0, 0.5)  # marginal cost of one more request
        steps = rng.uniform(0.0, 2.0, max_batch - 1) * per_extra_s
        table[k, :max_batch] = alone_s + np.concatenate([[0.0], np.cumsum(steps)])
    return table


def random_scenario(
    rng: np.random.Generator, config: SimConfig, min_arrivals: int = 20, max_arrivals: int = 200
) -> RandomScenario:
    """Random params (latency, deadlines, quality, max_wait, penalty), arrivals and actions."""
    latency_s = random_latency_s(rng, config)
    k, t = config.num_models, config.num_tasks
    alone_s = latency_s[:, 0]
    deadline_s = rng.uniform(1.0, 5.0, t) * alone_s.mean()
    max_wait_s = (
        rng.uniform(0.0, 1.0, k) * alone_s * (rng.random(k) < 0.7)
        if rng.random() < 0.5
        else np.zeros(k)
    )
    params = SimParams(
        quality=to_jnp_tuple(rng.uniform(0.0, 1.0, (t, k))),
        latency_s=to_jnp_tuple(latency_s),
        deadline_s=to_jnp_tuple(deadline_s),
        grace_s=to_jnp_tuple(rng.uniform(0.1, 2.0, t) * deadline_s),
        max_wait_s=to_jnp_tuple(max_wait_s),
        miss_penalty=to_jnp_tuple(rng.uniform(0.0, 1.0) if rng.random() < 0.5 else 0.0),
        noise_sigma=to_jnp_tuple(0.0),
        reference_rate=to_jnp_tuple(1.0),
        rate_window_s=to_jnp_tuple(1.0),
    )
    # Offered load from well below to well above what the replicas serve one at a time.
    capacity_per_s = sum(r / lat for r, lat in zip(config.replicas, alone_s, strict=True))
    rate_per_s = capacity_per_s * np.exp(rng.uniform(np.log(0.3), np.log(4.0)))
    n = int(rng.integers(min_arrivals, max_arrivals + 1))
    gap_s = rng.exponential(1.0 / rate_per_s, n)
    gap_s[rng.random(n) < 0.05] = 0.0  # some simultaneous arrivals
    return RandomScenario(
        params=params,
        gap_s=gap_s.astype(np.float32),
        task=rng.integers(0, t, n).astype(np.int32),
        action=rng.integers(0, config.num_actions, n).astype(np.int32),
    )
