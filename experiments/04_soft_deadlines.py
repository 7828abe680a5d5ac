"""Experiment 4 — soft deadlines: fine-tuned from hard vs trained from scratch vs the hard router.

Scenario: opt-a100x4 with soft deadlines (linear decay, grace = deadline, no expiry drops).
Routers: the shipped hard router (never saw soft utilities); a router fine-tuned from it on
the soft scenario; a router trained from scratch on the soft scenario; in full mode also the
shipped `checkpoints/opt-a100x4-soft`. Evaluated with every static model, greedy and lp over
Poisson rates; training cost = environment steps and wall time on this machine.

    .venv/bin/python experiments/04_soft_deadlines.py [--quick]
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

from jaxserve.rl.envs import reference_capacity  # noqa: E402
from jaxserve.sim.scenarios import get_scenario  # noqa: E402

NAME = "04_soft_deadlines"
TITLE = "Soft deadlines: fine-tuning from the hard router vs training from scratch"
HARD_TRAIN_S = 125.0  # checkpoints/README.md: the shipped hard router, 1.2 M steps here


def get_config(quick: bool = False, smoke: bool = False) -> dict:
    if smoke:
        return {
            "finetune_steps": 4000,
            "scratch_steps": 4000,
            "num_envs": 4,
            "episode_length": 1000,
            "num_rates": 3,
            "num_requests": 300,
            "seeds": 1,
        }
    if quick:
        return {
            "finetune_steps": 120_000,
            "scratch_steps": 240_000,
            "num_envs": 60,
            "episode_length": 2000,
            "num_rates": 8,
            "num_requests": 2000,
            "seeds": 2,
        }
    return {
        "finetune_steps": 360_000,
        "scratch_steps": 1_200_000,
        "num_envs": 60,
        "episode_length": 2000,
        "num_rates": 12,
        "num_requests": 4000,
        "seeds": 4,
    }


def soft_scenario():
    base = get_scenario("opt-a100x4")
    return dataclasses.replace(
        base, deadline_kind="soft", drop_expired=False, name="opt-a100x4-soft"
    )


def main(config: dict) -> dict:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    scenario = soft_scenario()
    size = {"num_envs": config["num_envs"], "episode_length": config["episode_length"]}
    mode = config.get("_mode", "")
    ft_path, ft_cost = C.train_router(
        f"04_finetune_{mode}",
        scenario,
        config["finetune_steps"],
        finetune_from=C.HARD_ROUTER,
        **size,
    )
    sc_path, sc_cost = C.train_router(
        f"04_scratch_{mode}", scenario, config["scratch_steps"], **size
    )
    cap = reference_capacity(scenario)
    rates = np.geomspace(cap / 30, 3 * cap, config["num_rates"])
    routers = {"hard router": C.HARD_ROUTER, "fine-tuned": ft_path, "scratch": sc_path}
    if mode == "full":
        routers["shipped soft"] = C.SOFT_ROUTER
    named = {**routers, **{n: n for n in C.core_baselines(scenario)}}
    res = C.sweep(scenario, named, rates, None, config["num_requests"], config["seeds"])
    perf = np.asarray(res["normalized_performance"])[:, :, 0]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for p, name in enumerate(named):
        ax.plot(
            rates,
            perf[p],
            marker=".",
            label=C.static_label(scenario, name),
            **C.policy_style("router" if name in routers else name),
        )
    ax.set_xscale("log")
    ax.set_xlabel("Poisson arrival rate (req/s)")
    ax.set_ylabel("normalised performance (soft utility)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Exp 4 — soft deadlines (linear decay, grace = deadline)")
    fig_path = C.save_figure(fig, "exp_04_soft_deadlines.png")

    costs = {
        "hard router": {"env_steps": 1_200_000, "wall_s": HARD_TRAIN_S},
        "fine-tuned": {
            "env_steps": ft_cost["env_steps"] + 1_200_000,
            "wall_s": ft_cost["wall_s"] + HARD_TRAIN_S,
            "own_steps": ft_cost["env_steps"],
            "own_wall_s": ft_cost["wall_s"],
        },
        "scratch": {
            "env_steps": sc_cost["env_steps"],
            "wall_s": sc_cost["wall_s"],
            "own_steps": sc_cost["env_steps"],
            "own_wall_s": sc_cost["wall_s"],
        },
    }
    mean = {n: float(perf[p].mean()) for p, n in enumerate(named)}
    rows = []
    for n in named:
        c = costs.get(n, {})
        rows.append(
            [
                C.static_label(scenario, n),
                C.fx(mean[n]),
                C.fx(perf[list(named).index(n), -1]),
                f"{c['own_steps']:,}" if "own_steps" in c else "-",
                C.fx(c.get("own_wall_s"), 0) if "own_wall_s" in c else "-",
            ]
        )
    md = [
        f"![exp 4]({fig_path})",
        "",
        C.markdown_table(
            [
                "policy",
                "mean normalised perf over rates",
                "at top rate",
                "own training steps",
                "own training wall (s)",
            ],
            rows,
        ),
        "",
        f"* Fine-tuning used {ft_cost['env_steps']:,} steps ({ft_cost['wall_s']:.0f} s) on top "
        f"of the hard router's 1.2 M ({HARD_TRAIN_S:.0f} s, checkpoints/README.md); from scratch"
        f" used {sc_cost['env_steps']:,} steps ({sc_cost['wall_s']:.0f} s).",
        f"* Mean normalised soft performance: fine-tuned {mean['fine-tuned']:.3f}, scratch "
        f"{mean['scratch']:.3f}, hard router unchanged {mean['hard router']:.3f}, greedy "
        f"{mean['greedy']:.3f}.",
    ]
    best = max(("fine-tuned", "scratch"), key=lambda n: mean[n])
    claims = [
        C.claim(
            "Soft deadlines: fine-tune the hard router vs train from scratch",
            "fine-tuning adapts the router (qualitative)",
            f"fine-tuned {mean['fine-tuned']:.3f} ({ft_cost['env_steps'] / 1e3:.0f} k "
            f"steps) vs scratch {mean['scratch']:.3f} ({sc_cost['env_steps'] / 1e3:.0f}"
            f" k) vs hard {mean['hard router']:.3f}",
            "Exp 4: soft opt-a100x4, mean over Poisson rates",
            f"measured ({best} better at this budget)",
        )
    ]
    data = {**res, "costs": costs, "mean": mean}
    return C.finish(NAME, TITLE, config, start, claims, "\n".join(md), [fig_path], data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main({**get_config(parser.parse_args().quick)})
