"""Experiment 13 — `jaxserve plan`: the placement and the router, chosen together.

On opt-a100x4's zoo (OPT-125M, OPT-1.3B, OPT-6.7B on A100s) with 4 and 8 GPUs, the planner
enumerates every placement, screens them by the fluid bound, simulates the survivors under
greedy and the RouterWise-style `lp` policy, and trains a learned router for the best
`train_top`. Its choice (the best placement with its best policy) is compared, rate by rate
on the same arrivals (common random numbers; paired 95 % intervals over seeds), with the
paper's placement (1/1/2 on 4 GPUs, scaled to 2/2/4 on 8) and with OPT-6.7B alone on every
GPU (`scenarios.equal_hardware`), each under its own best policy; the plan's wall time is
recorded.

    .venv/bin/python experiments/13_planner.py [--quick | --smoke]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxserve.evaluation.plan import PLAN_DQN, PlanConfig, plan
from jaxserve.evaluation.plan_report import plan_json
from jaxserve.evaluation.stats import format_interval, mean_ci
from jaxserve.research import report as R
from jaxserve.research.figures import save_figure
from jaxserve.research.runs import Run, run_pipeline

NAME = "13_planner"
TITLE = "The planner: placement and router chosen together"
SCENARIO = "opt-a100x4"
PAPER = {4: "1/1/2", 8: "2/2/4"}  # the paper's placement, scaled with the GPUs
ALL_BIG = {4: "0/0/4", 8: "0/0/8"}  # OPT-6.7B on every GPU (equal hardware)


@dataclasses.dataclass(frozen=True)
class Config:
    gpus: tuple[int, ...] = (4, 8)
    num_requests: int = 4000
    seeds: int = 8
    max_simulated: int = 8
    train_top: int | None = None  # None: every simulated placement, one population
    steps: int = 600_000


SMOKE = Config(gpus=(4,), num_requests=300, seeds=2, max_simulated=3, train_top=1, steps=4000)
QUICK = Config(num_requests=2000, steps=200_000)
FULL = Config()


def plan_config(config: Config, gpus: int) -> PlanConfig:
    """The plan for `gpus` GPUs, the paper's and the all-OPT-6.7B placements always simulated."""
    return PlanConfig(
        scenario=SCENARIO,
        gpus=gpus,
        include=(PAPER[gpus], ALL_BIG[gpus]),
        num_requests=config.num_requests,
        seeds=config.seeds,
        max_simulated=config.max_simulated,
        train_top=config.train_top,
        dqn=dataclasses.replace(PLAN_DQN, total_env_steps=config.steps),
    )


def _best_runs(result, key: str):
    """(policy, (R, S) performance) of a placement's best simulated policy."""
    entry = next(p for p in result.placements if p.placement.key == key)
    best = entry.best_policy()
    return best, entry.runs[best].performance


def compare(result, gpus: int) -> dict:
    """The chosen placement minus each reference, per rate: paired mean and 95 % interval."""
    chosen = result.chosen.placement.key
    policy, mine = _best_runs(result, chosen)
    out = {"chosen": chosen, "policy": policy, "versus": {}}
    for label, key in (("paper", PAPER[gpus]), ("all OPT-6.7B", ALL_BIG[gpus])):
        ref_policy, theirs = _best_runs(result, key)
        diff_mean, diff_ci = mean_ci(mine - theirs)  # (R,), (R, 2): paired by seed
        out["versus"][label] = {
            "placement": key,
            "policy": ref_policy,
            "difference": diff_mean.tolist(),
            "difference_ci": diff_ci.tolist(),
            "at_least_as_good_everywhere": bool(np.all(diff_ci[:, 1] >= 0)),
        }
    return out


def compute(config: Config, run: Run) -> dict:
    """One plan per GPU count (routers under the run's routers folder), with comparisons."""
    out = {}
    for gpus in config.gpus:
        router_dir = Path(run.routers_dir) / f"13_plan_{gpus}gpus_{run.mode}"
        result = plan(plan_config(config, gpus), router_dir)
        out[str(gpus)] = {"plan": plan_json(result), "comparison": compare(result, gpus)}
    return out


