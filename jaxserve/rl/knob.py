"""The knob router's run-time knob: which miss penalty it is told (docs/knob.md).

A knob router observes log(1 + P) of a miss penalty P drawn per training episode from its
`knob_range`. At run time P is the scenario's (`--miss-penalty`), a workload's
`knob_schedule`, or, given an availability target A, read off the router's calibration
table: at the current arrival-rate estimate, the smallest calibrated P whose availability
reached A (quality only falls as P rises, so the smallest P that meets A is the best one).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError


@dataclasses.dataclass(frozen=True)
class KnobTable:
    """Availability of a knob router on Poisson at each (rate, knob): its calibration."""

    rates: tuple[float, ...]  # (R,) arrivals/s, increasing
    knobs: tuple[float, ...]  # (N,) miss penalties, increasing
    availability: tuple[tuple[float, ...], ...]  # (R, N) mean over seeds
    seeds: int = 0
    num_requests: int = 0

    def to_json(self) -> dict:
        return {k: np.asarray(v).tolist() for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> KnobTable:
        rows = tuple(tuple(float(a) for a in row) for row in data["availability"])
        return cls(
            rates=tuple(float(r) for r in data["rates"]),
            knobs=tuple(float(k) for k in data["knobs"]),
            availability=rows,
            seeds=int(data.get("seeds", 0)),
            num_requests=int(data.get("num_requests", 0)),
        )

    def knob_for(self, target: float) -> np.ndarray:
        """(R,) the smallest knob whose availability reached `target` at each rate (else max)."""
        avail = np.asarray(self.availability)
        meets = avail >= target
        first = np.where(meets.any(axis=1), meets.argmax(axis=1), len(self.knobs) - 1)
        return np.asarray(self.knobs, np.float32)[first]


def knob_metadata(config) -> dict:
    """Checkpoint metadata of a `DQNConfig`'s knob (nothing for a fixed-penalty router)."""
    return {"knob_range": list(config.knob_range)} if config.knob_range else {}


def reward_hparams(config, miss_penalty: float = 0.0) -> dict:
    """Default hyperparameters for rewards in [-P, 1]: Huber delta 1 + the largest P.

    P is the scenario's miss penalty or, for a knob router, the top of its knob range. A
    TD error on one reward then reaches 1 + P. With the default delta of 1 the loss is
    linear past 1 and Q estimates a robust location of the reward, not its mean: for
    quality 1 on time w.p. 0.75 and -3 otherwise it learns 0.67 instead of 0
    (docs/knob.md, "Huber delta"), and a knob router cannot tell P = 1 from P = 3.
    Unpenalised rewards (P = 0) keep the default.
    """
    knob_top = float(config.knob_range[1]) if config.knob_range else 0.0
    largest = max(float(miss_penalty), knob_top)
    return {"huber_delta": 1.0 + largest} if largest > 0 else {}


def knob_range(meta: dict) -> tuple[float, float] | None:
    """The knob range a router checkpoint was trained on (None: not a knob router)."""
    value = meta.get("knob_range")
    return None if not value else (float(value[0]), float(value[1]))


def check_knob(meta: dict, values, source: str) -> None:
    """InputError when a knob value lies outside the router's trained range."""
    trained = knob_range(meta)
    if trained is None:
        return
    low, high = trained
    bad = [float(v) for v in values if not low - 1e-6 <= float(v) <= high + 1e-6]
    if bad:
        raise InputError(
            f"{source} = {bad[0]:g}: outside the knob range [{low:g}, {high:g}] this knob "
            "router was trained on"
        )


def calibration(meta: dict, path) -> KnobTable:
    """The checkpoint's calibration table, or an InputError saying how to make one."""
    if knob_range(meta) is None:
        raise InputError(
            f"--availability-target: checkpoint {path} is not a knob router "
            "(train one with --knob-range LOW,HIGH)"
        )
    if "knob_calibration" not in meta:
        raise InputError(
            f"--availability-target: checkpoint {path} has no knob calibration "
            f"(run: jaxserve calibrate-knob {path})"
        )
    return KnobTable.from_json(meta["knob_calibration"])


def check_target(target: float) -> None:
    if not (np.isfinite(target) and 0.0 < target <= 1.0):
        raise InputError(f"--availability-target {target!r}: expected a number in (0, 1]")


def target_knob(table: KnobTable, target: float):
    """`knob(state, params) -> P` for an availability target: looked up at the rate estimate.

    The per-rate knobs are interpolated linearly in log rate and held flat outside the table.
    """
    check_target(target)
    log_rates = jnp.asarray(np.log(table.rates), jnp.float32)
    knobs = jnp.asarray(table.knob_for(target))

    def knob(state, params):
        del params
        log_rate = jnp.log(jnp.maximum(state.rate_est, 1e-6))
        return jnp.interp(log_rate, log_rates, knobs)

    return knob
