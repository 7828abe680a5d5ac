"""A learned router against every baseline and the fluid bound (`jaxserve evaluate`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from jaxserve.evaluation.bounds import nominal_curve
from jaxserve.evaluation.grid import run_sweep
from jaxserve.evaluation.simulate import simulate, simulate_seeds
from jaxserve.evaluation.stats import format_ratio, mean_ci, ratio_ci
from jaxserve.policies.baselines import baseline_names
from jaxserve.progress import no_progress
from jaxserve.rl.envs import poisson_rates, reference_capacity
from jaxserve.rl.policy import load_learned_policy
from jaxserve.sim.metrics import max_sustainable_rate
from jaxserve.sim.scenarios import Scenario, display_name, equal_hardware
from jaxserve.sim.workloads import WorkloadSpec

ROUTER = "router"
PEAK_PERCENTS = (96, 98)


def unpredictable_spec(scenario: Scenario) -> WorkloadSpec:
    """The evaluation 'unpredictable' workload: rates log-uniform over the same span, spikes."""
    scale = reference_capacity(scenario)
    return WorkloadSpec(
        kind="unpredictable",
        min_rate=scale / 30.0,
        max_rate=3.0 * scale,
        mean_segment_s=30.0,
        spike_prob=0.1,
        spike_mult=3.0,
    )


def policy_names(scenario: Scenario) -> list[str]:
    """The router, then every baseline: the rows of every comparison."""
    return [ROUTER] + baseline_names(scenario.model_names)


def _policies(router, scenario: Scenario):
    """Row names and policies; `router`: a checkpoint path, or its policy already built
    (e.g. a knob router steered by an availability target, docs/knob.md)."""
    names = baseline_names(scenario.model_names)
    policy = router if callable(router) else load_learned_policy(router, scenario)
    return [ROUTER] + names, [policy] + names


def equal_hardware_names(scenario: Scenario) -> list[str]:
    """Row names of the equal-hardware statics: 'OPT-6.7B x4 GPUs', one per model."""
    gpus = sum(scenario.replicas)
    return [f"{display_name(m)} x{gpus} GPUs" for m in scenario.model_names]


def equal_hardware_run(
    scenario: Scenario, model: int, rates, num_requests: int, seeds: int, mixes=None, workload=None
) -> dict:
    """Per-seed performance and availability of `model` alone on all the scenario's GPUs,
    each (R, X, S) over rates, mixes and seeds.

    The arrivals are those of a sweep of `scenario` with the same arguments (same seeds,
    common random numbers), so its rows compare run by run; normalise by that sweep's peak.
    """
    sweep = run_sweep(
        equal_hardware(scenario, model), ["static:0"], rates, mixes, (1.0,), num_requests,
        seeds, per_seed=True, workload=workload,
    )  # fmt: skip
    return {k: np.asarray(sweep[k])[0, :, :, 0] for k in ("performance", "availability")}


def equal_hardware_runs(
    scenario: Scenario, rates, num_requests: int, seeds: int, workload=None
) -> dict:
    """`equal_hardware_run` of every model on the scenario's own mix, stacked (K, R, S)."""
    runs = [
        equal_hardware_run(scenario, k, rates, num_requests, seeds, workload=workload)
        for k in range(scenario.num_models)
    ]
    return {key: np.stack([r[key][:, 0] for r in runs]) for key in ("performance", "availability")}


def poisson_comparison(
    path, scenario: Scenario, rates=None, num_requests: int = 4000, seeds: int = 8
) -> dict:
    """Normalised performance and availability per policy and rate, mean and 95 % interval
    over `seeds` episodes; rows: the router, the baselines on the scenario's placement, and
    each model alone on all its GPUs (equal hardware)."""
    from jaxserve.policies.baselines import make_policy
    from jaxserve.sim.counter_env import make_env

    rates = poisson_rates(scenario) if rates is None else np.asarray(rates)
    names, policies = _policies(path, scenario)
    env = make_env(dataclasses.replace(scenario.sim_config(), emit_records=False))
    resolved = [p if not isinstance(p, str) else make_policy(p, env, scenario) for p in policies]
    sweep = run_sweep(
        scenario, names, rates, None, (1.0,), num_requests, seeds, resolved, per_seed=True
    )
    peak = np.asarray(sweep["peak"])[0, :, 0, 0]  # (R, S): every policy saw the same arrivals
    alone = equal_hardware_runs(scenario, rates, num_requests, seeds)
    perf = np.concatenate(
        [np.asarray(sweep["normalized_performance"])[:, :, 0, 0], alone["performance"] / peak]
    )  # (P + K, R, S)
    avail = np.concatenate([np.asarray(sweep["availability"])[:, :, 0, 0], alone["availability"]])
    names = names + equal_hardware_names(scenario)
    return _summarise(names, rates, perf, avail, nominal_curve(scenario, rates)) | {
        "num_requests": num_requests,
        "seeds": seeds,
        "wall_s": sweep["wall_s"],
    }


