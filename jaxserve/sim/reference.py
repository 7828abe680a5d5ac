"""Plain-Python discrete-event reference simulator (docs/spec.md §3.9): the oracle for the JAX one.

Written for clarity, not speed: one `Request` object per arrival, one heap of completion
events per model, float64 absolute times. It implements docs/simulator.md exactly; the
differential tests hold `jaxserve.sim.env` to it request by request.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

from jaxserve.sim.types import DROPPED, LATE, ON_TIME, REJECTED, SimConfig

INF = math.inf


@dataclasses.dataclass
class Request:
    """One arrival and, once resolved, what became of it."""

    decision: int  # index i of the decision that routed it (= arrival index)
    task: int
    arrival_s: float  # absolute
    deadline_s: float  # absolute: arrival + deadline of its task
    model: int = -1  # -1 = rejected by the reject action
    outcome: int = -1  # ON_TIME..REJECTED once resolved
    utility: float = 0.0
    completion_s: float = math.nan  # completion, drop or rejection time
    resolve_step: int = -1


@dataclasses.dataclass
class ReferenceResult:
    """Per-request arrays indexed by decision i, plus per-step rewards."""

    outcome: np.ndarray  # (n,) int, ON_TIME..REJECTED
    model: np.ndarray  # (n,) int, -1 for the reject action
    utility: np.ndarray  # (n,) float64
    completion_s: np.ndarray  # (n,) absolute completion / drop / rejection time
    latency_s: np.ndarray  # (n,) completion - arrival if completed, else 0
    resolve_step: np.ndarray  # (n,) decision index whose step resolved the request
    rewards: np.ndarray  # (n,) float64, reward of each step

    def num_outcome(self) -> np.ndarray:
        """Counts of on time, late, dropped, rejected."""
        return np.bincount(self.outcome, minlength=4)


@dataclasses.dataclass
class Params:
    """Float64 numpy copy of SimParams (the same values the JAX simulator sees)."""

    quality: np.ndarray  # (T, K)
    latency_s: np.ndarray  # (K, pad_batch); [k, b - 1] = batch of b
    deadline_s: np.ndarray  # (T,)
    grace_s: np.ndarray  # (T,)
    max_wait_s: np.ndarray  # (K,)
    miss_penalty: float
    noise_sigma: float

    @classmethod
    def from_any(cls, params) -> Params:
        as64 = lambda name: np.asarray(getattr(params, name), dtype=np.float64)
        return cls(
            quality=as64("quality"),
            latency_s=as64("latency_s"),
            deadline_s=as64("deadline_s"),
            grace_s=as64("grace_s"),
            max_wait_s=as64("max_wait_s"),
            miss_penalty=float(as64("miss_penalty")),
            noise_sigma=float(as64("noise_sigma")),
        )


class ModelQueue:
    """Queue and replicas of one model; busy replicas have an entry in `completions`."""

    def __init__(self, index: int, config: SimConfig):
        self.index = index
        self.max_batch = config.max_batch[index]
        self.capacity = config.queue_capacity[index]
        self.queue: deque[Request] = deque()
        self.batches: list[list[Request] | None] = [None] * config.replicas[index]
        self.completions: list[tuple[float, int]] = []  # heap of (free_s, replica)

    def idle_replica(self) -> int | None:
        """Lowest-index idle replica (docs/spec.md §3.3), or None."""
        return next((r for r, batch in enumerate(self.batches) if batch is None), None)


class Simulator:
    """State of one episode; `run` feeds it the decisions in order.

    Public so that other engines can reuse its event loop (`jaxserve.serving.engine` serves
    real models through it). Hooks a subclass may override: `service_time_s` (how long a
    batch takes) and `quality` (the quality a completed answer earns).
    """

    def __init__(self, config: SimConfig, params: Params, noise: Iterator[float] | None):
        self.config = config
        self.params = params
        self.noise = noise
        self.models = [ModelQueue(k, config) for k in range(config.num_models)]
        self.step = 0  # decision whose step is running; resolutions are credited to it
        self.rewards: list[float] = []

    # -- resolution ------------------------------------------------------------------------
    def resolve(self, request: Request, outcome: int, utility: float, time_s: float) -> None:
        request.outcome, request.utility = outcome, utility
        request.completion_s, request.resolve_step = time_s, self.step
        self.rewards[self.step] += utility

    def quality(self, request: Request) -> float:
        """Hook: quality of a completed request's answer (here the scenario's table)."""
        return float(self.params.quality[request.task, request.model])

    def completion_utility(self, request: Request, completion_s: float) -> tuple[int, float]:
        """Outcome class and utility of a request done at `completion_s` (docs/spec.md §3.5)."""
        p = self.params
        quality = self.quality(request)
        lateness = completion_s - request.deadline_s
        if lateness <= 0:
            return ON_TIME, quality
        if self.config.deadline_kind == "hard":
            return LATE, -p.miss_penalty
        grace = p.grace_s[request.task]
        if self.config.decay == "linear":
            decay = max(0.0, 1.0 - lateness / grace)
        else:
            decay = math.exp(-lateness / grace)
        return LATE, quality * decay

    # -- step 1: admission -----------------------------------------------------------------
    def admit(self, request: Request, action: int) -> None:
        if action == self.config.num_models:  # the reject action
            self.resolve(request, REJECTED, -self.params.miss_penalty, request.arrival_s)
            return
        model = self.models[action]
        request.model = action
        if len(model.queue) == model.capacity:
            self.resolve(request, REJECTED, -self.params.miss_penalty, request.arrival_s)
        else:
            model.queue.append(request)

    # -- step 2: advance -------------------------------------------------------------------
    def ready_s(self, model: ModelQueue) -> float:
        """Earliest time the queue may start a batch (max_wait rule)."""
        max_wait = self.params.max_wait_s[model.index]
        if max_wait == 0 or len(model.queue) >= model.max_batch:
            return -INF
        return model.queue[0].arrival_s + max_wait

    def next_start_s(self, model: ModelQueue, t_cur: float) -> float:
        if not model.queue or model.idle_replica() is None:
            return INF
        return max(t_cur, self.ready_s(model))

    def advance(self, model: ModelQueue, t_from: float, t_to: float) -> None:
        """Process model's events in (t_from, t_to] in time order; completion first on ties."""
        t_cur = t_from
        while True:
            t_done = model.completions[0][0] if model.completions else INF
            t_start = self.next_start_s(model, t_cur)
            t_next = min(t_done, t_start)
            if t_next > t_to or t_next == INF:
                return
            if t_done <= t_start:
                self.complete(model)
            else:
                self.start_batch(model, t_start)
            t_cur = t_next

    def complete(self, model: ModelQueue) -> None:
        free_s, replica = heapq.heappop(model.completions)
        for request in model.batches[replica]:
            outcome, utility = self.completion_utility(request, free_s)
            self.resolve(request, outcome, utility, free_s)
        model.batches[replica] = None

    # -- step 3: start of a batch ----------------------------------------------------------
    def drop_expired(self, model: ModelQueue, t: float) -> None:
        """Drop queued requests that would miss their deadline even if served alone now."""
        nominal_alone = t + self.params.latency_s[model.index, 0]
        kept = deque()
        for request in model.queue:
            if nominal_alone > request.deadline_s:
                self.resolve(request, DROPPED, -self.params.miss_penalty, t)
            else:
                kept.append(request)
        model.queue = kept

    def batch_size(self, model: ModelQueue, t: float) -> int:
        largest = min(len(model.queue), model.max_batch)
        if self.config.batching == "max":
            return largest
        latency = self.params.latency_s[model.index]
        for b in range(largest, 1, -1):
            earliest_deadline = min(model.queue[j].deadline_s for j in range(b))
            if t + latency[b - 1] <= earliest_deadline:
                return b
        return 1

    def start_batch(self, model: ModelQueue, t: float) -> None:
        if self.config.drop_expired:
            self.drop_expired(model, t)
            if not model.queue:
                return
        b = self.batch_size(model, t)
        batch = [model.queue.popleft() for _ in range(b)]
        replica = model.idle_replica()
        free_s = t + self.service_time_s(model, replica, batch, t)
        model.batches[replica] = batch
        heapq.heappush(model.completions, (free_s, replica))

    def service_time_s(self, model: ModelQueue, replica: int, batch: list, t: float) -> float:
        """Seconds the batch occupies its replica: the profile times the noise factor."""
        factor = 1.0 if self.noise is None else float(next(self.noise))
        return self.params.latency_s[model.index, len(batch) - 1] * factor

    # -- the episode -----------------------------------------------------------------------
    def run(self, requests: list[Request], actions: np.ndarray) -> None:
        for i, (request, action) in enumerate(zip(requests, actions, strict=True)):
            self.step = i
            self.rewards.append(0.0)
            self.admit(request, int(action))
            t_next = requests[i + 1].arrival_s if i + 1 < len(requests) else INF  # drain
            for model in self.models:
                self.advance(model, request.arrival_s, t_next)


