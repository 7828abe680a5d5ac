"""Experiment 3 — hardware cost: the learned router on 4 GPUs vs OPT-6.7B alone on 8 GPUs.

Performance per GPU (docs/spec.md §4: performance x offered rate / replicas, i.e. utility delivered
per second per GPU) of the router on opt-a100x4 (OPT-125M + OPT-1.3B + 2 x OPT-6.7B, 4 GPUs)
and of OPT-6.7B alone on opt-a100x8-large (8 replicas), across Poisson rates and on the
synthetic unpredictable workload of Exp 2. The router is a population trained with the
shipped hard router's exact config (`population.seeds` training seeds): each ratio is paired
by episode and reported as a mean with a two-level 95 % interval (training seeds x
episodes); the shipped router is reported beside it. The paper reports about 3.9x.

    .venv/bin/python experiments/03_hardware_cost.py [--quick | --smoke]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxserve.evaluation.comparison import unpredictable_spec
from jaxserve.evaluation.stats import format_interval, mean_ci
from jaxserve.research import report as R
from jaxserve.research.figures import save_figure
from jaxserve.research.runs import (
    QUICK_POPULATION,
    SHIPPED,
    SMOKE_POPULATION,
    Population,
    Run,
    pool_members,
    router_population,
    run_pipeline,
    sweep,
    workload_runs,
)
from jaxserve.rl.envs import reference_capacity
from jaxserve.sim.scenarios import get_scenario

NAME = "03_hardware_cost"
TITLE = "Hardware cost: learned router on 4 GPUs vs OPT-6.7B alone on 8 GPUs"
PAPER_RATIO = 3.9


@dataclasses.dataclass(frozen=True)
class Config:
    num_rates: int = 20
    num_requests: int = 4000
    seeds: int = 8
    unpredictable_requests: int = 50_000  # per episode; `seeds` episodes
    population: Population = Population()


SMOKE = Config(
    num_rates=4,
    num_requests=300,
    seeds=2,
    unpredictable_requests=2000,
    population=SMOKE_POPULATION,
)
QUICK = Config(
    num_rates=14,
    num_requests=2000,
    seeds=4,
    unpredictable_requests=15_000,
    population=QUICK_POPULATION,
)
FULL = Config()


def _per_gpu(run: dict, gpus: int) -> np.ndarray:
    """Utility delivered per second per GPU in each episode of a `workload_runs` row."""
    return np.asarray(run["performance_per_seed"]) * run["offered_rate_per_seed"] / gpus


def _unpredictable(config: Config, small, large, members: dict, hard: Path) -> dict:
    """Per-episode performance-per-GPU ratios on the unpredictable workload (paired seeds)."""
    gpus_small, gpus_large = sum(small.replicas), sum(large.replicas)
    spec, n, seeds = unpredictable_spec(small), config.unpredictable_requests, config.seeds
    named = {**members, SHIPPED: hard}
    ra = workload_runs(small, named, spec, n, keep_series=False, seeds=seeds)["runs"]
    rb = workload_runs(large, {"static": "static:0"}, spec, n, keep_series=False, seeds=seeds)
    rb = rb["runs"]["static"]
    for r in (*ra.values(), rb):
        r.pop("series_per_seed")
    large_ppg = _per_gpu(rb, gpus_large)
    ratios = np.stack([_per_gpu(ra[m], gpus_small) / large_ppg for m in members])  # (M, S)
    ratio, ci = pool_members(ratios, len(members))
    shipped, shipped_ci = mean_ci(_per_gpu(ra[SHIPPED], gpus_small) / large_ppg)
    router_ppg = np.mean([_per_gpu(ra[m], gpus_small) for m in members])
    return {
        "router": {k: float(np.mean([ra[m][k] for m in members])) for k in _POOLED},
        "shipped": ra[SHIPPED],
        "large": rb,
        "ratio": float(ratio),
        "ratio_ci": ci.tolist(),
        "ratio_per_member": ratios.mean(axis=1).tolist(),
        "shipped_ratio": float(shipped),
        "shipped_ratio_ci": shipped_ci.tolist(),
        "ppg": [float(router_ppg), float(large_ppg.mean())],
    }


_POOLED = ("performance", "normalized_performance", "offered_rate")


def compute(config: Config, run: Run) -> dict:
    """Performance per GPU of both systems over Poisson rates and the unpredictable workload."""
    small, large = get_scenario("opt-a100x4"), get_scenario("opt-a100x8-large")
    gpus_small, gpus_large = sum(small.replicas), sum(large.replicas)
    cap = reference_capacity(small)
    rates = np.geomspace(cap / 10, 30 * cap, config.num_rates)
    n, seeds = config.num_requests, config.seeds
    members, cost = router_population(run, run.hard_router, config.population)
    named = {**members, SHIPPED: run.hard_router, "greedy": "greedy"}
    a = sweep(small, named, rates, None, n, seeds)
    b = sweep(large, {"static:opt-6.7b x8": "static:0"}, rates, None, n, seeds)
    ppg_a = np.asarray(a["performance_per_seed"])[:, :, 0] * rates[:, None] / gpus_small
    ppg_b = np.asarray(b["performance_per_seed"])[0, :, 0] * rates[:, None] / gpus_large
    rows = {name: p for p, name in enumerate(named)}
    ratio, ratio_ci = pool_members([ppg_a[rows[m]] / ppg_b for m in members], len(members))
    return {
        "rates": rates.tolist(),
        "train_seeds": len(members),
        "train_cost": cost,
        "ppg_router": ppg_a[[rows[m] for m in members]].mean(axis=(0, 2)).tolist(),
        "ppg_shipped": ppg_a[rows[SHIPPED]].mean(axis=1).tolist(),
        "ppg_greedy": ppg_a[rows["greedy"]].mean(axis=1).tolist(),
        "ppg_large": ppg_b.mean(axis=1).tolist(),
        "ratio": ratio.tolist(),
        "ratio_ci": ratio_ci.tolist(),
        "ratio_shipped": (ppg_a[rows[SHIPPED]] / ppg_b).mean(axis=1).tolist(),
        "unpredictable": _unpredictable(config, small, large, members, run.hard_router),
        "gpus": [gpus_small, gpus_large],
        "large_capacity": float(large.capacity_per_model().sum()),
        "num_requests": config.num_requests,
        "seeds": config.seeds,
    }


def plot(data: dict, figures_dir: Path) -> list[str]:
    """Performance per GPU and its ratio across Poisson rates."""
    import matplotlib.pyplot as plt

    rates = data["rates"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    seeds = data["train_seeds"]
    ax1.plot(rates, data["ppg_router"], lw=2.2, marker=".", label=f"router ({seeds} seeds), 4 GPUs")
    ax1.plot(rates, data["ppg_shipped"], "k-.", label="shipped router, 4 GPUs")
    ax1.plot(rates, data["ppg_greedy"], marker=".", label="greedy, 4 GPUs")
    ax1.plot(rates, data["ppg_large"], "--", marker=".", label="OPT-6.7B alone, 8 GPUs")
    ax1.set_ylabel("performance per GPU (utility / s / GPU)")
    (line,) = ax2.plot(rates, data["ratio"], lw=2.2, marker=".", label="router (4) / OPT-6.7B (8)")
    ci = np.asarray(data["ratio_ci"])
    ax2.fill_between(rates, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.2)
    ax2.plot(rates, data["ratio_shipped"], "k-.", label="shipped router (4) / OPT-6.7B (8)")
    ax2.axhline(PAPER_RATIO, color="grey", ls=":", label=f"paper: {PAPER_RATIO}x")
    ax2.axhline(1.0, color="black", lw=0.6)
    ax2.set_ylabel("ratio of performance per GPU")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("Poisson arrival rate (req/s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        "Exp 3 — performance per GPU across loads (band: 95 % interval over training seeds x "
        "episodes)"
    )
    return [save_figure(fig, figures_dir, "exp_03_hardware_cost.png")]


def _verdict(u_ratio: float, ratio: np.ndarray, interval=None) -> str:
    """R.verdict on the unpredictable workload; where it falls short, say if the grid reaches it."""
    v = R.verdict(u_ratio, PAPER_RATIO, interval)
    if v == R.FALLS_SHORT and R.verdict(float(ratio.max()), PAPER_RATIO) != R.FALLS_SHORT:
        return f"{v} (reached only at Poisson loads above the 8-GPU capacity)"
    return v


def write_up(data: dict, figures: list[str]) -> dict:
    """The ratio over the grid, below and above the 8-GPU capacity, and the claims row."""
    rates, ratio = np.asarray(data["rates"]), np.asarray(data["ratio"])
    ci = np.asarray(data["ratio_ci"])
    u = data["unpredictable"]
    ra, rb, u_ratio = u["router"], u["large"], u["ratio"]
    gpus_small, gpus_large = data["gpus"]
    below = rates <= data["large_capacity"]
    geo = np.exp(np.log(ratio).mean())
    top = int(np.argmax(ratio))
    above = (
        f"{ratio[~below].min():.2f}x to {ratio[~below].max():.2f}x." if (~below).any() else "n/a."
    )
    md = [
        f"Poisson grid: {len(rates)} rates from {rates[0]:.0f} to {rates[-1]:,.0f} req/s, "
        f"{data['seeds']} seeds x {data['num_requests']:,} requests. The 8-GPU system's "
        f"on-time capacity is {data['large_capacity']:,.0f} req/s. Router: {_who(data)}.",
        "",
        f"![exp 3]({figures[0]})",
        "",
        f"* Ratio of performance per GPU (router on 4 / OPT-6.7B on 8, mean over training "
        f"seeds x episodes): {ratio.min():.2f}x to {ratio.max():.2f}x over the grid (geometric"
        f" mean {geo:.2f}x; largest {ratio[top]:.2f}x {format_interval(ci[top])} at "
        f"{rates[top]:,.0f} req/s); below the 8-GPU capacity {ratio[below].min():.2f}x to "
        f"{ratio[below].max():.2f}x (at light load it is ~2x: the same utility from half the "
        "GPUs), above it " + above,
        f"* Unpredictable workload of Exp 2 ({ra['offered_rate']:.0f} req/s mean): router "
        f"{u['ppg'][0]:.1f} vs {rb['performance'] * rb['offered_rate'] / gpus_large:.1f} "
        f"utility/s/GPU, **{u_ratio:.2f}x** {format_interval(u['ratio_ci'])} (the per-episode "
        f"ratio, paired by episode, mean over {data['train_seeds']} training seeds x "
        f"{data['seeds']} episodes, two-level 95 % interval; per training seed "
        + ", ".join(f"{v:.2f}x" for v in u["ratio_per_member"])
        + f"; the shipped router {u['shipped_ratio']:.2f}x "
        f"{format_interval(u['shipped_ratio_ci'])}; paper: about {PAPER_RATIO}x); "
        f"normalised performance {ra['normalized_performance']:.3f} (4 GPUs) vs "
        f"{rb['normalized_performance']:.3f} (8 GPUs).",
    ]
    claims = [
        R.claim(
            "Performance per GPU vs doubling GPUs for the large model",
            f"about {PAPER_RATIO}x",
            f"unpredictable: {u_ratio:.2f}x {format_interval(u['ratio_ci'])} "
            f"({data['train_seeds']} training seeds); Poisson grid: {ratio.min():.2f}x-"
            f"{ratio.max():.2f}x (geo-mean {geo:.2f}x)",
            "Exp 3: opt-a100x4 router vs opt-a100x8-large",
            _verdict(u_ratio, ratio, tuple(u["ratio_ci"])),
        ),
    ]
    return {"claims": claims, "markdown": "\n".join(md)}


def _who(data: dict) -> str:
    cost = data["train_cost"]
    return (
        f"a population of {data['train_seeds']} routers trained with the shipped "
        f"`checkpoints/opt-a100x4-hard`'s exact config ({cost['env_steps']:,} env steps in "
        f"all, {cost['wall_s']:.0f} s); dash-dotted: the shipped router itself"
    )


def discussion(d: dict) -> str:
    """The results.md paragraph on Exp 3."""
    u = d["unpredictable"]
    return (
        "**Hardware cost (Exp 3).** Performance per GPU mixes two effects: at loads the 8-GPU "
        "OPT-6.7B system can serve, both deliver near-peak utility and the ratio is about 2x "
        "(half the GPUs); only above its capacity does the ratio grow (up to "
        f"{max(d['ratio']):.1f}x on our grid). On the unpredictable workload, whose mean rate "
        f"is below the 8-GPU capacity, it is {u['ratio']:.2f}x {format_interval(u['ratio_ci'])}"
        f" over {d['train_seeds']} training seeds. The paper's 3.9x corresponds to a workload "
        "that spends much of its time above the doubled system's capacity; we report the "
        "whole curve rather than a single number."
    )


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/03_hardware_cost.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
