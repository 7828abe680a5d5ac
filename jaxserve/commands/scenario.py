"""Options shared by the commands: `--miss-penalty` (docs/policies.md, "Reward") and a knob
router's `--availability-target` (docs/knob.md)."""

from __future__ import annotations

import argparse

from jaxserve.argtypes import availability, penalty
from jaxserve.sim.scenarios import Scenario, with_miss_penalty


def add_miss_penalty(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--miss-penalty",
        type=penalty,
        default=None,
        help="utility of a late (hard deadlines), dropped or rejected request is -P; shapes "
        "the reward only, performance stays quality delivered (default: the scenario's)",
    )


def add_availability_target(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--availability-target",
        type=availability,
        default=None,
        help="steer a knob router (a checkpoint trained with --knob-range) by target: at "
        "the current load it is told the smallest calibrated miss penalty whose "
        "availability reached A (docs/knob.md); default: told --miss-penalty",
    )


def with_overrides(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    """`scenario` with the command line's overrides (`--miss-penalty`) applied."""
    return with_miss_penalty(scenario, getattr(args, "miss_penalty", None))