def _summarise(names, rates, perf, avail, bound) -> dict:
    """Means, intervals and router-vs-static gaps from per-seed (P, R, S) arrays."""
    perf_mean, perf_ci = mean_ci(perf)
    avail_mean, avail_ci = mean_ci(avail)
    bound = np.asarray(bound)
    gap_mean, gap_ci = mean_ci(perf[0][None] - perf[1:])  # paired by seed
    statics = [i for i, n in enumerate(names) if n.startswith("static:") or " GPUs" in n]
    best = max(statics, key=lambda i: perf_mean[i].mean())
    return {
        "rates": np.asarray(rates).tolist(),
        "policies": names,
        "normalized_performance": perf_mean.tolist(),
        "normalized_performance_ci": perf_ci.tolist(),
        "availability": avail_mean.tolist(),
        "availability_ci": avail_ci.tolist(),
        "fluid_upper_bound_normalized": bound.tolist(),
        "fraction_of_bound_mean": (perf_mean / bound[None, :]).mean(axis=1).tolist(),
        "router_minus": {n: g.tolist() for n, g in zip(names[1:], gap_mean, strict=True)},
        "router_minus_ci": {n: g.tolist() for n, g in zip(names[1:], gap_ci, strict=True)},
        "router_minus_best_static": (perf_mean[0] - perf_mean[statics].max(axis=0)).tolist(),
        "best_static_on_average": names[best],
        "router_at_least_static_everywhere": bool(
            np.all(gap_ci[[i - 1 for i in statics], :, 1] >= 0)
        ),
    }


def sustainable_rates(
    path, scenario: Scenario, num_rates: int = 24, num_requests: int = 4000, seeds: int = 2
) -> dict:
    """Max sustainable rate (availability >= 0.99 on a geometric grid) per policy."""
    scale = reference_capacity(scenario)
    rates = np.geomspace(scale / 30.0, 30.0 * scale, num_rates)
    comp = poisson_comparison(path, scenario, rates, num_requests, seeds)
    msr = {
        n: max_sustainable_rate(rates, a)
        for n, a in zip(comp["policies"], comp["availability"], strict=True)
    }
    return {"rates": rates.tolist(), "max_sustainable_rate": msr}


def _runs_over_seeds(scenario, policy, spec, num_requests, seeds, name, peak_of) -> dict:
    """One policy's unpredictable-workload runs: per-seed metrics and window series."""
    runs = simulate_seeds(
        scenario, policy, spec, num_requests, seeds, policy_name=name, normalise_by=peak_of
    )
    out = {"series": [r["windowed_normalized_performance"] for r in runs]}
    for key in ("normalized_performance", "availability"):
        mean, ci = mean_ci([r[key] for r in runs])
        out[key], out[f"{key}_ci"] = float(mean), ci.tolist()
    for level in PEAK_PERCENTS:
        pooled = np.concatenate([np.asarray(x) >= level / 100 for x in out["series"]])
        out[f"time_above_{level}"] = float(pooled.mean())
    return out


def _unpredictable_rows(path, scenario: Scenario) -> list[tuple[str, Scenario, object]]:
    """(name, scenario, policy) of every row: router, baselines, equal-hardware statics."""
    names, policies = _policies(path, scenario)
    rows = [(n, scenario, p) for n, p in zip(names, policies, strict=True)]
    for k, name in enumerate(equal_hardware_names(scenario)):
        rows.append((name, equal_hardware(scenario, k), "static:0"))
    return rows


def unpredictable_comparison(
    path,
    scenario: Scenario,
    num_requests: int = 25_000,
    seed: int = 0,
    spec: WorkloadSpec | None = None,
    on_run: Callable[[int], None] = no_progress,
    seeds: int = 8,
) -> dict:
    """Time above 96/98 % of peak per policy on the unpredictable workload, with intervals.

    `seeds` episodes of `num_requests` each (seeds seed..seed+seeds-1); per-policy means
    with 95 % t intervals over seeds; router / static ratios of time above X % with a
    bootstrap over seeds and windows (`stats.ratio_ci`). `on_run(1)` after each policy.
    """
    spec = spec or unpredictable_spec(scenario)
    seed_list = list(range(seed, seed + seeds))
    runs = {}
    for name, sc, policy in _unpredictable_rows(path, scenario):
        runs[name] = _runs_over_seeds(sc, policy, spec, num_requests, seed_list, name, scenario)
        on_run(1)
    ratios = {
        name: {
            f"time_above_{x}": ratio_ci(runs[ROUTER]["series"], r["series"], x / 100)
            for x in PEAK_PERCENTS
        }
        for name, r in runs.items()
        if name.startswith("static:") or " GPUs" in name
    }
    return {
        "workload": dataclasses.asdict(spec),
        "num_requests": num_requests,
        "seeds": seeds,
        "runs": runs,
        "router_vs_static": ratios,
    }


