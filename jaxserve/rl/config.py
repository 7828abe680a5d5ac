"""Learner configuration: static shapes/loop lengths (`DQNConfig`) and numeric hyperparameters
(`HParams`, pytree leaves, so a population of learners vmaps over them).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import struct

from jaxserve.errors import InputError

CREDITS = ("decision", "completion")
TRAIN_WORKLOADS = ("loguniform", "unpredictable")
TRAIN_MIXES = ("fixed", "dirichlet")
# Fields added after routers were shipped: left out of a config's JSON at their default, so
# the JSON (checkpoint metadata, resume checks, caches) of every earlier run is unchanged.
LATER_FIELDS = {"train_mix": "fixed", "knob_range": ()}


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Static learner configuration: everything that decides shapes, loop lengths or code paths.

    One training *episode* runs `episode_length` decisions in each of `num_envs` environments;
    a *chunk* is `episodes_per_chunk` episodes (the unit between checkpoints and evaluations).
    """

    hidden: tuple[int, ...] = (256, 256)
    num_envs: int = 60
    episode_length: int = 2000  # decisions per training episode (all envs aligned)
    total_env_steps: int = 1_200_000
    episodes_per_chunk: int = 1
    buffer_size: int = 65_536
    batch_size: int = 256
    updates_per_step: int = 1  # gradient steps per vectorised env step
    learning_starts: int = 4096  # transitions in replay before updates start
    credit: str = "decision"  # "decision" (per-request utility) | "completion" (env reward)
    credit_window: int = 256  # decision credit: pending transitions kept per env
    double: bool = True  # Double DQN target (online net selects); False = vanilla DQN (target max)
    # Training workload: per-episode Poisson rate log-uniform in [min, max] x capacity of the
    # largest model ("loguniform"), or the 'unpredictable' kind over the same range.
    train_workload: str = "loguniform"
    min_rate_factor: float = 1.0 / 30.0
    max_rate_factor: float = 10.0
    # Periodic evaluation (greedy policy) after each chunk: Poisson at these multiples of the
    # largest model's capacity, `eval_episodes` episodes of `eval_length` decisions each.
    eval_rate_factors: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 3.0)
    eval_length: int = 2048
    eval_episodes: int = 2
    # Dynamic deadlines: when non-empty, every `deadline_block` arrivals of a training episode
    # get a deadline factor drawn uniformly from these values, and the router observes the
    # factor (SimConfig.observe_deadline); empty = fixed deadlines.
    deadline_factors: tuple[float, ...] = ()
    deadline_block: int = 500
    # Task mix of training episodes: the scenario's ("fixed"), or a fresh draw per episode
    # from a flat Dirichlet over the tasks ("dirichlet": robust to mixes it was not shown).
    train_mix: str = "fixed"
    # Knob router (docs/knob.md): when (low, high), every training episode draws its miss
    # penalty P with log(1 + P) uniform in [log(1 + low), log(1 + high)] and the router
    # observes log(1 + P) (SimConfig.observe_knob); empty = the scenario's fixed penalty.
    knob_range: tuple[float, ...] = ()

    def __post_init__(self):
        validate_config(self)

    @property
    def num_episodes(self) -> int:
        """Whole training episodes: total_env_steps rounded to a multiple of the chunk size."""
        per_chunk = self.num_envs * self.episode_length * self.episodes_per_chunk
        return max(1, round(self.total_env_steps / per_chunk)) * self.episodes_per_chunk

    @property
    def num_chunks(self) -> int:
        return self.num_episodes // self.episodes_per_chunk

    @property
    def env_steps_per_chunk(self) -> int:
        return self.num_envs * self.episode_length * self.episodes_per_chunk

    @property
    def total_updates(self) -> int:
        return self.num_episodes * self.episode_length * self.updates_per_step


def validate_config(c: DQNConfig) -> None:
    """InputError naming the first bad field."""
    for name in (
        "num_envs",
        "episode_length",
        "total_env_steps",
        "episodes_per_chunk",
        "buffer_size",
        "batch_size",
        "updates_per_step",
        "credit_window",
        "eval_length",
        "eval_episodes",
        "deadline_block",
    ):
        value = getattr(c, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"DQNConfig.{name} = {value!r}: expected an integer >= 1")
    if not c.hidden or any(not isinstance(h, int) or h < 1 for h in c.hidden):
        raise InputError(f"DQNConfig.hidden = {c.hidden!r}: expected positive layer widths")
    if c.credit not in CREDITS:
        raise InputError(f"DQNConfig.credit = {c.credit!r}: expected one of {CREDITS}")
    if c.train_workload not in TRAIN_WORKLOADS:
        raise InputError(
            f"DQNConfig.train_workload = {c.train_workload!r}: expected one of {TRAIN_WORKLOADS}"
        )
    if c.train_mix not in TRAIN_MIXES:
        raise InputError(f"DQNConfig.train_mix = {c.train_mix!r}: expected one of {TRAIN_MIXES}")
    if not 0 < c.min_rate_factor <= c.max_rate_factor < math.inf:
        raise InputError(
            f"DQNConfig.min_rate_factor, max_rate_factor = {c.min_rate_factor}, "
            f"{c.max_rate_factor}: expected 0 < min <= max < inf"
        )
    if any(
        isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < math.inf
        for f in c.deadline_factors
    ):
        raise InputError(
            f"DQNConfig.deadline_factors = {c.deadline_factors!r}: expected positive finite factors"
        )
    _check_knob_range(c.knob_range)
    if c.learning_starts < 0:
        raise InputError(f"DQNConfig.learning_starts = {c.learning_starts}: expected >= 0")


