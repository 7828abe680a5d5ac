"""Experiment 6 — more models (the paper's open question 1): zoos of 3, 5 and 8 OPT sizes.

Roofline scenarios on H200 (141 GB: OPT-66B fits on one GPU; tensor parallelism is not
modelled), one replica per model, hard 60 ms deadlines, max batch 16:
3 models (125M, 1.3B, 6.7B), 5 (+350M, 2.7B), 8 (+13B, 30B, 66B). Quality: measured for
125M/1.3B/6.7B, interpolated in log(params) elsewhere and extrapolated above 6.7B (an
assumption, not a measurement). A router is trained per zoo at the same budget; each is
compared with its zoo's static models, greedy, lp and fluid bound, in absolute performance
(mean utility per request: comparable across zoos) and as a fraction of the bound.

    .venv/bin/python experiments/06_model_zoo.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from jaxserve.sim.scenarios import zoo_scenario  # noqa: E402

NAME = "06_model_zoo"
TITLE = "More models (open question 1): zoos of 3, 5 and 8 OPT sizes"
ZOOS = {
    3: ("opt-125m", "opt-1.3b", "opt-6.7b"),
    5: ("opt-125m", "opt-350m", "opt-1.3b", "opt-2.7b", "opt-6.7b"),
    8: (
        "opt-125m",
        "opt-350m",
        "opt-1.3b",
        "opt-2.7b",
        "opt-6.7b",
        "opt-13b",
        "opt-30b",
        "opt-66b",
    ),
}


def get_config(quick: bool = False, smoke: bool = False) -> dict:
    if smoke:
        return {
            "steps": 4000,
            "num_envs": 4,
            "episode_length": 1000,
            "zoos": [3, 5],
            "num_rates": 3,
            "num_requests": 300,
            "seeds": 1,
        }
    if quick:
        return {
            "steps": 240_000,
            "num_envs": 60,
            "episode_length": 2000,
            "zoos": [3, 5, 8],
            "num_rates": 8,
            "num_requests": 2000,
            "seeds": 2,
        }
    return {
        "steps": 1_200_000,
        "num_envs": 60,
        "episode_length": 2000,
        "zoos": [3, 5, 8],
        "num_rates": 12,
        "num_requests": 4000,
        "seeds": 4,
    }


def make_zoo(k: int):
    return zoo_scenario(ZOOS[k], hardware="h200", deadline_s=0.060, name=f"opt-zoo-{k}-h200")


def main(config: dict) -> dict:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    rates = np.geomspace(20, 6000, config["num_rates"])
    out, rows = {}, []
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    for k in config["zoos"]:
        scenario = make_zoo(k)
        path, cost = C.train_router(
            f"06_zoo{k}_{config.get('_mode', '')}",
            scenario,
            config["steps"],
            num_envs=config["num_envs"],
            episode_length=config["episode_length"],
        )
        named = {"router": path, **{n: n for n in C.core_baselines(scenario)}}
        res = C.sweep(scenario, named, rates, None, config["num_requests"], config["seeds"])
        perf = np.asarray(res["performance"])[:, :, 0]
        frac = np.asarray(res["fraction_of_bound"])[:, :, 0]
        peak = scenario.peak_quality()
        bound = np.asarray(res["fluid_bound"])[:, 0] * peak
        pol = list(named)
        statics = [i for i, n in enumerate(pol) if n.startswith("static:")]
        out[k] = {
            "policies": pol,
            "performance": perf.tolist(),
            "fraction": frac.tolist(),
            "bound": bound.tolist(),
            "cost": cost,
            "capacity": scenario.capacity_per_model().tolist(),
            "peak": peak,
            "obs_size": scenario.sim_config().obs_size,
        }
        line = ax1.plot(rates, perf[0], marker=".", lw=2, label=f"router, {k} models")
        ax1.plot(rates, bound, ":", color=line[0].get_color(), label=f"fluid bound, {k}")
        ax2.plot(rates, frac[0], marker=".", lw=2, color=line[0].get_color(), label=f"router, {k}")
        ax2.plot(
            rates, frac[pol.index("greedy")], "--", color=line[0].get_color(), label=f"greedy, {k}"
        )
        rows.append(
            [
                f"{k} ({', '.join(m[4:] for m in ZOOS[k])})",
                str(out[k]["obs_size"]),
                C.fx(float(frac[0].mean())),
                C.fx(float(frac[pol.index("greedy")].mean())),
                C.fx(float(frac[pol.index("lp")].mean())),
                C.fx(float(frac[statics].mean(axis=1).max())),
                C.fx(float(perf[0].mean())),
                f"{cost['wall_s']:.0f}",
            ]
        )
    for ax, lab in (
        (ax1, "performance (mean utility per request)"),
        (ax2, "performance / fluid bound"),
    ):
        ax.set_xscale("log")
        ax.set_xlabel("Poisson arrival rate (req/s)")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Exp 6 — model zoos on H200, routers trained {config['steps'] / 1e6:.2f} M steps each"
    )
    fig_path = C.save_figure(fig, "exp_06_model_zoo.png")
    md = [
        f"Rates {rates[0]:.0f} to {rates[-1]:,.0f} req/s ({len(rates)} points), "
        f"{config['seeds']} seeds x {config['num_requests']:,} requests.",
        "",
        f"![exp 6]({fig_path})",
        "",
        C.markdown_table(
            [
                "zoo",
                "obs size",
                "router perf / bound",
                "greedy",
                "lp",
                "best static",
                "router mean utility",
                "train wall (s)",
            ],
            rows,
        ),
    ]
    ks = list(out)
    meas = "; ".join(
        f"{k} models: {np.mean(out[k]['fraction'][0]):.3f} of bound, "
        f"{out[k]['cost']['wall_s']:.0f} s"
        for k in ks
    )
    claims = [
        C.claim(
            "Learned routing with more models (open question 1)",
            "(open question)",
            meas,
            "Exp 6: zoos of 3/5/8 OPT sizes on H200, same training budget",
            "new measurement",
        )
    ]
    data = {"rates": rates.tolist(), "zoos": {str(k): v for k, v in out.items()}}
    return C.finish(NAME, TITLE, config, start, claims, "\n".join(md), [fig_path], data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(get_config(parser.parse_args().quick))
