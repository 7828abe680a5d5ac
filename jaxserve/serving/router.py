"""The router inside the serving loop: any simulator policy, fed a `QueueView` of the engine.

Policies have the signature `policy(key, obs, state, params)` and read the system through
`env.queue_view(state, params)` (greedy and jsq: queue lengths and when each model's first
replica is free; lp: the rate estimate; a learned router reads only the observation). A
`QueueView` is its own view, so `Router` passes one as `state`: it is built from the
engine's Python queues at each decision by the simulators' own `make_queue_view`, and the
observation by their own `observe`, so every policy works unchanged and sees exactly what
it would see in the simulator. Keys follow `sim.rollout.ledger_rollout`, so stochastic
policies draw the same numbers as in the simulator run with the same seed.
"""

from __future__ import annotations

import math
import time

import jax
import numpy as np

from jaxserve.sim.base import EnvBase, make_queue_view
from jaxserve.sim.types import Arrivals, SimParams


def replica_free_s(model) -> dict[int, float]:
    """Busy replica -> (expected) completion time, from the model's completion list."""
    return {replica: free_s for free_s, replica in model.completions}


class RateEstimate:
    """The simulator's arrival-rate estimate (docs/simulator.md step 4, `rules.update_rate`).

    In float64 on the host; the reference simulator has its own copy on purpose.
    """

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
        self, policy, env: EnvBase, params: SimParams, arrivals: Arrivals, key_run: jax.Array
    ):
        self.env, self.params, self.arrivals = env, params, arrivals
        cfg = env.config
        self._shape_kr = (cfg.num_models, cfg.pad_replicas)
        self._tasks = np.asarray(arrivals.task, np.int32)
        scale = arrivals.deadline_scale
        self._scales = None if scale is None else np.asarray(scale, np.float32)
        knob = arrivals.knob  # a knob_schedule: the knob changes mid-run, nothing reloads
        self._knobs = None if knob is None else np.asarray(knob, np.float32)
        self._key_data = jax.random.key_data(key_run)  # raw data: key_run stays unconsumed
        self.rate = RateEstimate(float(params.rate_window_s))
        self.decision_s: list[float] = []

        def decide(key_data, engine, params):
            key, _ = jax.random.split(jax.random.wrap_key_data(key_data))  # as the rollout
            key_policy, _ = jax.random.split(jax.random.fold_in(key, engine["step"]))
            view = make_queue_view(cfg, **engine, replicas=params.replicas)
            return policy(key_policy, env.observe(view, params), view, params)

        self._decide = jax.jit(decide)

    def engine_arrays(self, index: int, now_s: float, models) -> dict:
        """The engine at decision `index` as `make_queue_view`'s arguments (numpy).

        Times are float32 relative to a whole-second origin, as in the simulators' states.
        """
        origin = math.floor(now_s)
        now_rel_s = np.float32(now_s - origin)
        batch_size = np.zeros(self._shape_kr, np.int32)
        free_s = np.full(self._shape_kr, now_rel_s, np.float32)
        for k, model in enumerate(models):
            for replica, done_s in replica_free_s(model).items():
                batch_size[k, replica] = len(model.batches[replica])
                free_s[k, replica] = done_s - origin
        return {
            "step": np.int32(index),
            "task": self._tasks[index],
            "deadline_scale": np.float32(1.0) if self._scales is None else self._scales[index],
            "now_s": now_rel_s,
            "rate_est": np.float32(self.rate.rate),
            "queue_len": np.asarray([len(model.queue) for model in models], np.int32),
            "batch_size": batch_size,
            "free_s": free_s,
            **({} if self._knobs is None else {"knob": self._knobs[index]}),
        }

    def warmup(self, models) -> float:
        """Compile the decision function before the clock starts; returns seconds."""
        start = time.perf_counter()
        self._decide(self._key_data, self.engine_arrays(0, 0.0, models), self.params)
        return time.perf_counter() - start

    def decide(self, index: int, now_s: float, models) -> int:
        """Count the arrival in the rate estimate, then the policy's action for request index."""
        start = time.perf_counter()
        self.rate.update(now_s)
        engine = self.engine_arrays(index, now_s, models)
        action = int(self._decide(self._key_data, engine, self.params))
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