def _check_knob_range(knob_range) -> None:
    if knob_range == ():
        return
    ok = len(knob_range) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in knob_range
    )
    if not ok or not 0 <= knob_range[0] < knob_range[1]:
        raise InputError(
            f"DQNConfig.knob_range = {knob_range!r}: expected () or (low, high) with "
            "0 <= low < high, finite"
        )


@struct.dataclass
class HParams:
    """Numeric hyperparameters; every field is a leaf (vmap a population over any of them)."""

    learning_rate: jax.Array | float = 3e-4
    discount: jax.Array | float = 0.97
    epsilon_start: jax.Array | float = 1.0
    epsilon_end: jax.Array | float = 0.02  # the epsilon floor
    epsilon_decay_frac: jax.Array | float = 0.4  # fraction of training to reach the floor
    target_period: jax.Array | int = 500  # updates between target updates
    target_tau: jax.Array | float = 1.0  # 1 = hard copy; < 1 = Polyak averaging
    max_grad_norm: jax.Array | float = 10.0
    huber_delta: jax.Array | float = 1.0


HPARAM_NAMES = tuple(f.name for f in dataclasses.fields(HParams))
_INT_HPARAMS = ("target_period",)


def default_hparams() -> HParams:
    """Defaults as float32/int32 arrays (fixed dtypes keep jit caches and checkpoints stable)."""
    return as_arrays(HParams())


def as_arrays(hp: HParams) -> HParams:
    """Every field as a jnp array of its canonical dtype."""
    return HParams(
        **{
            name: jnp.asarray(getattr(hp, name), jnp.int32 if name in _INT_HPARAMS else jnp.float32)
            for name in HPARAM_NAMES
        }
    )


FINETUNE_HPARAMS = {"epsilon_start": 0.1}  # a trained router needs little initial exploration


def finetune_overrides(overrides: dict, finetune_from) -> dict:
    """HParams overrides of a run: a fine-tuned start's defaults first, `overrides` win."""
    return {**(FINETUNE_HPARAMS if finetune_from else {}), **overrides}


def hparams_with(overrides: dict, base: HParams | None = None) -> HParams:
    """Defaults (or `base`) with named overrides; unknown names are an InputError."""
    unknown = sorted(set(overrides) - set(HPARAM_NAMES))
    if unknown:
        raise InputError(
            f"hyperparameter {unknown[0]!r}: unknown; expected one of {', '.join(HPARAM_NAMES)}"
        )
    for name, value in overrides.items():
        _check_hparam(name, value)
    return as_arrays((base or HParams()).replace(**overrides))


def _check_hparam(name: str, value) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    limits = {
        "discount": (0.0, 1.0),
        "epsilon_start": (0.0, 1.0),
        "epsilon_end": (0.0, 1.0),
        "epsilon_decay_frac": (0.0, 1.0),
        "target_tau": (0.0, 1.0),
    }
    low, high = limits.get(name, (0.0, math.inf))
    if (
        not ok
        or not low <= value <= high
        or (
            name in ("learning_rate", "max_grad_norm", "huber_delta", "target_period")
            and value <= 0
        )
    ):
        raise InputError(
            f"hyperparameter {name} = {value!r}: expected a finite number in "
            f"[{low}, {high}]" + (" and > 0" if high == math.inf else "")
        )


def stack_hparams(members: list[HParams]) -> HParams:
    """A population: (M,) arrays per field."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[as_arrays(m) for m in members])


def hparams_to_json(hp: HParams) -> dict:
    """Plain Python numbers (or lists, for a population)."""
    return {name: jnp.asarray(getattr(hp, name)).tolist() for name in HPARAM_NAMES}


def hparams_from_json(data: dict) -> HParams:
    return (
        hparams_with(data)
        if all(not isinstance(v, list) for v in data.values())
        else as_arrays(HParams(**{k: jnp.asarray(v) for k, v in data.items()}))
    )


def config_to_json(c: DQNConfig) -> dict:
    data = dataclasses.asdict(c)
    return {k: v for k, v in data.items() if LATER_FIELDS.get(k, object()) != v}


def config_from_json(data: dict) -> DQNConfig:
    names = {f.name for f in dataclasses.fields(DQNConfig)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(
            f"DQNConfig field {unknown[0]!r}: unknown; expected one of {', '.join(sorted(names))}"
        )
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return DQNConfig(**fixed)
