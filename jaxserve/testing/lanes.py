"""A batch of mixed lanes for batched-rollout tests: per-lane policy, rate and deadlines."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxserve.evaluation.grid import make_switch_policy
from jaxserve.policies.baselines import make_policy
from jaxserve.sim.workloads import WorkloadSpec, make_workload

LANE_POLICIES = ("static:1", "greedy", "random")


def mixed_lanes(env, scenario, num_lanes: int, num_arrivals: int, seed: int) -> dict:
    """Lanes cycling over `LANE_POLICIES`, Poisson rates 50-800 req/s, deadlines x0.5-1.5.

    Returns the arguments of `lane_rollouts` / `counter_rollouts` with `lane_args` and
    batched params: `factory` (lane arg -> policy), `keys`, `params`, `arrivals`, `index`.
    """
    switch = make_switch_policy([make_policy(n, env, scenario) for n in LANE_POLICIES])
    base = scenario.sim_params()
    wparams, generate = make_workload(
        WorkloadSpec(kind="poisson"), scenario.num_tasks, num_arrivals
    )
    rates = jnp.linspace(50.0, 800.0, num_lanes)
    scales = jnp.linspace(0.5, 1.5, num_lanes)
    key_workload, key_run = jax.random.split(jax.random.key(seed))
    arrivals = jax.vmap(lambda k, r: generate(k, wparams.replace(rate=r)))(
        jax.random.split(key_workload, num_lanes), rates
    )
    return {
        "factory": lambda i: lambda *a: switch(i, *a),
        "keys": jax.random.split(key_run, num_lanes),
        "params": jax.vmap(lambda s: base.replace(deadline_s=base.deadline_s * s))(scales),
        "arrivals": arrivals,
        "index": jnp.arange(num_lanes) % len(LANE_POLICIES),
    }
