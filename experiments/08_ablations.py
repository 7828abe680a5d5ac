"""Experiment 8 — ablations of the learned router, all at the same training budget.

Variants of the default recipe (full observation, decision credit, Double DQN, 256x256):
paper-minimal observation (task, per-model batch size, rate estimate); completion credit
(the environment's reward per decision); vanilla DQN (target net selects and evaluates);
hidden width 64x64 (and 1024x1024 in full mode). Each is trained on opt-a100x4 (hard) with
seed 0 and evaluated over Poisson rates against the fluid bound, plus the Exp 2 synthetic
unpredictable workload.

    .venv/bin/python experiments/08_ablations.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from jaxserve.evaluation.comparison import unpredictable_spec  # noqa: E402
from jaxserve.rl.envs import reference_capacity  # noqa: E402
from jaxserve.sim.scenarios import get_scenario  # noqa: E402

NAME = "08_ablations"
TITLE = "Ablations: observation, credit assignment, Double vs vanilla DQN, network width"


def get_config(quick: bool = False, smoke: bool = False) -> dict:
    if smoke:
        return {
            "steps": 4000,
            "num_envs": 4,
            "episode_length": 1000,
            "widths": [[64, 64]],
            "num_rates": 3,
            "num_requests": 300,
            "seeds": 1,
            "unpredictable_requests": 2000,
        }
    if quick:
        return {
            "steps": 240_000,
            "num_envs": 60,
            "episode_length": 2000,
            "widths": [[64, 64]],
            "num_rates": 8,
            "num_requests": 2000,
            "seeds": 2,
            "unpredictable_requests": 20_000,
        }
    return {
        "steps": 1_200_000,
        "num_envs": 60,
        "episode_length": 2000,
        "widths": [[64, 64], [1024, 1024]],
        "num_rates": 12,
        "num_requests": 4000,
        "seeds": 4,
        "unpredictable_requests": 200_000,
    }


def variants(config: dict) -> dict:
    """{label: (scenario change, DQNConfig changes)}."""
    out = {
        "default (full obs, decision credit, double, 256x256)": ({}, {}),
        "paper-minimal observation": ({"obs_mode": "paper"}, {}),
        "completion credit": ({}, {"credit": "completion"}),
        "vanilla DQN": ({}, {"double": False}),
    }
    for w in config["widths"]:
        out[f"hidden {'x'.join(str(x) for x in w)}"] = ({}, {"hidden": tuple(w)})
    return out


def main(config: dict) -> dict:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    base = get_scenario("opt-a100x4")
    cap = reference_capacity(base)
    rates = np.geomspace(cap / 30, 3 * cap, config["num_rates"])
    spec = unpredictable_spec(base)
    size = {"num_envs": config["num_envs"], "episode_length": config["episode_length"]}
    rows, results = [], {}
    for i, (label, (sc_change, dqn_change)) in enumerate(variants(config).items()):
        scenario = dataclasses.replace(base, **sc_change) if sc_change else base
        path, cost = C.train_router(
            f"08_v{i}_{config.get('_mode', '')}", scenario, config["steps"], **size, **dqn_change
        )
        named = {"router": path, "greedy": "greedy"} if i == 0 else {"router": path}
        res = C.sweep(scenario, named, rates, None, config["num_requests"], config["seeds"])
        un = C.workload_runs(
            scenario, {"router": path}, spec, config["unpredictable_requests"], 0, keep_series=False
        )["runs"]["router"]
        frac = np.asarray(res["fraction_of_bound"])[0, :, 0]
        results[label] = {
            "fraction_of_bound": frac.tolist(),
            "unpredictable": un,
            "cost": cost,
            "normalized_performance": np.asarray(res["normalized_performance"])[0, :, 0].tolist(),
        }
        if i == 0:
            results["greedy (reference)"] = {
                "fraction_of_bound": np.asarray(res["fraction_of_bound"])[1, :, 0].tolist()
            }
        rows.append(
            [
                label,
                C.fx(float(frac.mean())),
                C.fx(float(frac.min())),
                C.fx(un["normalized_performance"]),
                C.fx(un["time_above_96"]),
                f"{cost['wall_s']:.0f}",
            ]
        )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, r in results.items():
        ax.plot(
            rates,
            r["fraction_of_bound"],
            marker=".",
            label=label,
            lw=2.2 if label.startswith("default") else 1.0,
            ls="--" if label.startswith("greedy") else "-",
        )
    ax.set_xscale("log")
    ax.set_xlabel("Poisson arrival rate (req/s)")
    ax.set_ylabel("performance / fluid bound")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"Exp 8 — ablations, {config['steps'] / 1e6:.2f} M training steps each")
    fig_path = C.save_figure(fig, "exp_08_ablations.png")
    g = results["greedy (reference)"]["fraction_of_bound"]
    md = [
        f"Every variant trained for {config['steps']:,} environment steps (seed 0; one seed, so "
        "differences of ~0.01 are within run-to-run noise and not conclusive).",
        "",
        f"![exp 8]({fig_path})",
        "",
        C.markdown_table(
            [
                "variant",
                "mean perf / bound",
                "worst perf / bound",
                "unpredictable perf",
                "unpredictable > 96 %",
                "train wall (s)",
            ],
            rows,
        ),
        "",
        f"* Greedy for reference: mean perf / bound {np.mean(g):.3f}, worst {np.min(g):.3f}.",
    ]
    default = next(iter(results))
    claims = [
        C.claim(
            "Ablations (paper: minimal state, Double DQN)",
            "(not ablated in the paper)",
            "; ".join(
                f"{k.split(' (')[0]} {np.mean(v['fraction_of_bound']):.3f}"
                for k, v in results.items()
                if "greedy" not in k
            ),
            "Exp 8: mean perf / fluid bound, same budget",
            "new measurement" if default else "",
        )
    ]
    data = {"rates": rates.tolist(), "variants": results}
    return C.finish(NAME, TITLE, config, start, claims, "\n".join(md), [fig_path], data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(get_config(parser.parse_args().quick))
