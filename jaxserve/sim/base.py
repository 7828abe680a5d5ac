"""What both JAX simulators share: a config's static arrays, the queue view, the observation.

`ServingEnv` (env.py) and `CounterEnv` (counter_env.py) each subclass `EnvBase` for these
and nothing else: their states, event loops and steps are their own. The queueing rules
themselves are in rules.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.sim.rules import INF
from jaxserve.sim.types import Counters, QueueView, SimConfig, SimParams


class EnvBase:
    """Config, static arrays, hashing, `queue_view` and `observe` of a JAX simulator."""

    def __init__(self, config: SimConfig):
        self.config = config
        self._max_batch = np.asarray(config.max_batch, np.int32)  # (K,)
        self._sizes = np.arange(1, config.pad_batch + 1, dtype=np.int32)  # (B,) batch sizes
        self._models = np.arange(config.num_models, dtype=np.int32)  # (K,)

    def __hash__(self):  # equal configs share compiled code (env is a static jit argument)
        return hash((type(self), self.config))

    def __eq__(self, other):
        return type(other) is type(self) and other.config == self.config

    @property
    def num_actions(self) -> int:
        return self.config.num_actions

    @property
    def obs_size(self) -> int:
        return self.config.obs_size

    def queue_view(self, state, params: SimParams) -> QueueView:
        """What a policy may read of `state` (an env state, or a `QueueView`: its own view)."""
        if isinstance(state, QueueView):
            return state
        return make_queue_view(
            self.config,
            step=state.step,
            task=current_task(state),
            deadline_scale=deadline_scale(state),
            now_s=state.now_s,
            rate_est=state.rate_est,
            queue_len=state.queue_len,
            batch_size=state.batch_size,
            free_s=state.free_s,
            knob=scheduled_knob(state),
            replicas=None if params is None else params.replicas,
        )

    def observe(self, state, params: SimParams) -> jax.Array:
        """Observation for the current decision (docs/spec.md §3.6; layout in docs/simulator.md)."""
        return observation(self.config, self.queue_view(state, params), params)


def active_replicas(config: SimConfig, params: SimParams | None = None):
    """(K,) replicas serving per model: `params.replicas` when set (traced), else the config's.

    The config's counts are a static numpy array, so a run without active counts compiles
    exactly as before (masks are constants).
    """
    replicas = None if params is None else params.replicas
    if replicas is None:
        return np.asarray(config.replicas, np.int32)
    return jnp.asarray(replicas, jnp.int32)


def replica_mask(config: SimConfig, params: SimParams | None = None):
    """(K, R) bool: which padded replica slots are active replicas."""
    return _below(config.pad_replicas, active_replicas(config, params))


def _below(size: int, counts):
    """(K, size) bool: slot r < counts[k]; numpy for static counts, jnp for traced ones."""
    xp = np if isinstance(counts, np.ndarray) else jnp
    return xp.arange(size)[None, :] < counts[:, None]


def active_capacity(config: SimConfig, params: SimParams | None = None):
    """(K,) queue capacity per model; 0 for a model without active replicas (it rejects)."""
    if params is None or (params.replicas is None and params.queue_capacity is None):
        return np.asarray(config.queue_capacity, np.int32)
    capacity = params.queue_capacity
    if capacity is None:
        capacity = np.asarray(config.queue_capacity, np.int32)
    serving = active_replicas(config, params) > 0
    return jnp.where(serving, jnp.asarray(capacity, jnp.int32), 0)


def serving_scale(config: SimConfig, params: SimParams | None = None):
    """(K,) max_batch x active replicas (at least 1): the observation's per-model scale."""
    replicas = active_replicas(config, params)
    xp = np if isinstance(replicas, np.ndarray) else jnp
    return (np.asarray(config.max_batch) * xp.maximum(replicas, 1)).astype(np.float32)


def make_queue_view(
    config: SimConfig,
    *,
    step,
    task,
    deadline_scale,
    now_s,
    rate_est,
    queue_len,
    batch_size,
    free_s,
    knob=None,
    replicas=None,
) -> QueueView:
    """The `QueueView` of a system whose replicas (K, R) serve `batch_size` until `free_s`.

    `replicas` (K,): the active replicas per model (None: the config's). A model without
    one has an infinite `wait_s`.
    """
    busy = batch_size > 0
    counts = np.asarray(config.replicas, np.int32) if replicas is None else replicas
    mask = _below(config.pad_replicas, counts)
    earliest = jnp.min(jnp.where(mask, jnp.where(busy, free_s, now_s), INF), axis=1)
    return QueueView(
        step=step,
        task=task,
        deadline_scale=deadline_scale,
        now_s=now_s,
        rate_est=rate_est,
        queue_len=queue_len,
        in_service=jnp.sum(batch_size, axis=1),
        wait_s=jnp.maximum(earliest - now_s, 0.0),
        knob=knob,
    )


