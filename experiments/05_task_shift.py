"""Experiment 5 — task-distribution shift (the paper's open question 2).

The shipped hard router was trained on a uniform task mix. Evaluated, with the baselines and
the fluid bound of each mix, on: uniform; each single task; 90/10 and 95/5 mixes (90 % or
95 % one task, the rest spread evenly); and an abrupt shift in the middle of a run (uniform,
then 95 % of the task whose best model is slowest to give up) at a load above the OPT-6.7B
pair's capacity.

    .venv/bin/python experiments/05_task_shift.py [--quick]
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

NAME = "05_task_shift"
TITLE = "Task-distribution shift (open question 2)"


def get_config(quick: bool = False, smoke: bool = False) -> dict:
    if smoke:
        return {
            "rate_factors": [0.5, 2.0],
            "num_requests": 300,
            "seeds": 1,
            "shift_requests": 2000,
            "shift_rate_factor": 1.5,
            "shift_task": 0,
        }
    if quick:
        return {
            "rate_factors": [0.5, 1.0, 2.0, 3.0],
            "num_requests": 2000,
            "seeds": 1,
            "shift_requests": 60_000,
            "shift_rate_factor": 1.5,
            "shift_task": 0,
        }
    return {
        "rate_factors": [0.25, 0.5, 1.0, 1.5, 2.0, 3.0],
        "num_requests": 4000,
        "seeds": 4,
        "shift_requests": 200_000,
        "shift_rate_factor": 1.5,
        "shift_task": 0,
    }


def _mixes(num_tasks: int, names) -> tuple[list[str], list[tuple[float, ...]]]:
    labels, mixes = ["uniform"], [tuple([1.0 / num_tasks] * num_tasks)]
    for t in range(num_tasks):
        labels.append(f"only {names[t]}")
        mixes.append(tuple(1.0 if i == t else 0.0 for i in range(num_tasks)))
    for major in (0.9, 0.95):
        for t in range(num_tasks):
            rest = (1.0 - major) / (num_tasks - 1)
            labels.append(f"{round(major * 100)}/{round((1 - major) * 100)} {names[t]}")
            mixes.append(tuple(major if i == t else rest for i in range(num_tasks)))
    return labels, mixes


def main(config: dict) -> dict:
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    scenario = get_scenario("opt-a100x4")
    cap = reference_capacity(scenario)
    rates = np.asarray(config["rate_factors"]) * cap
    labels, mixes = _mixes(scenario.num_tasks, scenario.task_names)
    named = {"router": C.HARD_ROUTER, **{n: n for n in C.core_baselines(scenario)}}
    res = C.sweep(scenario, named, rates, mixes, config["num_requests"], config["seeds"])
    frac = np.asarray(res["fraction_of_bound"])  # (P, R, X)
    mean_frac = frac.mean(axis=1)  # (P, X)
    pol = list(named)
    greedy, lp = pol.index("greedy"), pol.index("lp")
    statics = [i for i, n in enumerate(pol) if n.startswith("static:")]

    # Abrupt shift in the middle of a run.
    n = config["shift_requests"]
    rate = config["shift_rate_factor"] * cap
    half_s = n / rate / 2.0
    t = config["shift_task"]
    shifted = tuple(
        0.95 if i == t else 0.05 / (scenario.num_tasks - 1) for i in range(scenario.num_tasks)
    )
    spec = WorkloadSpec(
        kind="poisson", rate=rate, mix_schedule=((half_s, mixes[0]), (half_s, shifted))
    )
    shift = C.workload_runs(scenario, named, spec, n, 0, 10.0)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1.25, 1]})
    x = np.arange(len(labels))
    width = 0.8 / len(pol)
    for p, name in enumerate(pol):
        ax1.bar(
            x + (p - len(pol) / 2) * width,
            mean_frac[p],
            width,
            label=C.static_label(scenario, name),
        )
    ax1.set_xticks(x, labels, rotation=70, fontsize=7)
    ax1.set_ylim(0.5, 1.02)
    ax1.set_ylabel("mean over rates of perf / fluid bound")
    ax1.legend(fontsize=7, ncol=3)
    ax1.set_title(
        f"per mix, rates {', '.join(f'{f:g}' for f in config['rate_factors'])} x 6.7B capacity",
        fontsize=9,
    )
    for name, r in shift["runs"].items():
        tt = np.asarray(r["window_start_s"])
        ax2.plot(
            tt - tt[0], r["series"], label=C.static_label(scenario, name), **C.policy_style(name)
        )
    ax2.axvline(half_s, color="black", lw=0.8)
    ax2.set_xlabel("time (s); vertical line: uniform -> 95 % " + scenario.task_names[t])
    ax2.set_ylabel("windowed normalised perf (10 s)")
    ax2.set_title(f"abrupt shift at {rate:.0f} req/s", fontsize=9)
    ax2.grid(alpha=0.3)
    fig_path = C.save_figure(fig, "exp_05_task_shift.png")

    rows = []
    for x_i, lab in enumerate(labels):
        best_static = max(mean_frac[s, x_i] for s in statics)
        rows.append(
            [
                lab,
                C.fx(mean_frac[0, x_i]),
                C.fx(mean_frac[greedy, x_i]),
                C.fx(mean_frac[lp, x_i]),
                C.fx(best_static),
            ]
        )
    worst = int(np.argmin(mean_frac[0]))
    gap_greedy = mean_frac[0] - mean_frac[greedy]

    def halves(name):
        r = shift["runs"][name]
        tt = np.asarray(r["window_start_s"]) - r["window_start_s"][0]
        s = np.asarray(r["series"])
        return s[tt < half_s].mean(), s[tt >= half_s].mean()

    hv = {name: halves(name) for name in pol}
    md = [
        f"{len(pol)} policies x {len(rates)} rates x {len(mixes)} mixes x {config['seeds']} "
        f"seeds x {config['num_requests']:,} requests, one vmapped call ({res['wall_s']:.0f} s)."
        " Values: mean over the rates of performance / the fluid bound *for that mix*.",
        "",
        f"![exp 5]({fig_path})",
        "",
        C.markdown_table(["mix", "router", "greedy", "lp", "best static"], rows),
        "",
        f"* Router on the uniform mix it was trained on: {mean_frac[0, 0]:.3f} of the bound; "
        f"worst mix: {labels[worst]} at {mean_frac[0, worst]:.3f}. Router minus greedy over "
        f"all mixes: min {gap_greedy.min():+.3f}, max {gap_greedy.max():+.3f}.",
        f"* Abrupt shift ({n:,} requests at {rate:.0f} req/s): mean windowed performance before"
        f" / after the shift: router {hv['router'][0]:.3f} / {hv['router'][1]:.3f}, greedy "
        f"{hv['greedy'][0]:.3f} / {hv['greedy'][1]:.3f}, lp {hv['lp'][0]:.3f} / "
        f"{hv['lp'][1]:.3f}.",
    ]
    robust = mean_frac[0].min() >= 0.95 and gap_greedy.min() >= -0.02
    claims = [
        C.claim(
            "Robust to shifts of the task mix (router trained on uniform)",
            "robust (qualitative)",
            f"perf / bound {mean_frac[0].min():.3f}-{mean_frac[0].max():.3f} over "
            f"{len(mixes)} mixes (greedy {mean_frac[greedy].min():.3f}-"
            f"{mean_frac[greedy].max():.3f})",
            "Exp 5: single-task, 90/10, 95/5 mixes and a mid-run shift",
            "reproduced" if robust else "partially",
        ),
    ]
    data = {
        **res,
        "mix_labels": labels,
        "mean_fraction_of_bound": mean_frac.tolist(),
        "shift": {
            "runs": shift["runs"],
            "shift_at_s": half_s,
            "rate": rate,
            "halves": {k: list(v) for k, v in hv.items()},
        },
    }
    return C.finish(NAME, TITLE, config, start, claims, "\n".join(md), [fig_path], data)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    main(get_config(parser.parse_args().quick))
