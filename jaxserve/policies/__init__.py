"""Routing policies: baselines (static, random, round-robin, jsq, greedy, lp) and the fluid LP."""

from jaxserve.policies.baselines import baseline_names, make_policy, predicted_completion_s
from jaxserve.policies.lp import fluid_upper_bound, lp_routing_table

__all__ = [
    "baseline_names",
    "fluid_upper_bound",
    "lp_routing_table",
    "make_policy",
    "predicted_completion_s",
]
