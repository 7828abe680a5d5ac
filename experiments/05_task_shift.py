"""Experiment 5 — task-distribution shift (the paper's open question 2).

The shipped hard router was trained on a uniform task mix. Evaluated, with the baselines and
the fluid bound of each mix, on: uniform; each single task; 90/10 and 95/5 mixes (90 % or
95 % one task, the rest spread evenly); and an abrupt shift in the middle of a run (uniform,
then 95 % of the task whose best model is slowest to give up) at a load above the OPT-6.7B
pair's capacity.

    .venv/bin/python experiments/05_task_shift.py [--quick | --smoke]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxserve.research import report as R
from jaxserve.research.figures import policy_style, save_figure, static_label
from jaxserve.research.runs import (
    Run,
    run_pipeline,
    sweep,
    with_baselines,
    workload_runs,
)
from jaxserve.rl.envs import reference_capacity
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.workloads import WorkloadSpec

NAME = "05_task_shift"
TITLE = "Task-distribution shift (open question 2)"
SCENARIO = "opt-a100x4"


@dataclasses.dataclass(frozen=True)
class Config:
    rate_factors: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
    num_requests: int = 4000
    seeds: int = 4
    shift_requests: int = 200_000
    shift_rate_factor: float = 1.5
    shift_task: int = 0


SMOKE = Config(rate_factors=(0.5, 2.0), num_requests=300, seeds=1, shift_requests=2000)
QUICK = Config(rate_factors=(0.5, 1.0, 2.0, 3.0), num_requests=2000, seeds=1, shift_requests=60_000)
FULL = Config()


def task_mixes(num_tasks: int, names) -> tuple[list[str], list[tuple[float, ...]]]:
    """(labels, mixes): uniform, each single task, then 90/10 and 95/5 for each task."""
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


def _shift_spec(config: Config, scenario, uniform) -> tuple[WorkloadSpec, float, float]:
    """(spec, rate, time of the shift): uniform, then 95 % of `shift_task`."""
    rate = config.shift_rate_factor * reference_capacity(scenario)
    half_s = config.shift_requests / rate / 2.0
    k, t = scenario.num_tasks, config.shift_task
    shifted = tuple(0.95 if i == t else 0.05 / (k - 1) for i in range(k))
    spec = WorkloadSpec(
        kind="poisson", rate=rate, mix_schedule=((half_s, uniform), (half_s, shifted))
    )
    return spec, rate, half_s


def _halves(run: dict, half_s: float) -> list[float]:
    t = np.asarray(run["window_start_s"]) - run["window_start_s"][0]
    s = np.asarray(run["series"])
    return [float(s[t < half_s].mean()), float(s[t >= half_s].mean())]


def compute(config: Config, run: Run) -> dict:
    """Every mix's sweep (fractions of its bound) and the mid-run shift."""
    scenario = get_scenario(SCENARIO)
    rates = np.asarray(config.rate_factors) * reference_capacity(scenario)
    labels, mixes = task_mixes(scenario.num_tasks, scenario.task_names)
    named = with_baselines(scenario, {"router": run.hard_router})
    res = sweep(scenario, named, rates, mixes, config.num_requests, config.seeds)
    spec, rate, half_s = _shift_spec(config, scenario, mixes[0])
    shift = workload_runs(scenario, named, spec, config.shift_requests, 0, 10.0)
    return {
        **res,
        "mix_labels": labels,
        "mean_fraction_of_bound": np.asarray(res["fraction_of_bound"]).mean(axis=1).tolist(),
        "rate_factors": list(config.rate_factors),
        "shift": {
            "runs": shift["runs"],
            "shift_at_s": half_s,
            "rate": rate,
            "task": config.shift_task,
            "num_requests": shift["num_requests"],
            "halves": {k: _halves(r, half_s) for k, r in shift["runs"].items()},
        },
    }


def plot(data: dict, figures_dir: Path) -> list[str]:
    """Bars of the fraction of the bound per mix; the windowed series across the shift."""
    import matplotlib.pyplot as plt

    scenario = get_scenario(SCENARIO)
    pol, labels = data["policies"], data["mix_labels"]
    mean_frac = np.asarray(data["mean_fraction_of_bound"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [1.25, 1]})
    x = np.arange(len(labels))
    width = 0.8 / len(pol)
    for p, name in enumerate(pol):
        offset = x + (p - len(pol) / 2) * width
        ax1.bar(offset, mean_frac[p], width, label=static_label(scenario, name))
    ax1.set_xticks(x, labels, rotation=70, fontsize=7)
    ax1.set_ylim(0.5, 1.02)
    ax1.set_ylabel("mean over rates of perf / fluid bound")
    ax1.legend(fontsize=7, ncol=3)
    factors = ", ".join(f"{f:g}" for f in data["rate_factors"])
    ax1.set_title(f"per mix, rates {factors} x 6.7B capacity", fontsize=9)
    shift = data["shift"]
    for name, r in shift["runs"].items():
        t = np.asarray(r["window_start_s"])
        label = static_label(scenario, name)
        ax2.plot(t - t[0], r["series"], label=label, **policy_style(name))
    ax2.axvline(shift["shift_at_s"], color="black", lw=0.8)
    task = scenario.task_names[shift["task"]]
    ax2.set_xlabel("time (s); vertical line: uniform -> 95 % " + task)
    ax2.set_ylabel("windowed normalised perf (10 s)")
    ax2.set_title(f"abrupt shift at {shift['rate']:.0f} req/s", fontsize=9)
    ax2.grid(alpha=0.3)
    return [save_figure(fig, figures_dir, "exp_05_task_shift.png")]


