"""Simulator data: static config (shapes), params (vmappable leaves) and state (per step)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

# Outcome classes of a request (docs/spec.md §3.5).
ON_TIME, LATE, DROPPED, REJECTED = 0, 1, 2, 3
OUTCOME_NAMES = ("on_time", "late", "dropped", "rejected")
# Sentinel for "no time": far in the future but finite, so arithmetic stays NaN-free.
NEVER_S = 1e9
# slot_replica values that are not a replica index.
FREE, WAITING = -2, -1


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """Static configuration: everything that decides array shapes or code paths.

    Per-model tuples have one entry per model (small to large by default).
    """

    num_tasks: int
    max_batch: tuple[int, ...]
    replicas: tuple[int, ...]
    queue_capacity: tuple[int, ...]
    batching: str = "deadline"  # "max" | "deadline" (docs/spec.md §3.3)
    deadline_kind: str = "hard"  # "hard" | "soft" (docs/spec.md §3.5)
    decay: str = "linear"  # soft-deadline decay: "linear" | "exponential"
    drop_expired: bool = True  # docs/spec.md §3.4
    allow_reject: bool = False  # adds action index num_models = "reject"
    obs_mode: str = "full"  # "full" | "paper" (docs/spec.md §3.6)
    emit_records: bool = True  # per-step resolved-request records (docs/spec.md §3.7)
    service_noise: bool = False  # draw log-normal service noise (params.noise_sigma) per batch
    # All tasks share one deadline, so FIFO order is deadline order and expired requests are
    # always a prefix of the queue: a cheaper drop and batch-size rule (same results).
    fifo_deadlines: bool = False
    observe_deadline: bool = False  # append the request's deadline factor to the observation
    observe_knob: bool = False  # append the miss-penalty knob (a knob router, docs/knob.md)
    # False: no model waits to fill a batch (params.max_wait_s is ignored, as if all zero),
    # which spares the simulator a lookup of the oldest request at every event.
    max_wait: bool = True

    @property
    def num_models(self) -> int:
        return len(self.max_batch)

    @property
    def num_actions(self) -> int:
        return self.num_models + int(self.allow_reject)

    @property
    def pad_batch(self) -> int:
        return max(self.max_batch)

    @property
    def pad_replicas(self) -> int:
        return max(self.replicas)

    @property
    def pad_queue(self) -> int:
        return max(self.queue_capacity)

    @property
    def pad_slots(self) -> int:
        """Request slots per model: waiting (capacity) plus in service (replicas x batch)."""
        return max(
            c + r * b
            for c, r, b in zip(self.queue_capacity, self.replicas, self.max_batch, strict=True)
        )

    @property
    def max_records(self) -> int:
        """Upper bound on requests resolved in one step: all in the system plus the new one."""
        in_system = sum(
            c + r * b
            for c, r, b in zip(self.queue_capacity, self.replicas, self.max_batch, strict=True)
        )
        return in_system + 1

    @property
    def obs_size(self) -> int:
        per_model = 3 if self.obs_mode == "full" else 1
        extra = int(self.observe_deadline) + int(self.observe_knob)
        return self.num_tasks + per_model * self.num_models + 1 + extra


@struct.dataclass
class SimParams:
    """Numeric scenario parameters; pytree leaves, so they can be vmapped over."""

    quality: jax.Array  # (num_tasks, num_models) in [0, 1]
    latency_s: jax.Array  # (num_models, pad_batch); [k, b - 1] = batch of b; NEVER_S past max
    deadline_s: jax.Array  # (num_tasks,) relative to arrival
    grace_s: jax.Array  # (num_tasks,) soft-deadline decay scale
    max_wait_s: jax.Array  # (num_models,); 0 = start as soon as a replica is idle
    miss_penalty: jax.Array  # () utility of a late (hard) / dropped / rejected request is -this
    noise_sigma: jax.Array  # () log-normal service-time noise parameter
    reference_rate: jax.Array  # () arrivals/s used to normalise the rate estimate
    rate_window_s: jax.Array  # () time constant of the arrival-rate estimate
    # Active replicas and queue capacity per model, within the config's padded shapes
    # (docs/simulator.md, "Active replicas"): placements of one zoo then share one compiled
    # program. None = the config's (static) counts. A model with 0 active replicas serves
    # nothing: its queue capacity is 0, so a request routed there is rejected.
    replicas: jax.Array | None = None  # (K,) int32, each <= config.replicas[k]
    queue_capacity: jax.Array | None = None  # (K,) int32, each <= config.queue_capacity[k]


@struct.dataclass
class Arrivals:
    """One episode's workload: inter-arrival gaps (not absolute times, for precision)."""

    gap_s: jax.Array  # (num_arrivals,) gap_s[0] = first arrival time, then a_i - a_{i-1}
    task: jax.Array  # (num_arrivals,) int32
    valid: jax.Array  # (num_arrivals,) bool; False = padding after the last real arrival
    # (num_arrivals,) factor on each request's task deadline (dynamic deadlines); None = 1.
    deadline_scale: jax.Array | None = None
    # (num_arrivals,) miss penalty told to a knob router at each arrival (a workload's
    # knob_schedule, docs/knob.md); None = the scenario's (params.miss_penalty).
    knob: jax.Array | None = None