def plot(data: dict, figures_dir: Path) -> list[str]:
    """Per GPU count: the chosen, paper and all-OPT-6.7B placements' performance vs rate."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(6.5 * len(data), 4.2), squeeze=False)
    for ax, (gpus, level) in zip(axes[0], data.items(), strict=True):
        rates = np.asarray(level["plan"]["rates"])
        cmp = level["comparison"]
        keys = [cmp["chosen"]] + [v["placement"] for v in cmp["versus"].values()]
        for key in dict.fromkeys(keys):
            entry = next(p for p in level["plan"]["placements"] if p["placement"] == key)
            s = entry["policies"][entry["best_policy"]]
            ci = np.asarray(s["performance_per_rate_ci"])
            (line,) = ax.plot(
                rates, s["performance_per_rate"], marker="o",
                label=f"{entry['label']} ({entry['best_policy']})",
            )  # fmt: skip
            ax.fill_between(rates, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.2)
            ax.plot(rates, entry["bound_per_rate"], ls=":", lw=1, color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("Poisson rate (req/s)")
        ax.set_ylabel("normalised performance (zoo peak)")
        ax.set_title(f"{gpus} GPUs (dotted: fluid bound)", fontsize=9)
        ax.legend(fontsize=7)
    return [save_figure(fig, figures_dir, "exp_13_planner.png")]


def _rows(data: dict) -> list[list[str]]:
    rows = []
    for gpus, level in data.items():
        cmp, rates = level["comparison"], level["plan"]["rates"]
        for label, v in cmp["versus"].items():
            for r, mean, ci in zip(rates, v["difference"], v["difference_ci"], strict=True):
                rows.append([
                    gpus, f"{cmp['chosen']} ({cmp['policy']})", f"{label} {v['placement']} "
                    f"({v['policy']})", f"{r:.0f}", f"{mean:+.4f} {format_interval(ci, 4)}",
                ])  # fmt: skip
    return rows


def _summary_rows(data: dict) -> list[list[str]]:
    rows = []
    for gpus, level in data.items():
        p = level["plan"]
        ok = all(v["at_least_as_good_everywhere"] for v in level["comparison"]["versus"].values())
        rows.append([
            gpus, p["chosen"]["label"], p["chosen"]["policy"], str(p["num_enumerated"]),
            str(p["num_simulated"]), f"{p['wall_s']:.0f} s", "yes" if ok else "no",
        ])  # fmt: skip
    return rows


def _not_worse(data: dict) -> str:
    """'4 GPUs: paper 6/6 (largest deficit 0.0000), ...; ... rates not significantly worse'."""
    parts = []
    for gpus, level in data.items():
        counts = [
            f"{label} {sum(ci[1] >= 0 for ci in v['difference_ci'])}/{len(v['difference_ci'])}"
            f" (largest deficit {max(0.0, -min(v['difference'])):.4f})"
            for label, v in level["comparison"]["versus"].items()
        ]
        parts.append(f"{gpus} GPUs: {', '.join(counts)}")
    return "; ".join(parts) + " rates not significantly worse"


def write_up(data: dict, figures: list[str]) -> dict:
    """The plan per GPU count, the paired differences per rate, and the claims row."""
    ok = all(
        v["at_least_as_good_everywhere"]
        for level in data.values()
        for v in level["comparison"]["versus"].values()
    )
    md = [
        "Planner's choice (best placement, best of greedy / lp / learned) against the paper's "
        "placement and OPT-6.7B on every GPU, each under its own best policy; Poisson at the "
        "plan's rates, common random numbers, paired differences with 95 % intervals over "
        "seeds. Wall time: the whole plan (enumeration, screening, simulation, training) on "
        "CPU.",
        "",
        f"![exp 13]({figures[0]})",
        "",
        R.markdown_table(
            [
                "GPUs",
                "chosen",
                "router",
                "placements",
                "simulated",
                "plan time",
                "≥ both references at every rate",
            ],
            _summary_rows(data),
        ),  # fmt: skip
        "",
        R.markdown_table(
            ["GPUs", "chosen", "reference", "rate", "chosen − reference"], _rows(data)
        ),
    ]
    claims = [
        R.claim(
            "Planner's choice at least as good as the paper's placement and all-OPT-6.7B",
            "n/a (issue 13)",
            "yes at every rate" if ok else f"no: {_not_worse(data)}",
            "Exp 13: 4 and 8 GPUs, paired 95 % intervals",
            "n/a",
        )
    ]
    return {"claims": claims, "markdown": "\n".join(md)}


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/13_planner.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