def write_up(data: dict, figures: list[str]) -> dict:
    """The per-mix table, the shift's before/after and the claims row."""
    pol, labels = data["policies"], data["mix_labels"]
    mean_frac = np.asarray(data["mean_fraction_of_bound"])  # (P, X)
    greedy, lp = pol.index("greedy"), pol.index("lp")
    statics = [i for i, n in enumerate(pol) if n.startswith("static:")]
    rows = [
        [lab, R.fx(mean_frac[0, x]), R.fx(mean_frac[greedy, x]), R.fx(mean_frac[lp, x])]
        + [R.fx(max(mean_frac[s, x] for s in statics))]
        for x, lab in enumerate(labels)
    ]
    worst = int(np.argmin(mean_frac[0]))
    gap_greedy = mean_frac[0] - mean_frac[greedy]
    shift, hv = data["shift"], data["shift"]["halves"]
    md = [
        f"{len(pol)} policies x {len(data['rates'])} rates x {len(labels)} mixes x "
        f"{data['seeds']} seeds x {data['num_requests']:,} requests, one vmapped call "
        f"({data['wall_s']:.0f} s). Values: mean over the rates of performance / the fluid "
        "bound *for that mix*.",
        "",
        f"![exp 5]({figures[0]})",
        "",
        R.markdown_table(["mix", "router", "greedy", "lp", "best static"], rows),
        "",
        f"* Router on the uniform mix it was trained on: {mean_frac[0, 0]:.3f} of the bound; "
        f"worst mix: {labels[worst]} at {mean_frac[0, worst]:.3f}. Router minus greedy over "
        f"all mixes: min {gap_greedy.min():+.3f}, max {gap_greedy.max():+.3f}.",
        f"* Abrupt shift ({shift['num_requests']:,} requests at {shift['rate']:.0f} req/s): "
        "mean windowed performance before / after the shift: router "
        f"{hv['router'][0]:.3f} / {hv['router'][1]:.3f}, greedy {hv['greedy'][0]:.3f} / "
        f"{hv['greedy'][1]:.3f}, lp {hv['lp'][0]:.3f} / {hv['lp'][1]:.3f}.",
    ]
    robust = mean_frac[0].min() >= 0.95 and gap_greedy.min() >= -0.02
    claims = [
        R.claim(
            "Robust to shifts of the task mix (router trained on uniform)",
            "robust (qualitative)",
            f"perf / bound {mean_frac[0].min():.3f}-{mean_frac[0].max():.3f} over "
            f"{len(labels)} mixes (greedy {mean_frac[greedy].min():.3f}-"
            f"{mean_frac[greedy].max():.3f})",
            "Exp 5: single-task, 90/10, 95/5 mixes and a mid-run shift",
            "reproduced" if robust else "partially",
        ),
    ]
    return {"claims": claims, "markdown": "\n".join(md)}


def discussion(d: dict) -> str:
    """The results.md paragraph on Exp 5."""
    f = d["mean_fraction_of_bound"]
    labels = d["mix_labels"]
    worst = min(range(len(labels)), key=lambda i: f[0][i])
    h = d["shift"]["halves"]
    return (
        "**Task-mix shift (Exp 5, open question 2).** Trained only on the uniform mix, the "
        f"router stays between {min(f[0]):.3f} and {max(f[0]):.3f} of each mix's fluid bound; "
        f"its weakest case is '{labels[worst]}', where greedy (which reads the quality table "
        "directly) does better. After an abrupt shift to 95 % "
        f"{labels[1].split(' ', 1)[1]} its windowed performance drops from "
        f"{h['router'][0]:.3f} to {h['router'][1]:.3f} (greedy {h['greedy'][0]:.3f} to "
        f"{h['greedy'][1]:.3f}). So the paper's 'robust to shifts' holds in the sense that the "
        "router never collapses, but it is not shift-invariant: mixes far from training cost a"
        " few percent, which a mix-aware observation or training on random mixes could remove."
        " lp, whose fractions are solved for the uniform mix, is the policy most hurt."
    )


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/05_task_shift.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
