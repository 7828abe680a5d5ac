"""Experiment 7 — dynamic deadlines (the paper's open question 3).

Deadlines that change over a run: a daily-cycle-like schedule alternating off-peak periods
(rate 0.5x the OPT-6.7B pair's capacity, deadlines x1.5 = 90 ms) and peak periods (2x the
capacity, deadlines x0.5 = 30 ms: stricter at peak hours), 60 s each. A router trained with
per-request deadline factors drawn from {0.5, 1, 1.5} (blocks of 500 arrivals) that sees the
factor in its observation, vs the shipped hard router (fixed 60 ms during training; its
queue-wait feature is still divided by the current deadline), every static model, greedy
(deadline-aware: it checks the request's actual deadline) and lp, at three load levels.

    .venv/bin/python experiments/07_dynamic_deadlines.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from jaxserve.rl.envs import reference_capacity  # noqa: E402
from jaxserve.sim.scenarios import get_scenario  # noqa: E402
from jaxserve.sim.workloads import WorkloadSpec  # noqa: E402

NAME = "07_dynamic_deadlines"
TITLE = "Dynamic deadlines (open question 3): stricter deadlines at peak hours"
FACTORS = (0.5, 1.0, 1.5)


def get_config(quick: bool = False, smoke: bool = False) -> dict:
    if smoke:
        return {
            "steps": 4000,
            "num_envs": 4,
            "episode_length": 1000,
            "loads": [1.0],
            "num_requests": 3000,
        }
    if quick:
        return {
            "steps": 240_000,
            "num_envs": 60,
            "episode_length": 2000,
            "loads": [0.5, 1.0, 2.0],
            "num_requests": 40_000,
        }
    return {
        "steps": 1_200_000,
        "num_envs": 60,
        "episode_length": 2000,
        "loads": [0.5, 1.0, 2.0],
        "num_requests": 200_000,
    }


def schedule_spec(cap: float, load: float) -> WorkloadSpec:
    return WorkloadSpec(
        kind="piecewise",
        schedule=((60.0, 0.5 * cap), (60.0, 2.0 * cap)),
        rate_scale=load,
        deadline_schedule=((60.0, 1.5), (60.0, 0.5)),
    )


def main(config: dict) -> dict:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    scenario = get_scenario("opt-a100x4")
    cap = reference_capacity(scenario)
    path, cost = C.train_router(
        f"07_dynamic_{config.get('_mode', '')}",
        scenario,
        config["steps"],
        num_envs=config["num_envs"],
        episode_length=config["episode_length"],
        deadline_factors=FACTORS,
    )
    named = {
        "deadline-aware router": path,
        "hard router": C.HARD_ROUTER,
        **{n: n for n in C.core_baselines(scenario)},
    }
    out = {}
    for load in config["loads"]:
        r = C.workload_runs(
            scenario,
            named,
            schedule_spec(cap, load),
            config["num_requests"],
            0,
            10.0,
            keep_series=load == 1.0,
        )
        out[load] = r["runs"]
    main_load = 1.0 if 1.0 in out else config["loads"][0]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [1.6, 1]})
    for name, r in out[main_load].items():
        t = np.asarray(r["window_start_s"])
        ax1.plot(
            t - t[0],
            r["series"],
            label=C.static_label(scenario, name),
            **C.policy_style("router" if "router" in name else name),
        )
    for k in range(0, 20):
        ax1.axvspan(120 * k + 60, 120 * k + 120, color="orange", alpha=0.08)
    ax1.set_xlim(0, 600)
    ax1.set_xlabel("time (s); shaded: peak (2x capacity, 30 ms deadlines)")
    ax1.set_ylabel("windowed normalised perf (10 s)")
    ax1.legend(fontsize=7, ncol=2)
    loads = config["loads"]
    for name in named:
        ax2.plot(
            loads,
            [out[x][name]["normalized_performance"] for x in loads],
            marker="o",
            label=C.static_label(scenario, name),
            **C.policy_style("router" if "router" in name else name),
        )
    ax2.set_xscale("log")
    ax2.set_xlabel("load (rate_scale of the schedule)")
    ax2.set_ylabel("normalised performance")
    ax2.grid(alpha=0.3)
    fig_path = C.save_figure(fig, "exp_07_dynamic_deadlines.png")
    rows = [
        [C.static_label(scenario, n)] + [C.fx(out[x][n]["normalized_performance"]) for x in loads]
        for n in named
    ]
    d = [
        out[x]["deadline-aware router"]["normalized_performance"]
        - out[x]["greedy"]["normalized_performance"]
        for x in loads
    ]
    h = [
        out[x]["deadline-aware router"]["normalized_performance"]
        - out[x]["hard router"]["normalized_performance"]
        for x in loads
    ]
    md = [
        f"Deadline-aware router: {cost['env_steps']:,} training steps ({cost['wall_s']:.0f} s), "
        f"factors {FACTORS}. Each run: {config['num_requests']:,} requests.",
        "",
        f"![exp 7]({fig_path})",
        "",
        C.markdown_table(["policy"] + [f"load {x:g}" for x in loads], rows),
        "",
        f"* Deadline-aware router minus greedy: {', '.join(f'{v:+.3f}' for v in d)}; minus the "
        f"fixed-deadline hard router: {', '.join(f'{v:+.3f}' for v in h)} (loads "
        f"{', '.join(f'{x:g}' for x in loads)}).",
    ]
    claims = [
        C.claim(
            "Dynamic deadlines: router with the deadline in its observation",
            "(open question 3)",
            f"minus greedy {min(d):+.3f}..{max(d):+.3f}; minus hard router "
            f"{min(h):+.3f}..{max(h):+.3f}",
            "Exp 7: peak/off-peak schedule, 3 loads",
            "new measurement",
        )
    ]
    data = {"loads": loads, "runs": {str(k): v for k, v in out.items()}, "cost": cost}
    return C.finish(NAME, TITLE, config, start, claims, "\n".join(md), [fig_path], data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(get_config(parser.parse_args().quick))
