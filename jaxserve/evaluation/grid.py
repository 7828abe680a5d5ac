"""Policy x rate x task-mix x deadline (x knob) grids evaluated by ONE jitted, vmapped program."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.evaluation.bounds import bound_at
from jaxserve.limits import check_memory
from jaxserve.policies.baselines import make_policy
from jaxserve.progress import no_progress
from jaxserve.sim.compile import sim_jit
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.metrics import counter_metrics
from jaxserve.sim.rollout import counter_rollouts
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec, load_spec_trace, make_workload, mean_rate


def make_switch_policy(policies: list):
    """One policy whose behaviour is chosen by an integer leaf (vmappable over policies).

    Every policy is evaluated and the chosen action picked: under vmap a `lax.switch` with a
    batched index runs every branch anyway, and this form gives each its own key.
    """

    def policy(index, key, obs, state, params):
        keys = jax.random.split(key, len(policies))
        actions = jnp.stack(
            [p(keys[i], obs, state, params).astype(jnp.int32) for i, p in enumerate(policies)]
        )
        return jnp.sum(jnp.where(jnp.arange(len(policies)) == index, actions, 0))

    return policy


CHUNK_LANES = 1 << 16  # runs per compiled call: every CPU sweep is one call; a GPU's 1M, 16


def default_rates(scenario: Scenario, num: int = 16) -> np.ndarray:
    """Geometric grid from 1/30 to 3x the scenario's total on-time capacity."""
    total = float(scenario.capacity_per_model().sum())
    largest = float(scenario.capacity_per_model()[-1])
    return np.geomspace(largest / 30.0, 3.0 * max(total, largest), num)


def run_sweep(
    scenario: Scenario,
    policy_names: list[str],
    rates,
    mixes=None,
    deadline_scales=(1.0,),
    num_requests: int = 4000,
    seeds: int = 4,
    policies: list | None = None,
    per_seed: bool = False,
    workload: WorkloadSpec | None = None,
    chunk_lanes: int = CHUNK_LANES,
    on_chunk: Callable[[int], None] = no_progress,
    miss_penalties=None,
) -> dict:
    """Evaluate every grid point (policy, rate, mix, deadline scale, seed) in one call.

    Returns per-point aggregate metrics averaged over seeds, with the grid axes; with
    `per_seed` each metric keeps the seed axis, (P, R, M, D, S, ...). `miss_penalties`: an
    extra axis after D (the knob of a knob router, and the penalty of the `reward` metric,
    docs/knob.md): (P, R, M, D, N, S, ...); None = the scenario's. `workload`: any kind
    (default Poisson); each grid rate is its long-run mean rate (`rescaled`). The grid's
    runs go through one compiled program in chunks of `chunk_lanes` (the last one padded),
    `on_chunk(1)` after each: progress, and memory bounded by the chunk, not the grid.
    """
    workload = WorkloadSpec(kind="poisson") if workload is None else workload
    if workload.kind == "trace":  # a replay is never longer than its trace
        num_requests = min(num_requests, load_spec_trace(workload).num_arrivals)
    knob_axis = miss_penalties is not None
    if knob_axis and not all(np.isfinite(x) and x >= 0 for x in miss_penalties):
        raise InputError(f"miss penalties {list(miss_penalties)}: expected finite values >= 0")
    penalties = list(miss_penalties) if knob_axis else [float(scenario.miss_penalty)]
    points = len(policy_names) * len(rates) * len(mixes or [0]) * len(deadline_scales)
    lanes = points * len(penalties) * seeds
    check_memory(f"sweep: {lanes:,} runs x {num_requests:,} requests", lanes * num_requests * 32)
    env = make_env(scenario.sim_config(workload, emit_records=False))
    if policies is None:
        lp_mix = mixes[0] if mixes else workload.task_mix  # the mix `lp` solves for
        policies = [make_policy(name, env, scenario, lp_mix) for name in policy_names]
    given_mixes = mixes
    mixes = [tuple(scenario.task_mix())] if mixes is None else [tuple(m) for m in mixes]
    for m in mixes:
        if len(m) != scenario.num_tasks or abs(sum(m) - 1) > 1e-6 or min(m) < 0:
            raise InputError(
                f"--mixes {m}: expected {scenario.num_tasks} non-negative "
                "probabilities summing to 1"
            )
    base = scenario.sim_params()
    wparams, generate = make_workload(workload, scenario.num_tasks, num_requests)
    keep_mix = given_mixes is None and workload.mix_schedule is not None
    at_rate = rescaled(workload, wparams)
    switch = make_switch_policy(policies)

    def setup(rate, mix, deadline_scale, penalty, seed):
        # Common random numbers: every grid point with the same seed sees the same arrivals.
        key = jax.random.fold_in(jax.random.key(0), seed)
        key_workload, key_run = jax.random.split(key)
        p = at_rate(rate)
        arrivals = generate(key_workload, p if keep_mix else p.replace(mix_probs=mix[None, :]))
        params = base.replace(deadline_s=base.deadline_s * deadline_scale, miss_penalty=penalty)
        return key_run, params, arrivals

    def run_all(policy_index, rate, mix, deadline_scale, penalty, seed):
        keys, params, arrivals = jax.vmap(setup)(rate, mix, deadline_scale, penalty, seed)
        counters = counter_rollouts(
            env,
            lambda index: lambda *a: switch(index, *a),
            keys,
            params,
            arrivals,
            lane_args=policy_index,
            params_batched=True,
        )
        hard = scenario.deadline_kind == "hard"
        return jax.vmap(lambda c, p: counter_metrics(c, p.miss_penalty, hard))(counters, params)

    axes = (
        range(len(policies)),
        np.asarray(rates, np.float32),
        range(len(mixes)),
        np.asarray(deadline_scales, np.float32),
        np.asarray(penalties, np.float32),
        range(seeds),
    )
    grid = list(itertools.product(*axes))
    cols = list(zip(*grid, strict=True))
    args = (
        np.asarray(cols[0], np.int32),
        np.asarray(cols[1], np.float32),
        np.asarray(mixes, np.float32)[list(cols[2])],
        np.asarray(cols[3], np.float32),
        np.asarray(cols[4], np.float32),
        np.asarray(cols[5], np.int32),
    )
    start = time.perf_counter()
    metrics = _run_in_chunks(sim_jit(run_all), args, len(grid), chunk_lanes, on_chunk)
    wall_s = time.perf_counter() - start
    shape = (len(policies), len(rates), len(mixes), len(deadline_scales), len(penalties), seeds)
    out = {k: np.asarray(v).reshape(shape + np.shape(v)[1:]) for k, v in metrics.items()}
    if not knob_axis:
        out = {k: v[:, :, :, :, 0] for k, v in out.items()}
    if not per_seed:
        out = {k: v.mean(axis=5 if knob_axis else 4) for k, v in out.items()}
    return {
        "policies": list(policy_names),
        "rates": [float(r) for r in rates],
        "mixes": [list(m) for m in mixes],
        "deadline_scales": list(deadline_scales),
        **({"miss_penalties": [float(x) for x in penalties]} if knob_axis else {}),
        "seeds": seeds,
        "num_requests": num_requests,
        "wall_s": wall_s,
        "decisions": len(grid) * num_requests,
        **{k: v.tolist() for k, v in out.items()},
    }


