"""Experiment 3 — hardware cost: the learned router on 4 GPUs vs OPT-6.7B alone on 8 GPUs.

Performance per GPU (docs/spec.md §4: performance x offered rate / replicas, i.e. utility delivered
per second per GPU) of the shipped router on opt-a100x4 (OPT-125M + OPT-1.3B + 2 x OPT-6.7B,
4 GPUs) and of OPT-6.7B alone on opt-a100x8-large (8 replicas), across Poisson rates and on
the synthetic unpredictable workload of Exp 2. The paper reports about 3.9x.

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
from jaxserve.research.runs import Run, run_pipeline, sweep, workload_runs
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


SMOKE = Config(num_rates=4, num_requests=300, seeds=2, unpredictable_requests=2000)
QUICK = Config(num_rates=14, num_requests=2000, seeds=4, unpredictable_requests=15_000)
FULL = Config()


def compute(config: Config, run: Run) -> dict:
    """Performance per GPU of both systems over Poisson rates and the unpredictable workload."""
    small, large = get_scenario("opt-a100x4"), get_scenario("opt-a100x8-large")
    gpus_small, gpus_large = sum(small.replicas), sum(large.replicas)
    cap = reference_capacity(small)
    rates = np.geomspace(cap / 10, 30 * cap, config.num_rates)
    n, seeds = config.num_requests, config.seeds
    a = sweep(small, {"router": run.hard_router, "greedy": "greedy"}, rates, None, n, seeds)
    b = sweep(large, {"static:opt-6.7b x8": "static:0"}, rates, None, n, seeds)
    perf_a = np.asarray(a["performance"])[:, :, 0]
    perf_b = np.asarray(b["performance"])[0, :, 0]
    ppg_large = perf_b * rates / gpus_large
    spec = unpredictable_spec(small)
    n = config.unpredictable_requests
    ra = workload_runs(small, {"router": run.hard_router}, spec, n, keep_series=False, seeds=seeds)
    rb = workload_runs(large, {"static": "static:0"}, spec, n, keep_series=False, seeds=seeds)
    ra, rb = ra["runs"]["router"], rb["runs"]["static"]
    for r in (ra, rb):
        r.pop("series_per_seed")
    per_gpu = lambda r, g: np.asarray(r["performance_per_seed"]) * r["offered_rate_per_seed"] / g  # noqa: E731
    u_ratio, u_ci = mean_ci(per_gpu(ra, gpus_small) / per_gpu(rb, gpus_large))  # paired by episode
    u_ppg_a = ra["performance"] * ra["offered_rate"] / gpus_small
    u_ppg_b = rb["performance"] * rb["offered_rate"] / gpus_large
    return {
        "rates": rates.tolist(),
        "ppg_router": (perf_a[0] * rates / gpus_small).tolist(),
        "ppg_greedy": (perf_a[1] * rates / gpus_small).tolist(),
        "ppg_large": ppg_large.tolist(),
        "ratio": (perf_a[0] * rates / gpus_small / ppg_large).tolist(),
        "unpredictable": {
            "router": ra,
            "large": rb,
            "ratio": float(u_ratio),
            "ratio_ci": u_ci.tolist(),
            "ppg": [u_ppg_a, u_ppg_b],
        },
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
    ax1.plot(rates, data["ppg_router"], lw=2.2, marker=".", label="router, 4 GPUs")
    ax1.plot(rates, data["ppg_greedy"], marker=".", label="greedy, 4 GPUs")
    ax1.plot(rates, data["ppg_large"], "--", marker=".", label="OPT-6.7B alone, 8 GPUs")
    ax1.set_ylabel("performance per GPU (utility / s / GPU)")
    ax2.plot(rates, data["ratio"], lw=2.2, marker=".", label="router (4) / OPT-6.7B (8)")
    ax2.axhline(PAPER_RATIO, color="grey", ls=":", label=f"paper: {PAPER_RATIO}x")
    ax2.axhline(1.0, color="black", lw=0.6)
    ax2.set_ylabel("ratio of performance per GPU")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("Poisson arrival rate (req/s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Exp 3 — performance per GPU across loads")
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
    u = data["unpredictable"]
    ra, rb, u_ratio = u["router"], u["large"], u["ratio"]
    gpus_small, gpus_large = data["gpus"]
    below = rates <= data["large_capacity"]
    geo = np.exp(np.log(ratio).mean())
    above = (
        f"{ratio[~below].min():.2f}x to {ratio[~below].max():.2f}x." if (~below).any() else "n/a."
    )
    md = [
        f"Poisson grid: {len(rates)} rates from {rates[0]:.0f} to {rates[-1]:,.0f} req/s, "
        f"{data['seeds']} seeds x {data['num_requests']:,} requests. The 8-GPU system's "
        f"on-time capacity is {data['large_capacity']:,.0f} req/s.",
        "",
        f"![exp 3]({figures[0]})",
        "",
        f"* Ratio of performance per GPU (router on 4 / OPT-6.7B on 8): {ratio.min():.2f}x to "
        f"{ratio.max():.2f}x over the grid (geometric mean {geo:.2f}x);"
        f" below the 8-GPU capacity {ratio[below].min():.2f}x to {ratio[below].max():.2f}x "
        f"(at light load it is ~2x: the same utility from half the GPUs), above it " + above,
        f"* Unpredictable workload of Exp 2 ({ra['offered_rate']:.0f} req/s mean): router "
        f"{ra['performance'] * ra['offered_rate'] / gpus_small:.1f} vs "
        f"{rb['performance'] * rb['offered_rate'] / gpus_large:.1f} utility/s/GPU, "
        f"**{u_ratio:.2f}x** {_ci(u)} (mean over {data['seeds']} episodes of the per-episode"
        f" ratio, 95 % interval; paper: about {PAPER_RATIO}x); normalised performance "
        f"{ra['normalized_performance']:.3f} (4 GPUs) vs {rb['normalized_performance']:.3f} "
        "(8 GPUs).",
    ]
    claims = [
        R.claim(
            "Performance per GPU vs doubling GPUs for the large model",
            f"about {PAPER_RATIO}x",
            f"unpredictable: {u_ratio:.2f}x {_ci(u)}; Poisson grid: {ratio.min():.2f}x-"
            f"{ratio.max():.2f}x (geo-mean {geo:.2f}x)",
            "Exp 3: opt-a100x4 router vs opt-a100x8-large",
            _verdict(u_ratio, ratio, tuple(u["ratio_ci"]) if "ratio_ci" in u else None),
        ),
    ]
    return {"claims": claims, "markdown": "\n".join(md)}


def _ci(u: dict) -> str:
    return format_interval(u["ratio_ci"]) if "ratio_ci" in u else ""


def discussion(d: dict) -> str:
    """The results.md paragraph on Exp 3."""
    return (
        "**Hardware cost (Exp 3).** Performance per GPU mixes two effects: at loads the 8-GPU "
        "OPT-6.7B system can serve, both deliver near-peak utility and the ratio is about 2x "
        "(half the GPUs); only above its capacity does the ratio grow (up to "
        f"{max(d['ratio']):.1f}x on our grid). On the unpredictable workload, whose mean rate "
        f"is below the 8-GPU capacity, it is {d['unpredictable']['ratio']:.2f}x. The paper's "
        "3.9x corresponds to a workload that spends much of its time above the doubled "
        "system's capacity; we report the whole curve rather than a single number."
    )


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/03_hardware_cost.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
