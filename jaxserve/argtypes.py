"""argparse `type=` functions shared by every command (ranges from jaxserve.limits)."""

from __future__ import annotations

import argparse
import math

from jaxserve.limits import MAX_PENALTY, MAX_RATE, MAX_SEED, MAX_TIME_S, MIN_RATE, MIN_TIME_S


def _number(text: str, kind=float):
    try:
        return kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def seed(text: str) -> int:
    """A PRNG seed in [0, 2**32 - 1]."""
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is not a seed in [0, {MAX_SEED}]")
    return value


def rate(text: str) -> float:
    """An arrival rate in [MIN_RATE, MAX_RATE] arrivals/s."""
    value = _number(text)
    if not (math.isfinite(value) and MIN_RATE <= value <= MAX_RATE):
        raise argparse.ArgumentTypeError(
            f"{text} is not a rate in [{MIN_RATE:g}, {MAX_RATE:g}] arrivals/s"
        )
    return value


def seconds(text: str) -> float:
    """A duration in [MIN_TIME_S, MAX_TIME_S] seconds."""
    value = _number(text)
    if not (math.isfinite(value) and MIN_TIME_S <= value <= MAX_TIME_S):
        raise argparse.ArgumentTypeError(
            f"{text} is not a duration in [{MIN_TIME_S:g}, {MAX_TIME_S:g}] s"
        )
    return value


def penalty(text: str) -> float:
    """A miss penalty in [0, MAX_PENALTY] quality units."""
    value = _number(text)
    if not (math.isfinite(value) and 0.0 <= value <= MAX_PENALTY):
        raise argparse.ArgumentTypeError(f"{text} is not a penalty in [0, {MAX_PENALTY:g}]")
    return value


def availability(text: str) -> float:
    """An availability target in (0, 1]."""
    value = _number(text)
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text} is not an availability in (0, 1]")
    return value


__all__ = ["availability", "penalty", "positive_int", "rate", "seconds", "seed"]
