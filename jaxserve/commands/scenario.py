"""Scenario options shared by the commands: `--miss-penalty` (docs/policies.md, "Reward")."""

from __future__ import annotations

import argparse

from jaxserve.argtypes import penalty
from jaxserve.sim.scenarios import Scenario, with_miss_penalty


def add_miss_penalty(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--miss-penalty",
        type=penalty,
        default=None,
        help="utility of a late (hard deadlines), dropped or rejected request is -P; shapes "
        "the reward only, performance stays quality delivered (default: the scenario's)",
    )


def with_overrides(scenario: Scenario, args: argparse.Namespace) -> Scenario:
    """`scenario` with the command line's overrides (`--miss-penalty`) applied."""
    return with_miss_penalty(scenario, getattr(args, "miss_penalty", None))
