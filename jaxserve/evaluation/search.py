"""Hyperparameter search spaces: a grid, random draws over ranges, or both crossed.

Only numeric `HParams` fields can be searched within one population: they are pytree
leaves, vmapped per member. `DQNConfig` fields (hidden sizes, buffer size, batch size,
number of envs, episode length, ...) decide shapes and loop lengths, so every member of a
compiled population shares them; search those with one population per value.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from jaxserve.errors import InputError
from jaxserve.rl.config import HPARAM_NAMES, DQNConfig, hparams_with

INT_HPARAMS = ("target_period",)
STATIC_FIELDS = tuple(f.name for f in dataclasses.fields(DQNConfig))


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Values drawn uniformly from [low, high]."""

    low: float
    high: float

    def __post_init__(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise InputError(f"uniform range {self.low}..{self.high}: expected finite low <= high")

    def sample(self, rng: np.random.Generator, num: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, num)


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """Values whose logarithm is uniform on [log low, log high] (learning rates, periods)."""

    low: float
    high: float

    def __post_init__(self):
        if not (0 < self.low <= self.high < math.inf):
            raise InputError(
                f"log-uniform range {self.low}..{self.high}: expected 0 < low <= high < inf"
            )

    def sample(self, rng: np.random.Generator, num: int) -> np.ndarray:
        return np.exp(rng.uniform(math.log(self.low), math.log(self.high), num))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """`grid` axes crossed with `num_samples` random points drawn from `ranges` (seeded).

    Without ranges, the grid alone (one point if it is empty too).
    """

    grid: Mapping[str, Sequence[float]] = dataclasses.field(default_factory=dict)
    ranges: Mapping[str, Uniform | LogUniform] = dataclasses.field(default_factory=dict)
    num_samples: int = 1
    seed: int = 0

    def __post_init__(self):
        for name in [*self.grid, *self.ranges]:
            check_searchable(name)
        both = sorted(set(self.grid) & set(self.ranges))
        if both:
            raise InputError(f"search: {both[0]!r} is both a grid axis and a range")
        if any(len(v) == 0 for v in self.grid.values()):
            raise InputError("search: every grid axis needs at least one value")
        for name, values in self.grid.items():
            for value in values:
                hparams_with({name: value})  # InputError outside the field's valid range
        for name, r in self.ranges.items():
            hparams_with({name: r.low}), hparams_with({name: r.high})
        if isinstance(self.num_samples, bool) or not (
            isinstance(self.num_samples, int) and self.num_samples >= 1
        ):
            raise InputError(f"search samples = {self.num_samples!r}: expected an integer >= 1")

    def points(self) -> list[dict]:
        """Every point of the space as {name: value}: grid order, then sample order."""
        grid = [
            dict(zip(self.grid, combo, strict=True))
            for combo in itertools.product(*self.grid.values())
        ]
        return [typed_point({**g, **s}) for g in grid for s in self.samples()]

    def samples(self) -> list[dict]:
        """The random points ([{}] without ranges): `num_samples` draws of every range."""
        if not self.ranges:
            return [{}]
        rng = np.random.default_rng(self.seed)
        drawn = {name: r.sample(rng, self.num_samples) for name, r in self.ranges.items()}
        return [{n: float(v[i]) for n, v in drawn.items()} for i in range(self.num_samples)]


def check_searchable(name: str) -> None:
    """InputError unless `name` is a numeric hyperparameter (a vmapped leaf)."""
    if name in HPARAM_NAMES:
        return
    if name in STATIC_FIELDS:
        raise InputError(
            f"search over {name!r}: a DQNConfig field decides shapes or loop lengths and is "
            "the same for every member of a population; run one population per value"
        )
    raise InputError(f"hyperparameter {name!r}: unknown; expected one of {', '.join(HPARAM_NAMES)}")


def typed_point(point: dict) -> dict:
    """Python numbers, integer fields (target_period) rounded."""
    return {k: int(round(v)) if k in INT_HPARAMS else float(v) for k, v in point.items()}


def parse_search(text: str, num_samples: int = 1, seed: int = 0) -> SearchSpace:
    """`--search` text -> SearchSpace.

    Items separated by ';': `NAME=V1/V2/...` (a grid axis), `NAME=uniform:LO:HI` or
    `NAME=loguniform:LO:HI` (a range, `num_samples` draws crossed with the grid).
    """
    grid, ranges = {}, {}
    for item in filter(None, (x.strip() for x in text.split(";"))):
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"--search item {item!r}: expected NAME=V1/V2/... or NAME=KIND:LO:HI")
        kind, _, bounds = values.partition(":")
        if kind.strip() in ("uniform", "loguniform"):
            ranges[name] = _parse_range(item, kind.strip(), bounds)
        else:
            grid[name] = _parse_values(item, values)
    return SearchSpace(grid=grid, ranges=ranges, num_samples=num_samples, seed=seed)


def _parse_values(item: str, values: str) -> list[float]:
    try:
        return [float(v) for v in values.split("/")]
    except ValueError:
        raise InputError(f"--search {item!r}: expected numbers separated by '/'") from None


def _parse_range(item: str, kind: str, bounds: str) -> Uniform | LogUniform:
    try:
        low, high = (float(x) for x in bounds.split(":"))
    except ValueError:
        raise InputError(f"--search {item!r}: expected {kind}:LO:HI with two numbers") from None
    return (LogUniform if kind == "loguniform" else Uniform)(low, high)