def observation(config: SimConfig, view: QueueView, params: SimParams) -> jax.Array:
    """The observation vector of a queue view (`full` or `paper`, docs/simulator.md)."""
    one_hot = jax.nn.one_hot(view.task, config.num_tasks, dtype=jnp.float32)
    # A product with the reciprocal, as XLA compiles a division by a constant: the same
    # float32 bits whether the active replicas are the config's (static) or params'.
    inv_scale = 1.0 / serving_scale(config, params)
    in_service = view.in_service.astype(jnp.float32)
    queued = view.queue_len.astype(jnp.float32)
    rate = (view.rate_est / params.reference_rate)[None]
    factor = view.deadline_scale
    extra = [factor[None]] if config.observe_deadline else []
    if config.observe_knob:
        extra.append(knob_feature(knob_value(view, params))[None])
    if config.obs_mode == "paper":
        return jnp.concatenate([one_hot, (queued + in_service) * inv_scale, rate, *extra])
    wait = view.wait_s / (params.deadline_s[view.task] * factor)
    if params.replicas is not None:  # a model without replicas waits forever: observed as 0
        wait = jnp.where(params.replicas > 0, wait, 0.0)
    return jnp.concatenate(
        [one_hot, queued * inv_scale, in_service * inv_scale, wait, rate, *extra]
    )


def observation_index(config: SimConfig, models) -> np.ndarray:
    """Positions of the observation entries that remain when only `models` are kept.

    The task one-hot, each kept model's features (in `models` order), the rate and the
    extras: with a model's features always 0 (no active replicas), the observation of the
    config without it is the full one at these positions (a router restricted to a
    placement, docs/planner.md).
    """
    t, k = config.num_tasks, config.num_models
    per_model = 3 if config.obs_mode == "full" else 1
    features = [t + f * k + m for f in range(per_model) for m in models]
    tail = range(t + per_model * k, config.obs_size)
    return np.asarray([*range(t), *features, *tail], np.int32)


def action_index(config: SimConfig, models) -> np.ndarray:
    """Actions that remain when only `models` are kept: theirs, then reject if allowed."""
    reject = [config.num_models] if config.allow_reject else []
    return np.asarray([*models, *reject], np.int32)


def current_task(state) -> jax.Array:
    """Task of the request being routed (from an env state or a `QueueView`)."""
    if isinstance(state, QueueView):
        return state.task
    return state.arrivals.task[jnp.minimum(state.step, state.arrivals.task.shape[0] - 1)]


def deadline_scale(state) -> jax.Array:
    """Deadline factor of the current request (1 without dynamic deadlines)."""
    if isinstance(state, QueueView):
        return state.deadline_scale
    scale = state.arrivals.deadline_scale
    if scale is None:
        return jnp.float32(1.0)
    return scale[jnp.minimum(state.step, scale.shape[0] - 1)]


def scheduled_knob(state) -> jax.Array | None:
    """The knob a workload's knob_schedule sets for the current request (None: no schedule)."""
    if isinstance(state, QueueView):
        return state.knob
    knob = state.arrivals.knob
    if knob is None:
        return None
    return knob[jnp.minimum(state.step, knob.shape[0] - 1)]


def knob_value(state, params: SimParams) -> jax.Array:
    """Miss penalty a knob router is told: the schedule's, else the scenario's (docs/knob.md)."""
    knob = scheduled_knob(state)
    return params.miss_penalty.astype(jnp.float32) if knob is None else knob


def knob_feature(knob: jax.Array) -> jax.Array:
    """The knob as the router observes it: log(1 + P), so decades of P stay in a small range."""
    return jnp.log1p(jnp.asarray(knob, jnp.float32))


def empty_counters(num_actions: int) -> Counters:
    """Running totals at the start of an episode."""
    return Counters(
        num_arrived=jnp.int32(0),
        num_outcome=jnp.zeros(4, jnp.int32),
        sum_utility=jnp.float32(0.0),
        sum_peak=jnp.float32(0.0),
        sum_latency_s=jnp.float32(0.0),
        num_routed=jnp.zeros(num_actions, jnp.int32),
    )


def unit(size: int, index: int) -> np.ndarray:
    """Unit vector e_index (int32), for adding to counters without a scatter."""
    return (np.arange(size) == index).astype(np.int32)


def first_true(mask: jax.Array) -> jax.Array:
    """Index of the first True along the last axis (size if none); cheaper than argmax on CPU."""
    size = mask.shape[-1]
    return jnp.min(jnp.where(mask, jnp.arange(size, dtype=jnp.int32), size), axis=-1)