def _run_in_chunks(run, args: tuple, num_lanes: int, chunk_lanes: int, on_chunk) -> dict:
    """`run(*args)` over lane chunks of one size (one compile), results concatenated."""
    size = min(num_lanes, chunk_lanes)
    parts = []
    for start in range(0, num_lanes, size):
        lanes = np.minimum(np.arange(start, start + size), num_lanes - 1)  # pad: repeat last
        out = jax.block_until_ready(run(*(jnp.asarray(a[lanes]) for a in args)))
        parts.append(jax.tree.map(lambda v, n=num_lanes - start: np.asarray(v)[:n], out))
        on_chunk(1)
    return jax.tree.map(lambda *vs: np.concatenate(vs), *parts)


def num_chunks(num_lanes: int, chunk_lanes: int = CHUNK_LANES) -> int:
    """How many compiled calls a sweep of `num_lanes` runs makes."""
    return -(-num_lanes // min(num_lanes, chunk_lanes))


def rescaled(spec: WorkloadSpec, wparams):
    """`rate -> params` of `spec` at that long-run mean rate (vmappable over the rate).

    Poisson and gamma set their rate; other kinds scale every rate (a trace: every gap)
    through the `rate_scale` leaf, so their shape over time is kept.
    """
    if spec.kind in ("poisson", "gamma"):
        return lambda rate: wparams.replace(rate=rate)
    base_rate = mean_rate(spec)
    return lambda rate: wparams.replace(rate_scale=wparams.rate_scale * rate / base_rate)


def format_sweep(result: dict) -> str:
    """Normalised performance (and availability) per policy and rate, first mix and deadline."""
    rates = result["rates"]
    head = f"{'policy':<14}" + "".join(f"{r:>8.0f}" for r in rates)
    lines = [
        f"normalised performance (availability below), scenario {result['scenario']}, "
        f"{result['seeds']} seeds x {result['num_requests']} requests; rates in req/s",
        head,
    ]
    for p, name in enumerate(result["policies"]):
        perf = [result["normalized_performance"][p][r][0][0] for r in range(len(rates))]
        avail = [result["availability"][p][r][0][0] for r in range(len(rates))]
        lines.append(f"{name:<14}" + "".join(f"{v:>8.3f}" for v in perf))
        lines.append(f"{'':<14}" + "".join(f"{v:>8.3f}" for v in avail))
    bound = bound_at(result)
    cells = [f"{v:>8.3f}" for v in bound] if bound else [f"{'n/a':>8}"] * len(rates)
    lines.append(f"{'fluid bound':<14}" + "".join(cells))
    if result.get("fluid_upper_bound_note"):
        lines.append(f"(no fluid bound: {result['fluid_upper_bound_note']})")
    lines.append(f"({result['decisions']} decisions in {result['wall_s']:.1f} s, one call)")
    return "\n".join(lines)