def workload_comparison(
    path,
    scenario: Scenario,
    spec: WorkloadSpec,
    num_requests: int,
    seed: int,
    on_run: Callable[[int], None] = no_progress,
) -> dict:
    """Every docs/spec.md §4 metric per policy on one chosen workload; `on_run(1)` per run."""
    names, policies = _policies(path, scenario)
    runs = {}
    for name, policy in zip(names, policies, strict=True):
        runs[name] = simulate(scenario, policy, spec, num_requests, seed, policy_name=name)
        on_run(1)
    return runs


def format_poisson(result: dict) -> str:
    """Table: normalised performance per policy and rate (mean ± 95 % half-width over seeds),
    the fluid bound, and the mean fraction of the bound."""
    rates = result["rates"]
    lines = [
        f"normalised performance on stationary Poisson, mean ± 95 % interval over "
        f"{result['seeds']} seeds x {result['num_requests']} requests (rates in req/s); "
        "last column: mean over rates of performance / fluid bound",
        f"{'policy':<18}" + "".join(f"{r:>13.0f}" for r in rates) + f"{'/bound':>9}",
    ]
    rows = zip(
        result["policies"],
        result["normalized_performance"],
        result["normalized_performance_ci"],
        result["fraction_of_bound_mean"],
        strict=True,
    )
    for name, perf, ci, frac in rows:
        cells = "".join(
            f"{m:>7.3f}±{(hi - lo) / 2:<5.3f}" for m, (lo, hi) in zip(perf, ci, strict=True)
        )
        lines.append(f"{name:<18}" + cells + f"{frac:>9.3f}")
    lines.append(
        f"{'fluid bound':<18}"
        + "".join(f"{v:>7.3f}      " for v in result["fluid_upper_bound_normalized"])
    )
    return "\n".join(lines)


def format_unpredictable(result: dict) -> str:
    """Table: mean ± 95 % half-width of performance and availability; time above 96/98 %."""
    lines = [
        f"unpredictable workload, {result['seeds']} seeds x {result['num_requests']} requests: "
        "normalised performance, availability (mean ± 95 % interval), time above 96 % / 98 %",
    ]
    for name, r in result["runs"].items():
        cells = "".join(
            f"{r[k]:>8.3f}±{(r[k + '_ci'][1] - r[k + '_ci'][0]) / 2:<6.3f}"
            for k in ("normalized_performance", "availability")
        )
        lines.append(f"{name:<18}{cells}{r['time_above_96']:>8.3f}{r['time_above_98']:>8.3f}")
    for name, ratio in result["router_vs_static"].items():
        text = ", ".join(
            f"{k} {format_ratio(v, 'n/a (static never above)')}" for k, v in ratio.items()
        )
        lines.append(f"router vs {name}: {text}")
    return "\n".join(lines)


def plot_evaluation(result: dict, stem: str) -> None:
    """PNG of the Poisson comparison (sweep style) and of the unpredictable time series."""
    import matplotlib.pyplot as plt

    from jaxserve.io_utils import save_figure_atomic
    from jaxserve.plots import plot_sweep

    poisson = result.get("poisson")
    if poisson:
        sweep = {
            "rates": poisson["rates"],
            "policies": poisson["policies"],
            "normalized_performance": [
                [[[v]] for v in row] for row in poisson["normalized_performance"]
            ],
            "availability": [[[[v]] for v in row] for row in poisson["availability"]],
            "fluid_upper_bound_normalized": poisson["fluid_upper_bound_normalized"],
            "scenario": result.get("scenario", ""),
            "seeds": poisson["seeds"],
            "num_requests": poisson["num_requests"],
        }
        plot_sweep(sweep, f"{stem}-poisson.png")
    unpred = result.get("unpredictable")
    if unpred:
        fig, ax = plt.subplots(figsize=(11, 4))
        for name, r in unpred["runs"].items():
            if name == ROUTER or " GPUs" in name or name == "greedy":
                ax.plot(r["series"][0], lw=1.2 if name == ROUTER else 0.7, label=name)
        ax.set_xlabel("window (10 s), first seed")
        ax.set_ylabel("windowed normalised performance")
        ax.legend(fontsize=7)
        save_figure_atomic(fig, f"{stem}-unpredictable.png")
        plt.close(fig)
