"""Experiment 3 — hardware cost: the learned router on 4 GPUs vs OPT-6.7B alone on 8 GPUs.

Performance per GPU (docs/spec.md §4: performance x offered rate / replicas, i.e. utility delivered
per second per GPU) of the shipped router on opt-a100x4 (OPT-125M + OPT-1.3B + 2 x OPT-6.7B,
4 GPUs) and of OPT-6.7B alone on opt-a100x8-large (8 replicas), across Poisson rates and on
the synthetic unpredictable workload of Exp 2. The paper reports about 3.9x.

    .venv/bin/python experiments/03_hardware_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from jaxserve.evaluation.comparison import unpredictable_spec  # noqa: E402
from jaxserve.rl.envs import reference_capacity  # noqa: E402
from jaxserve.sim.scenarios import get_scenario  # noqa: E402

NAME = "03_hardware_cost"
TITLE = "Hardware cost: learned router on 4 GPUs vs OPT-6.7B alone on 8 GPUs"


def get_config(quick: bool = False, smoke: bool = False) -> dict:
    if smoke:
        return {"num_rates": 4, "num_requests": 300, "seeds": 1, "unpredictable_requests": 2000}
    if quick:
        return {"num_rates": 14, "num_requests": 2000, "seeds": 2, "unpredictable_requests": 60_000}
    return {"num_rates": 20, "num_requests": 4000, "seeds": 4, "unpredictable_requests": 400_000}


def main(config: dict) -> dict:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    small = get_scenario("opt-a100x4")
    large = get_scenario("opt-a100x8-large")
    gpus_small, gpus_large = sum(small.replicas), sum(large.replicas)
    cap = reference_capacity(small)
    rates = np.geomspace(cap / 10, 30 * cap, config["num_rates"])
    a = C.sweep(
        small,
        {"router": C.HARD_ROUTER, "greedy": "greedy"},
        rates,
        None,
        config["num_requests"],
        config["seeds"],
    )
    b = C.sweep(
        large,
        {"static:opt-6.7b x8": "static:0"},
        rates,
        None,
        config["num_requests"],
        config["seeds"],
    )
    perf_a = np.asarray(a["performance"])[:, :, 0]
    perf_b = np.asarray(b["performance"])[0, :, 0]
    ppg_router = perf_a[0] * rates / gpus_small
    ppg_greedy = perf_a[1] * rates / gpus_small
    ppg_large = perf_b * rates / gpus_large
    ratio = ppg_router / ppg_large
    spec = unpredictable_spec(small)
    ua = C.workload_runs(
        small,
        {"router": C.HARD_ROUTER},
        spec,
        config["unpredictable_requests"],
        0,
        keep_series=False,
    )
    ub = C.workload_runs(
        large, {"static": "static:0"}, spec, config["unpredictable_requests"], 0, keep_series=False
    )
    ra, rb = ua["runs"]["router"], ub["runs"]["static"]
    u_ppg_a = ra["performance"] * ra["offered_rate"] / gpus_small
    u_ppg_b = rb["performance"] * rb["offered_rate"] / gpus_large
    u_ratio = u_ppg_a / u_ppg_b

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    ax1.plot(rates, ppg_router, lw=2.2, marker=".", label="router, 4 GPUs")
    ax1.plot(rates, ppg_greedy, marker=".", label="greedy, 4 GPUs")
    ax1.plot(rates, ppg_large, "--", marker=".", label="OPT-6.7B alone, 8 GPUs")
    ax1.set_ylabel("performance per GPU (utility / s / GPU)")
    ax2.plot(rates, ratio, lw=2.2, marker=".", label="router (4) / OPT-6.7B (8)")
    ax2.axhline(3.9, color="grey", ls=":", label="paper: 3.9x")
    ax2.axhline(1.0, color="black", lw=0.6)
    ax2.set_ylabel("ratio of performance per GPU")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("Poisson arrival rate (req/s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Exp 3 — performance per GPU across loads")
    fig_path = C.save_figure(fig, "exp_03_hardware_cost.png")

    large_cap = float(large.capacity_per_model().sum())
    below = rates <= large_cap
    md = [
        f"Poisson grid: {len(rates)} rates from {rates[0]:.0f} to {rates[-1]:,.0f} req/s, "
        f"{config['seeds']} seeds x {config['num_requests']:,} requests. The 8-GPU system's "
        f"on-time capacity is {large_cap:,.0f} req/s.",
        "",
        f"![exp 3]({fig_path})",
        "",
        f"* Ratio of performance per GPU (router on 4 / OPT-6.7B on 8): {ratio.min():.2f}x to "
        f"{ratio.max():.2f}x over the grid (geometric mean {np.exp(np.log(ratio).mean()):.2f}x);"
        f" below the 8-GPU capacity {ratio[below].min():.2f}x to {ratio[below].max():.2f}x "
        f"(at light load it is ~2x: the same utility from half the GPUs), above it "
        + (
            f"{ratio[~below].min():.2f}x to {ratio[~below].max():.2f}x."
            if (~below).any()
            else "n/a."
        ),
        f"* Unpredictable workload of Exp 2 ({ra['offered_rate']:.0f} req/s mean): router "
        f"{u_ppg_a:.1f} vs {u_ppg_b:.1f} utility/s/GPU, **{u_ratio:.2f}x** (paper: about 3.9x); "
        f"normalised performance {ra['normalized_performance']:.3f} (4 GPUs) vs "
        f"{rb['normalized_performance']:.3f} (8 GPUs).",
    ]
    claims = [
        C.claim(
            "Performance per GPU vs doubling GPUs for the large model",
            "about 3.9x",
            f"unpredictable: {u_ratio:.2f}x; Poisson grid: {ratio.min():.2f}x-"
            f"{ratio.max():.2f}x (geo-mean {np.exp(np.log(ratio).mean()):.2f}x)",
            "Exp 3: opt-a100x4 router vs opt-a100x8-large",
            "reproduced"
            if u_ratio >= 0.8 * 3.9
            else (
                "partially (only at loads above the 8-GPU capacity)"
                if ratio.max() >= 0.8 * 3.9
                else "not reproduced (smaller ratio)"
            ),
        ),
    ]
    data = {
        "rates": rates.tolist(),
        "ppg_router": ppg_router.tolist(),
        "ppg_greedy": ppg_greedy.tolist(),
        "ppg_large": ppg_large.tolist(),
        "ratio": ratio.tolist(),
        "unpredictable": {"router": ra, "large": rb, "ratio": u_ratio},
        "gpus": [gpus_small, gpus_large],
    }
    return C.finish(NAME, TITLE, config, start, claims, "\n".join(md), [fig_path], data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(get_config(parser.parse_args().quick))
