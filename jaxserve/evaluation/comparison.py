"""A learned router against every baseline and the fluid bound (`jaxserve evaluate`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from jaxserve.evaluation.bounds import nominal_curve
from jaxserve.evaluation.grid import run_sweep
from jaxserve.evaluation.simulate import simulate
from jaxserve.policies.baselines import baseline_names
from jaxserve.progress import no_progress
from jaxserve.rl.envs import poisson_rates, reference_capacity
from jaxserve.rl.policy import load_learned_policy
from jaxserve.sim.metrics import max_sustainable_rate, time_above_ratio
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec

ROUTER = "router"


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


def _policies(path, scenario: Scenario):
    names = baseline_names(scenario.model_names)
    return [ROUTER] + names, [load_learned_policy(path, scenario)] + names


def poisson_comparison(
    path, scenario: Scenario, rates=None, num_requests: int = 4000, seeds: int = 4
) -> dict:
    """Normalised performance and availability per policy and rate, one vmapped sweep."""
    from jaxserve.policies.baselines import make_policy
    from jaxserve.sim.counter_env import make_env

    rates = poisson_rates(scenario) if rates is None else np.asarray(rates)
    names, policies = _policies(path, scenario)
    env = make_env(dataclasses.replace(scenario.sim_config(), emit_records=False))
    resolved = [p if not isinstance(p, str) else make_policy(p, env, scenario) for p in policies]
    sweep = run_sweep(scenario, names, rates, None, (1.0,), num_requests, seeds, resolved)
    perf = np.asarray(sweep["normalized_performance"])[:, :, 0, 0]  # (P, R)
    avail = np.asarray(sweep["availability"])[:, :, 0, 0]
    bound = np.asarray(nominal_curve(scenario, rates))
    out = {
        "rates": rates.tolist(),
        "policies": names,
        "normalized_performance": perf.tolist(),
        "availability": avail.tolist(),
        "fluid_upper_bound_normalized": bound.tolist(),
        "fraction_of_bound_mean": (perf / bound[None, :]).mean(axis=1).tolist(),
        "num_requests": num_requests,
        "seeds": seeds,
        "wall_s": sweep["wall_s"],
    }
    statics = [i for i, n in enumerate(names) if n.startswith("static:")]
    best_static = perf[statics].max(axis=0)
    out["router_minus_best_static"] = (perf[0] - best_static).tolist()
    out["router_at_least_static_everywhere"] = bool(np.all(perf[0] >= best_static - 1e-3))
    return out


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


def unpredictable_comparison(
    path,
    scenario: Scenario,
    num_requests: int = 200_000,
    seed: int = 0,
    spec: WorkloadSpec | None = None,
    on_run: Callable[[int], None] = no_progress,
) -> dict:
    """Time above 96/98% of peak per policy on the unpredictable workload; router ratios.

    `on_run(1)` after each policy's run (progress).
    """
    spec = spec or unpredictable_spec(scenario)
    names, policies = _policies(path, scenario)
    runs = {}
    for name, policy in zip(names, policies, strict=True):
        r = simulate(scenario, policy, spec, num_requests, seed, policy_name=name)
        on_run(1)
        runs[name] = {
            k: r[k]
            for k in ("normalized_performance", "availability", "time_above_96", "time_above_98")
        }
        runs[name]["series"] = r["windowed_normalized_performance"]
    ratios = {}
    for name in names[1:]:
        if name.startswith("static:"):
            ratios[name] = {
                f"time_above_{x}": time_above_ratio(
                    runs[ROUTER][f"time_above_{x}"], runs[name][f"time_above_{x}"]
                )
                for x in (96, 98)
            }
    return {
        "workload": dataclasses.asdict(spec),
        "num_requests": num_requests,
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
    """Table: normalised performance per policy and rate, the bound, mean fraction of bound."""
    rates = result["rates"]
    lines = [
        "normalised performance on stationary Poisson (rate in req/s); last column: mean "
        "over rates of performance / fluid bound",
        f"{'policy':<18}" + "".join(f"{r:>8.0f}" for r in rates) + f"{'/bound':>9}",
    ]
    for name, perf, frac in zip(
        result["policies"],
        result["normalized_performance"],
        result["fraction_of_bound_mean"],
        strict=True,
    ):
        lines.append(f"{name:<18}" + "".join(f"{v:>8.3f}" for v in perf) + f"{frac:>9.3f}")
    lines.append(
        f"{'fluid bound':<18}"
        + "".join(f"{v:>8.3f}" for v in result["fluid_upper_bound_normalized"])
    )
    return "\n".join(lines)


def format_unpredictable(result: dict) -> str:
    lines = ["unpredictable workload: normalised performance, availability, time above 96%/98%"]
    for name, r in result["runs"].items():
        lines.append(
            f"{name:<18}{r['normalized_performance']:>8.3f}{r['availability']:>8.3f}"
            f"{r['time_above_96']:>8.3f}{r['time_above_98']:>8.3f}"
        )
    for name, ratio in result["router_vs_static"].items():
        text = ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}x'}" for k, v in ratio.items())
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
            if name == ROUTER or name.startswith("static:") or name in ("greedy", "lp"):
                ax.plot(r["series"], lw=1.2 if name == ROUTER else 0.7, label=name)
        ax.set_xlabel("window (10 s)")
        ax.set_ylabel("windowed normalised performance")
        ax.legend(fontsize=7)
        save_figure_atomic(fig, f"{stem}-unpredictable.png")
        plt.close(fig)
