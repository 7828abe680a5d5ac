"""One evaluation run end to end: scenario + workload + policy -> docs/spec.md §4 metrics.

Application code over the library: it resolves a policy by name (a baseline from
`jaxserve.policies`, or a router checkpoint through `jaxserve.rl`), runs the per-request
simulator and adds the run's fluid bound (`bounds.realised_bound`); `jaxserve simulate`
and the comparisons call it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.evaluation.bounds import no_bound_reason, realised_bound
from jaxserve.limits import check_memory
from jaxserve.policies.baselines import make_policy
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.env import ServingEnv
from jaxserve.sim.metrics import (
    DEFAULT_WINDOW_S,
    TRACE_WINDOW_S,
    absolute_arrival_times,
    request_metrics,
)
from jaxserve.sim.parse import episode_length
from jaxserve.sim.rollout import ledger_rollout
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec, make_workload

# Bytes one simulated request needs in `simulate` (arrivals, workload draws, the ledger and
# the numpy metrics over it), rounded up from the arrays' dtypes: the memory check's unit.
LEDGER_BYTES_PER_REQUEST = 256


def resolve_policy(
    name: str,
    env: ServingEnv,
    scenario: Scenario,
    task_mix=None,
    availability_target: float | None = None,
    knob_schedule=None,
):
    """A baseline by name, or the greedy-Q policy of a router checkpoint directory.

    `task_mix`: the workload's mix, which `lp` solves for (default: the scenario's).
    `availability_target`, `knob_schedule`: a knob router's run-time knob (docs/knob.md).
    """
    from pathlib import Path

    if Path(name).is_dir():
        from jaxserve.rl.policy import load_learned_policy

        return load_learned_policy(
            name, scenario, availability_target=availability_target, knob_schedule=knob_schedule
        )
    if availability_target is not None:
        raise InputError(
            f"--availability-target: policy {name!r} is a baseline; the target steers a "
            "knob router (a checkpoint trained with --knob-range)"
        )
    return make_policy(name, env, scenario, task_mix)


def simulate(
    scenario: Scenario,
    policy,
    workload: WorkloadSpec,
    num_requests: int = 10_000,
    seed: int = 0,
    window_s: float | None = None,
    policy_name: str = "",
    normalise_by: Scenario | None = None,
    availability_target: float | None = None,
) -> dict:
    """Run one evaluation episode and return every docs/spec.md §4 metric (JSON-ready).

    `normalise_by`: the scenario whose best quality per task is "peak" (default this one;
    an equal-hardware static is normalised by the zoo it is compared with).
    `availability_target`: steer a knob router by target (docs/knob.md).
    """
    runs = simulate_seeds(
        scenario,
        policy,
        workload,
        num_requests,
        [seed],
        window_s,
        policy_name,
        normalise_by,
        availability_target,
    )
    return runs[0]


def simulate_seeds(
    scenario: Scenario,
    policy,
    workload: WorkloadSpec,
    num_requests: int,
    seeds,
    window_s: float | None = None,
    policy_name: str = "",
    normalise_by: Scenario | None = None,
    availability_target: float | None = None,
) -> list[dict]:
    """`simulate` for each seed, the episodes vmapped through one compiled rollout."""
    env = ServingEnv(scenario.sim_config(workload, emit_records=True))
    params = scenario.sim_params()
    if isinstance(policy, str):
        policy_name, policy = (
            policy,
            resolve_policy(
                policy,
                env,
                scenario,
                workload.task_mix,
                availability_target,
                workload.knob_schedule,
            ),
        )
    n = episode_length(workload, num_requests)
    check_memory(
        f"simulate: {len(seeds)} x {n:,} requests", len(seeds) * n * LEDGER_BYTES_PER_REQUEST
    )
    wparams, generate = make_workload(workload, scenario.num_tasks, n)
    keys = jax.vmap(lambda s: jax.random.split(jax.random.key(s)))(jnp.asarray(seeds, jnp.uint32))
    arrivals = jax.jit(jax.vmap(generate, in_axes=(0, None)))(keys[:, 0], wparams)
    rollout = lambda key, arrivals: ledger_rollout(env, policy, key, params, arrivals)
    ledgers = jax.tree.map(np.asarray, sim_jit(jax.vmap(rollout))(keys[:, 1], arrivals))
    if window_s is None:
        window_s = TRACE_WINDOW_S if workload.kind == "trace" else DEFAULT_WINDOW_S
    if isinstance(window_s, bool) or not window_s > 0:
        raise InputError(f"window_s = {window_s!r}: expected a positive number of seconds")
    task_peak = np.max(np.asarray((normalise_by or scenario).quality), axis=1)
    out = []
    for i, seed in enumerate(seeds):
        one = jax.tree.map(lambda x, i=i: x[i], arrivals)
        ledger = jax.tree.map(lambda x, i=i: x[i], ledgers)
        metrics = _run_metrics(scenario, env, one, ledger, window_s, task_peak)
        metrics.update(policy=policy_name, workload=workload.kind, seed=int(seed))
        out.append(metrics)
    return out


def _run_metrics(scenario: Scenario, env, arrivals, ledger, window_s, task_peak) -> dict:
    """Every metric of one finished episode, with its fluid bound."""
    arrival_s = absolute_arrival_times(arrivals.gap_s)
    out = request_metrics(
        ledger,
        arrival_s,
        np.asarray(arrivals.task),
        scenario.quality,
        env.num_actions,
        window_s,
        valid=np.asarray(arrivals.valid),
        task_peak=task_peak,
    )
    out.update(
        scenario=scenario.name,
        miss_penalty=scenario.miss_penalty,
        model_names=list(scenario.model_names),
    )
    out.update(_fluid_bound(scenario, arrivals, arrival_s, task_peak))  # performance's peak
    return out


def _fluid_bound(scenario: Scenario, arrivals, arrival_s, task_peak) -> dict:
    """The run's own fluid bound (realised arrivals), or null with the reason there is none."""
    reason = no_bound_reason(scenario)
    if reason is not None:
        return {
            "fluid_upper_bound": None,
            "fluid_upper_bound_normalized": None,
            "fluid_upper_bound_note": reason,
        }
    valid = np.asarray(arrivals.valid)
    scale = arrivals.deadline_scale
    return realised_bound(
        scenario,
        arrival_s[valid],
        np.asarray(arrivals.task)[valid],
        None if scale is None else np.asarray(scale)[valid],
        task_peak,
    )


__all__ = ["resolve_policy", "simulate", "simulate_seeds"]
