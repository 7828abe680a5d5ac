"""The router inside the serving loop: any simulator policy, fed an EnvState built from the engine.

Policies have the signature `policy(key, obs, state, params)` and read the JAX `EnvState`
(greedy and jsq read queue lengths, busy replicas and their completion times; lp reads the
rate estimate; a learned router reads only the observation). `Router` rebuilds that state
from the engine's Python queues at each decision and computes the observation with the
simulator's own `ServingEnv.observe`, so every policy works unchanged and sees exactly what
it would see in the simulator. Keys follow `sim.rollout.ledger_rollout`, so stochastic
policies draw the same numbers as in the simulator run with the same seed.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.sim.env import ServingEnv
from jaxserve.sim.types import FREE, WAITING, Arrivals, Counters, EnvState, SimParams


def replica_free_s(model) -> dict[int, float]:
    """Busy replica -> (expected) completion time, from the model's completion list."""
    return {replica: free_s for free_s, replica in model.completions}


class RateEstimate:
    """The simulator's arrival-rate estimate (docs/simulator.md step 4)."""

    def __init__(self, window_s: float):
        self.window_s = window_s
        self.rate = 1.0 / window_s  # at reset: the first arrival counted
        self.last_s: float | None = None

    def update(self, arrival_s: float) -> float:
        """Count an arrival at arrival_s; returns the estimate."""
        if self.last_s is not None:
            gap_s = arrival_s - self.last_s
            self.rate = self.rate * math.exp(-gap_s / self.window_s) + 1.0 / self.window_s
        self.last_s = arrival_s
        return self.rate


class Router:
    """`decide(index, now_s, models)` -> action, timing every decision."""

    def __init__(
        self, policy, env: ServingEnv, params: SimParams, arrivals: Arrivals, key_run: jax.Array
    ):
        self.env, self.params, self.arrivals = env, params, arrivals
        cfg = env.config
        self._shape_ks = (cfg.num_models, cfg.pad_slots)
        self._shape_kr = (cfg.num_models, cfg.pad_replicas)
        self._counters = Counters(
            num_arrived=jnp.int32(0),
            num_outcome=jnp.zeros(4, jnp.int32),
            sum_utility=jnp.float32(0.0),
            sum_peak=jnp.float32(0.0),
            sum_latency_s=jnp.float32(0.0),
            num_routed=jnp.zeros(cfg.num_actions, jnp.int32),
        )
        self._key_data = jax.random.key_data(key_run)  # raw data: key_run stays unconsumed
        self.rate = RateEstimate(float(params.rate_window_s))
        self.decision_s: list[float] = []

        def decide(key_data, index, state, params):
            key, _ = jax.random.split(jax.random.wrap_key_data(key_data))  # as the rollout
            key_policy, _ = jax.random.split(jax.random.fold_in(key, index))
            return policy(key_policy, env.observe(state, params), state, params)

        self._decide = jax.jit(decide)

    def build_state(self, index: int, now_s: float, models) -> EnvState:
        """EnvState of the engine at decision `index` (times relative to a whole-second origin)."""
        origin = math.floor(now_s)
        queue_len = np.zeros(self._shape_ks[0], np.int32)
        batch_size = np.zeros(self._shape_kr, np.int32)
        free_s = np.full(self._shape_kr, now_s - origin, np.float32)
        slot_replica = np.full(self._shape_ks, FREE, np.int32)
        slot_pos = np.zeros(self._shape_ks, np.int32)
        slot_arrival = np.zeros(self._shape_ks, np.float32)
        slot_deadline = np.zeros(self._shape_ks, np.float32)
        for k, model in enumerate(models):
            queue_len[k] = len(model.queue)
            for pos, request in enumerate(model.queue):
                slot_replica[k, pos], slot_pos[k, pos] = WAITING, pos
                slot_arrival[k, pos] = request.arrival_s - origin
                slot_deadline[k, pos] = request.deadline_s - origin
            for replica, done_s in replica_free_s(model).items():
                batch_size[k, replica] = len(model.batches[replica])
                free_s[k, replica] = done_s - origin
        zeros = np.zeros(self._shape_ks, np.float32)
        return EnvState(
            arrivals=self.arrivals,
            step=np.int32(index),
            origin_s=np.int32(origin),
            now_s=np.float32(now_s - origin),
            rate_est=np.float32(self.rate.rate),
            queue_len=queue_len,
            slot_replica=slot_replica,
            slot_pos=slot_pos,
            slot_arrival_s=slot_arrival,
            slot_deadline_s=slot_deadline,
            slot_quality=zeros,
            slot_grace_s=np.ones(self._shape_ks, np.float32),
            slot_decision=np.zeros(self._shape_ks, np.int32),
            free_s=free_s,
            batch_size=batch_size,
            counters=self._counters,
        )

    def warmup(self, models) -> float:
        """Compile the decision function before the clock starts; returns seconds."""
        start = time.perf_counter()
        self._decide(self._key_data, np.int32(0), self.build_state(0, 0.0, models), self.params)
        return time.perf_counter() - start

    def decide(self, index: int, now_s: float, models) -> int:
        """Count the arrival in the rate estimate, then the policy's action for request index."""
        start = time.perf_counter()
        self.rate.update(now_s)
        state = self.build_state(index, now_s, models)
        action = int(self._decide(self._key_data, np.int32(index), state, self.params))
        self.decision_s.append(time.perf_counter() - start)
        return action

    def overhead_summary(self) -> dict:
        """Decision latency in microseconds (state building + observation + policy)."""
        us = np.asarray(self.decision_s) * 1e6
        if us.size == 0:
            return {"num_decisions": 0}
        return {
            "num_decisions": int(us.size),
            "mean_us": float(us.mean()),
            "p50_us": float(np.median(us)),
            "p99_us": float(np.percentile(us, 99)),
        }