def _noise_iterator(params: Params, noise_factors: Iterable[float] | None):
    if noise_factors is not None:
        return iter(noise_factors)
    if params.noise_sigma != 0:
        raise ValueError(
            f"noise_sigma = {params.noise_sigma}: the reference needs "
            "noise_sigma == 0 or an explicit noise_factors sequence"
        )
    return None


def _check_inputs(config: SimConfig, arrival_times_s, tasks, actions) -> None:
    n = len(arrival_times_s)
    if not (len(tasks) == len(actions) == n):
        raise ValueError(
            f"arrival_times_s, tasks, actions have lengths {n}, {len(tasks)}, "
            f"{len(actions)}; expected equal lengths"
        )
    if n and np.any(np.diff(arrival_times_s) < 0):
        raise ValueError("arrival_times_s must be non-decreasing")
    if n and (tasks.min() < 0 or tasks.max() >= config.num_tasks):
        raise ValueError(f"tasks must lie in [0, {config.num_tasks})")
    if n and (actions.min() < 0 or actions.max() >= config.num_actions):
        raise ValueError(f"actions must lie in [0, {config.num_actions})")


def simulate(
    config: SimConfig,
    params,
    arrival_times_s,
    tasks,
    actions,
    noise_factors: Iterable[float] | None = None,
    deadline_scale=None,
) -> ReferenceResult:
    """Runs one episode of docs/simulator.md and returns every request's outcome.

    Args:
      config: static scenario configuration.
      params: `SimParams` or any object with the same attributes (numpy arrays are fine).
      arrival_times_s: (n,) absolute arrival times, non-decreasing (float64 recommended:
        `np.cumsum(gap_s.astype(np.float64))` reproduces the JAX simulator's arrivals).
      tasks: (n,) int task of each arrival.
      actions: (n,) int action of each decision (`num_models` = reject, if allowed).
      noise_factors: service-time factors, one per batch in the order the reference starts
        batches (step by step; within a step model by model; within a model in time order).
        Required when `noise_sigma != 0`; None means factor 1.
      deadline_scale: (n,) optional per-request factor on its task's deadline (dynamic
        deadlines); None means 1.
    """
    arrival_times_s = np.asarray(arrival_times_s, dtype=np.float64)
    tasks, actions = np.asarray(tasks, dtype=np.int64), np.asarray(actions, dtype=np.int64)
    _check_inputs(config, arrival_times_s, tasks, actions)
    p = Params.from_any(params)
    scale = np.ones(len(tasks)) if deadline_scale is None else np.asarray(deadline_scale)
    requests = [
        Request(
            decision=i,
            task=int(task),
            arrival_s=float(a),
            deadline_s=float(a) + float(np.float32(p.deadline_s[task]) * np.float32(f)),
        )
        for i, (a, task, f) in enumerate(zip(arrival_times_s, tasks, scale, strict=True))
    ]
    sim = Simulator(config, p, _noise_iterator(p, noise_factors))
    sim.run(requests, actions)
    return _result(requests, sim.rewards)


def _result(requests: list[Request], rewards: list[float]) -> ReferenceResult:
    completed = [r.outcome in (ON_TIME, LATE) for r in requests]
    return ReferenceResult(
        outcome=np.array([r.outcome for r in requests], dtype=np.int64),
        model=np.array([r.model for r in requests], dtype=np.int64),
        utility=np.array([r.utility for r in requests], dtype=np.float64),
        completion_s=np.array([r.completion_s for r in requests], dtype=np.float64),
        latency_s=np.array(
            [
                r.completion_s - r.arrival_s if done else 0.0
                for r, done in zip(requests, completed, strict=True)
            ]
        ),
        resolve_step=np.array([r.resolve_step for r in requests], dtype=np.int64),
        rewards=np.array(rewards, dtype=np.float64),
    )