@struct.dataclass
class Records:
    """Requests resolved during one step (docs/spec.md §3.7), fixed size and masked."""

    mask: jax.Array  # (max_records,) bool
    decision: jax.Array  # (max_records,) int32 index of the decision that routed it
    utility: jax.Array  # (max_records,) f32
    outcome: jax.Array  # (max_records,) int32, one of ON_TIME..REJECTED
    model: jax.Array  # (max_records,) int32; -1 for rejected-by-action
    latency_s: jax.Array  # (max_records,) completion - arrival; 0 if not completed


@struct.dataclass
class Counters:
    """Running totals over the episode (enough for the aggregate docs/spec.md §4 metrics)."""

    num_arrived: jax.Array  # ()
    num_outcome: jax.Array  # (4,) on time, late, dropped, rejected
    sum_utility: jax.Array  # ()
    sum_peak: jax.Array  # () sum over arrivals of max_k quality[t, k]
    sum_latency_s: jax.Array  # () over completed requests
    num_routed: jax.Array  # (num_actions,) decisions per action


@struct.dataclass
class EnvState:
    """Full simulator state; float32 seconds relative to `origin_s` (docs/spec.md §3.8)."""

    arrivals: Arrivals
    step: jax.Array  # () index of the current decision (= current arrival)
    origin_s: jax.Array  # () int32 whole seconds; absolute time = origin_s + relative time
    now_s: jax.Array  # () time of the current arrival
    rate_est: jax.Array  # () exponentially decaying arrival count, arrivals/s
    queue_len: jax.Array  # (K,) int32 requests waiting
    # Request slots, one row per model, no data movement: a request keeps its slot from
    # admission to resolution. slot_replica: FREE, WAITING, or the replica serving it.
    slot_replica: jax.Array  # (K, S) int32
    slot_pos: jax.Array  # (K, S) int32 FIFO position while waiting (0 = oldest)
    slot_arrival_s: jax.Array  # (K, S)
    slot_deadline_s: jax.Array  # (K, S)
    slot_quality: jax.Array  # (K, S) quality[task, k], looked up once at admission
    slot_grace_s: jax.Array  # (K, S) soft-deadline grace of the task
    slot_decision: jax.Array  # (K, S) int32 decision index
    # Replicas: a busy replica serves one batch that completes at free_s. A request's
    # outcome is a function of its fixed fields and that completion time, so it is computed
    # when the batch completes rather than stored.
    free_s: jax.Array  # (K, R) completion time if busy, else when it became idle
    batch_size: jax.Array  # (K, R) int32, 0 = idle
    counters: Counters
    # Compensated clock (docs/simulator.md, "Clock precision"): the exact times are
    # now_s + now_lo_s and free_s + free_lo_s, the lo parts holding what float32 rounded
    # off when the clocks advanced. Last and defaulted so that states built outside the
    # simulator for a policy (serving/router.py) need not set them.
    now_lo_s: jax.Array = 0.0  # ()
    free_lo_s: jax.Array = 0.0  # (K, R)


@struct.dataclass
class QueueView:
    """What a routing policy sees of the system at a decision: `env.queue_view(state, params)`.

    Both simulators build it from their state and the serving router from its engine, so a
    policy that reads only this view (and the observation) runs unchanged on all three.
    """

    step: jax.Array  # () int32 index of the current decision
    task: jax.Array  # () int32 task of the request being routed
    deadline_scale: jax.Array  # () factor on that task's deadline (1 without dynamic deadlines)
    now_s: jax.Array  # () current time, relative to the state's origin
    rate_est: jax.Array  # () arrival-rate estimate, arrivals/s
    queue_len: jax.Array  # (K,) int32 requests waiting per model
    in_service: jax.Array  # (K,) int32 requests in the batches in service per model
    wait_s: jax.Array  # (K,) until the earliest replica of each model is free (0: one is idle)
    # () miss penalty told to a knob router (docs/knob.md); None = params.miss_penalty.
    knob: jax.Array | None = None


def to_jnp_tuple(values, dtype=jnp.float32) -> jax.Array:
    """Helper for building params from Python sequences."""
    return jnp.asarray(values, dtype=dtype)
