"""Experiment 11 — the learned router against greedy, honestly: where it wins, where it loses.

Greedy (best quality among the models predicted to meet the deadline) is the strongest
hand-written baseline. The shipped hard router, a router trained the same way but over a
random task mix per training episode (`train_mix="dirichlet"`, a population of training
seeds) and greedy run on the same arrivals (`seeds` episodes per setting) in settings
chosen to find both sides: stationary Poisson at 0.5-4x the OPT-6.7B pair's capacity,
bursty gamma (cv = 4), one task at 70 % of the mix, and the unpredictable workload.
Every difference is paired by episode (same arrivals), mean and 95 % interval.

    .venv/bin/python experiments/11_router_vs_greedy.py [--quick | --smoke]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxserve.evaluation.comparison import unpredictable_spec
from jaxserve.evaluation.simulate import simulate_seeds
from jaxserve.evaluation.stats import mean_ci
from jaxserve.research import report as R
from jaxserve.research.figures import save_figure
from jaxserve.research.runs import Run, run_pipeline, train_router
from jaxserve.rl.config import DQNConfig
from jaxserve.rl.envs import reference_capacity
from jaxserve.rl.policy import load_learned_policy
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.workloads import WorkloadSpec

NAME = "11_router_vs_greedy"
TITLE = "The learned router against greedy: where it wins and where it loses"
SCENARIO = "opt-a100x4"
SHIPPED, MIXED = "shipped router", "mix-trained router"


@dataclasses.dataclass(frozen=True)
class Config:
    steps: int = 1_200_000
    num_envs: int = 60
    episode_length: int = 2000
    train_seeds: int = 3
    seeds: int = 8
    num_requests: int = 20_000
    poisson_loads: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # x the OPT-6.7B pair's capacity
    gamma_rates: tuple[float, ...] = (500.0, 1000.0)
    skew_rate: float = 300.0


SMOKE = Config(
    steps=4000,
    num_envs=4,
    episode_length=1000,
    train_seeds=2,
    seeds=2,
    num_requests=1000,
    poisson_loads=(1.0,),
    gamma_rates=(1000.0,),
)
QUICK = Config(steps=300_000, seeds=8, num_requests=5000)
FULL = Config()


def settings(config: Config, scenario) -> dict[str, WorkloadSpec]:
    """Every workload of the comparison, by label."""
    cap = reference_capacity(scenario)
    out = {
        f"Poisson {x:g}x capacity": WorkloadSpec(kind="poisson", rate=x * cap)
        for x in config.poisson_loads
    }
    for rate in config.gamma_rates:
        out[f"gamma cv=4 at {rate:g} req/s"] = WorkloadSpec(kind="gamma", rate=rate, cv=4.0)
    for t, task in enumerate(scenario.task_names):
        mix = tuple(0.7 if i == t else 0.1 for i in range(scenario.num_tasks))
        out[f"{task} 70 % at {config.skew_rate:g} req/s"] = WorkloadSpec(
            kind="poisson", rate=config.skew_rate, task_mix=mix
        )
    out["unpredictable"] = unpredictable_spec(scenario)
    return out


def compute(config: Config, run: Run) -> dict:
    """Train the mix router (cached); every policy x setting x episode."""
    scenario = get_scenario(SCENARIO)
    dqn = DQNConfig(
        total_env_steps=config.steps,
        num_envs=config.num_envs,
        episode_length=config.episode_length,
        train_mix="dirichlet",
    )
    path, cost = train_router(run, f"11_mix_{run.mode}", scenario, dqn, seeds=config.train_seeds)
    policies = {SHIPPED: load_learned_policy(run.hard_router, scenario), "greedy": "greedy"}
    for m in range(config.train_seeds):
        policies[f"{MIXED} #{m}"] = load_learned_policy(path, scenario, member=m)
    seeds = list(range(config.seeds))
    perf = {}
    for label, spec in settings(config, scenario).items():
        perf[label] = {
            name: [
                r["normalized_performance"]
                for r in simulate_seeds(scenario, policy, spec, config.num_requests, seeds)
            ]
            for name, policy in policies.items()
        }
    return {"performance": perf, "cost": cost, "router_path": str(path), "seeds": config.seeds}


def differences(data: dict) -> dict:
    """Per setting: router - greedy and mix router - greedy / - shipped, paired by episode."""
    out = {}
    for label, by in data["performance"].items():
        greedy, shipped = np.asarray(by["greedy"]), np.asarray(by[SHIPPED])
        mixed = np.mean([by[n] for n in by if n.startswith(MIXED)], axis=0)  # members' mean
        row = {}
        for name, a, b in (
            ("shipped - greedy", shipped, greedy),
            ("mix - greedy", mixed, greedy),
            ("mix - shipped", mixed, shipped),
        ):
            mean, ci = mean_ci(a - b)
            row[name] = {"mean": float(mean), "ci": ci.tolist()}
        row["means"] = {"greedy": greedy.mean(), SHIPPED: shipped.mean(), MIXED: mixed.mean()}
        out[label] = row
    return out


MATERIAL = 0.001  # differences below this (normalised performance) are ties, significant or not


def _sign(d: dict) -> str:
    """'wins' / 'loses' when the interval excludes 0 and the mean is at least MATERIAL."""
    lo, hi = d["ci"]
    if abs(d["mean"]) < MATERIAL:
        return "ties"
    return "wins" if lo > 0 else "loses" if hi < 0 else "ties"


def plot(data: dict, figures_dir: Path) -> list[str]:
    """Paired differences to greedy per setting, with intervals."""
    import matplotlib.pyplot as plt

    diff = differences(data)
    labels = list(diff)
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.5))
    for offset, key, color in ((-0.15, "shipped - greedy", "C0"), (0.15, "mix - greedy", "C2")):
        mean = [diff[s][key]["mean"] for s in labels]
        err = np.abs(np.asarray([diff[s][key]["ci"] for s in labels]).T - mean)
        ax.errorbar(mean, y + offset, xerr=err, fmt="o", color=color, capsize=3, label=key)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("normalised performance minus greedy (mean, 95 % interval, paired)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return [save_figure(fig, figures_dir, "exp_11_router_vs_greedy.png")]


def write_up(data: dict, figures: list[str]) -> dict:
    """The table of paired differences and the claims row."""
    diff = differences(data)
    cell = lambda d: f"{d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] ({_sign(d)})"  # noqa: E731
    rows = [
        [s, f"{d['means']['greedy']:.3f}", cell(d["shipped - greedy"]), cell(d["mix - greedy"]),
         cell(d["mix - shipped"])]
        for s, d in diff.items()
    ]  # fmt: skip
    members = len(data["performance"][next(iter(diff))]) - 2  # all but shipped and greedy
    wins = [s for s, d in diff.items() if _sign(d["shipped - greedy"]) == "wins"]
    losses = [s for s, d in diff.items() if _sign(d["shipped - greedy"]) == "loses"]
    md = [
        f"{data['seeds']} episodes per setting, every policy on the same arrivals; the "
        f"mix-trained router is the mean of {members} training seeds "
        f"({data['cost']['env_steps'] // members:,} training steps each); a difference counts "
        "as a win or a loss when its 95 % "
        f"interval excludes 0 and it is at least {MATERIAL} in size.",
        "",
        f"![exp 11]({figures[0]})",
        "",
        R.markdown_table(
            [
                "setting",
                "greedy",
                "shipped - greedy",
                "mix-trained - greedy",
                "mix-trained - shipped",
            ],
            rows,
        ),  # fmt: skip
    ]
    claims = [
        R.claim(
            "Learned router vs the hand-written greedy",
            "(not compared in the paper)",
            f"shipped router significantly better in {len(wins)}, worse in {len(losses)} of "
            f"{len(diff)} settings",
            "Exp 11: paired differences over episodes",
            "new measurement",
        )
    ]
    return {"claims": claims, "markdown": "\n".join(md)}


def discussion(d: dict) -> str:
    """The results.md paragraph on Exp 11 (read from the data)."""
    diff = differences(d)
    by = lambda key, sign: [s for s, v in diff.items() if _sign(v[key]) == sign]  # noqa: E731
    wins, losses = by("shipped - greedy", "wins"), by("shipped - greedy", "loses")
    fixed = [s for s in losses if _sign(diff[s]["mix - greedy"]) != "loses"]
    return (
        "**Router vs greedy (Exp 11).** The shipped router is significantly better than greedy"
        f" in {len(wins)} settings ({', '.join(wins) or 'none'}), significantly worse in "
        f"{len(losses)} ({', '.join(losses) or 'none'}) and tied in the rest. Training over a "
        f"random task mix per episode removes the loss in {len(fixed)} of those "
        f"{len(losses)} ({', '.join(fixed) or 'none'})."
    )


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/11_router_vs_greedy.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
