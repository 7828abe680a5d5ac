"""A plan as a ranked table, as JSON, and as a figure (performance vs rate per top placement)."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxserve.evaluation.plan import BASELINES, LEARNED, PlacementResult, PlanResult
from jaxserve.evaluation.stats import format_interval

POLICY_COLUMNS = (*BASELINES, LEARNED)


def placement_json(entry: PlacementResult) -> dict:
    """One placement: what it is, its bound, each simulated policy's summary."""
    p = entry.placement
    return {
        "placement": p.key,
        "label": p.label,
        "gpus": p.gpus,
        "replicas": dict(zip(p.model_names, p.replicas, strict=True)),
        "bound_per_rate": entry.bound.tolist(),
        "bound": entry.bound_score,
        "policies": {name: runs.summary() for name, runs in entry.runs.items()},
        "best_policy": entry.best_policy(),
        "screened": entry.screened,
        "router_dir": entry.router_dir,
    }


def plan_json(result: PlanResult) -> dict:
    """The whole plan, JSON-ready: inputs, every placement (ranked) and the choice."""
    c = result.config
    chosen = result.chosen
    return {
        "zoo": result.zoo.name,
        "models": list(result.zoo.model_names),
        "gpus": result.gpus,
        "rates": result.rates.tolist(),
        "workload": dataclasses.asdict(result.workload),
        "deadline_scale": c.deadline_scale,
        "seeds": c.seeds,
        "num_requests": c.num_requests,
        "num_enumerated": result.num_enumerated,
        "num_simulated": sum(bool(p.runs) for p in result.placements),
        "bound_screens": result.bound_valid is None,
        "bound_note": result.bound_valid,
        "chosen": {
            "placement": chosen.placement.key,
            "label": chosen.placement.label,
            "policy": chosen.best_policy(),
            "router_dir": chosen.router_dir,
        },
        "fewest_gpus": result.fewest_gpus,
        "wall_s": result.wall_s,
        "train_wall_s": result.train_wall_s,
        "placements": [placement_json(p) for p in result.placements],
    }


def _cell(summary: dict | None) -> str:
    if summary is None:
        return f"{'-':>22}"
    return f"{summary['performance']:>7.3f} {format_interval(summary['performance_ci'], 3):<15}"


def format_plan(result: PlanResult, top: int = 12) -> str:
    """Ranked table: placement, GPUs, bound, greedy, lp, learned (mean over rates [95 %]),
    the best policy's availability and time above 96 %; then the choice."""
    data = plan_json(result)
    lines = [
        f"plan for {result.gpus} GPUs, zoo {result.zoo.name} ({', '.join(data['models'])}); "
        f"{data['workload']['kind']} at rates {', '.join(f'{r:.0f}' for r in result.rates)} "
        f"req/s; {result.config.seeds} seeds x {result.config.num_requests} requests",
        f"{data['num_enumerated']} placements enumerated, {data['num_simulated']} simulated"
        + ("" if data["bound_screens"] else f" (no bound screen: {data['bound_note']})"),
        "normalised performance (by the zoo's peak), mean over rates [95 % interval over seeds]",
        f"{'placement':<38}{'GPUs':>5}{'bound':>7}  "
        + "".join(f"{n:<23}" for n in POLICY_COLUMNS)
        + f"{'avail':>7}{'>=96%':>7}",
    ]
    for entry in data["placements"][:top]:
        policies = entry["policies"]
        best = policies.get(entry["best_policy"]) if entry["best_policy"] else None
        head = f"{entry['label']:<38}{entry['gpus']:>5}{entry['bound']:>7.3f}  "
        if best is None:
            lines.append(head + f"screened: {entry['screened']}")
            continue
        cells = "".join(_cell(policies.get(n)) + " " for n in POLICY_COLUMNS)
        lines.append(head + cells + f"{best['availability']:>7.3f}{best['time_above_96']:>7.2f}")
    hidden = len(data["placements"]) - top
    if hidden > 0:
        lines.append(f"... {hidden} more (--json lists every placement and why it was screened)")
    lines.append(_choice_line(data))
    if data["fewest_gpus"] is not None:
        lines.append(_fewest_line(data["fewest_gpus"], result))
    trained = result.train_wall_s
    note = "" if trained is None else f"; learned routers: one population call, {trained:.1f} s"
    lines.append(f"(plan took {result.wall_s:.1f} s{note})")
    return "\n".join(lines)


def _choice_line(data: dict) -> str:
    chosen = data["chosen"]
    router = f"; router checkpoint {chosen['router_dir']}" if chosen["router_dir"] else ""
    return f"chosen: {chosen['label']} ({chosen['placement']}) with {chosen['policy']}{router}"


def _fewest_line(fewest: dict, result: PlanResult) -> str:
    c = result.config
    want = f"performance >= {c.min_performance}, availability >= {c.min_availability}"
    if fewest["gpus"] is None:
        return f"fewest GPUs for {want} at every rate: none up to {c.gpus}"
    return f"fewest GPUs for {want} at every rate: {fewest['gpus']} ({fewest['placement']})"


def plot_plan(result: PlanResult, path: str, top: int = 3) -> None:
    """Performance vs rate of the top placements' best policies (95 % bands) and bounds."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxserve.io_utils import save_figure_atomic

    fig, ax = plt.subplots(figsize=(7, 4.2))
    rates = result.rates
    for i, entry in enumerate([p for p in result.placements if p.runs][:top]):
        summary = entry.runs[entry.best_policy()].summary()
        mean = np.asarray(summary["performance_per_rate"])
        ci = np.asarray(summary["performance_per_rate_ci"])
        color = f"C{i}"
        label = f"{entry.placement.label} ({entry.best_policy()})"
        ax.plot(rates, mean, color=color, marker="o", label=label)
        ax.fill_between(rates, ci[:, 0], ci[:, 1], color=color, alpha=0.2)
        ax.plot(rates, entry.bound, color=color, ls=":", lw=1)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no overlapping labels
    ax.set_xlabel("arrival rate (req/s)")
    ax.set_ylabel("normalised performance (zoo peak)")
    ax.set_title(f"plan: top placements on {result.gpus} GPUs (dotted: fluid bound)", fontsize=9)
    ax.legend(fontsize=7)
    save_figure_atomic(fig, path)
    plt.close(fig)


__all__ = ["format_plan", "placement_json", "plan_json", "plot_plan"]
