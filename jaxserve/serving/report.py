"""Serving results: docs/spec.md §4 metrics of a served run, the simulator's prediction, and the
fidelity report that puts them side by side (JSON + figure)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxserve.sim.env import ServingEnv
from jaxserve.sim.metrics import request_metrics, windowed_normalized
from jaxserve.sim.rollout import ledger_rollout
from jaxserve.sim.types import DROPPED, LATE, ON_TIME, OUTCOME_NAMES, REJECTED

COMPARED = (
    "availability",
    "normalized_performance",
    "performance",
    "latency_p50_s",
    "latency_p99_s",
    "latency_mean_s",
    "drop_fraction",
    "reject_fraction",
)


def ledger_from_requests(requests, num_arrivals: int) -> dict:
    """Per-decision arrays (outcome -1 = not resolved: unfinished or never arrived)."""
    ledger = {
        "outcome": np.full(num_arrivals, -1, np.int64),
        "action": np.zeros(num_arrivals, np.int64),
        "model": np.full(num_arrivals, -2, np.int64),
        "utility": np.zeros(num_arrivals),
        "latency_s": np.zeros(num_arrivals),
        "answer": np.full(num_arrivals, -2, np.int64),
        "correct": np.zeros(num_arrivals, bool),
        "batch_size": np.zeros(num_arrivals, np.int64),
    }
    for r in requests:
        i = r.decision
        ledger["outcome"][i], ledger["model"][i], ledger["utility"][i] = (
            r.outcome,
            r.model,
            r.utility,
        )
        ledger["action"][i] = r.action
        if r.outcome in (ON_TIME, LATE):
            ledger["latency_s"][i] = r.completion_s - r.arrival_s
        ledger["answer"][i], ledger["correct"][i] = r.answer, r.correct
        ledger["batch_size"][i] = r.batch_size
    return ledger


def conservation(ledger: dict, num_arrived: int) -> dict:
    """arrived = on time + late + dropped + rejected + unfinished (docs/spec.md §3.8)."""
    outcome = ledger["outcome"][:num_arrived]
    counts = {f"num_{n}": int(np.sum(outcome == k)) for k, n in enumerate(OUTCOME_NAMES)}
    counts["num_unfinished"] = int(np.sum(outcome < 0))
    counts["num_arrived"] = num_arrived
    counts["conserved"] = (
        sum(v for k, v in counts.items() if k not in ("num_arrived",)) == num_arrived
    )
    return counts


def run_metrics(
    ledger: dict, arrival_s, tasks, quality, num_actions: int, window_s: float, resolved
) -> dict:
    """docs/spec.md §4 metrics over the resolved requests, plus availability per window."""
    out = request_metrics(ledger, arrival_s, tasks, quality, num_actions, window_s, valid=resolved)
    outcome = np.asarray(ledger["outcome"])[resolved]
    n = max(len(outcome), 1)
    out["drop_fraction"] = float(np.sum(outcome == DROPPED) / n)
    out["reject_fraction"] = float(np.sum(outcome == REJECTED) / n)
    on_time = (outcome == ON_TIME).astype(np.float64)
    _, series = windowed_normalized(
        np.asarray(arrival_s)[resolved], on_time, np.ones_like(on_time), window_s
    )
    out["windowed_availability"] = series.tolist()
    return out


def predict(scenario, policy, arrivals, key_run, window_s: float) -> dict:
    """The simulator's metrics for the same scenario, workload draw, policy and keys."""
    env = ServingEnv(dataclasses.replace(scenario.sim_config(), emit_records=True))
    params = scenario.sim_params()
    run = jax.jit(lambda key, params, arrivals: ledger_rollout(env, policy, key, params, arrivals))
    ledger = jax.tree.map(np.asarray, run(key_run, params, arrivals))
    arrival_s = np.cumsum(np.asarray(arrivals.gap_s, np.float64))
    valid = np.asarray(arrivals.valid)
    return run_metrics(
        ledger,
        arrival_s,
        np.asarray(arrivals.task),
        scenario.quality,
        env.num_actions,
        window_s,
        valid,
    )


def compare(predicted: dict, measured: dict) -> dict:
    """Predicted vs measured: value pairs, absolute and relative differences."""
    rows = {}
    for key in COMPARED:
        p, m = predicted.get(key), measured.get(key)
        if p is None or m is None:
            rows[key] = {"predicted": p, "measured": m}
            continue
        rel = (m - p) / abs(p) if p else None
        rows[key] = {"predicted": p, "measured": m, "abs_diff": m - p, "rel_diff": rel}
    rows["routing_fraction"] = {
        "predicted": predicted["routing_fraction"],
        "measured": measured["routing_fraction"],
    }
    return rows


def plot_fidelity(predicted: dict, measured: dict, path, title: str = "", model_names=()) -> None:
    """Time series (normalised performance, availability) and routing mix, both runs."""
    from jaxserve.plots import plt, save_figure_atomic

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for run, style, label in (
        (predicted, "--", "simulator (profile)"),
        (measured, "-", "served (measured)"),
    ):
        t = run["window_start_s"]
        axes[0].plot(t, run["windowed_normalized_performance"], style, marker=".", label=label)
        axes[1].plot(
            t[: len(run["windowed_availability"])],
            run["windowed_availability"],
            style,
            marker=".",
            label=label,
        )
    for ax, name in zip(axes[:2], ("normalised performance", "availability"), strict=True):
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"{name} per window")
        ax.set_ylim(-0.02, 1.05)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    k = len(predicted["routing_fraction"])
    x = np.arange(k)
    axes[2].bar(x - 0.2, predicted["routing_fraction"], 0.4, label="simulator")
    axes[2].bar(x + 0.2, measured["routing_fraction"], 0.4, label="served")
    names = list(model_names) + ["reject"]
    axes[2].set_xticks(x, names[:k], fontsize=8)
    axes[2].set_ylabel("routing fraction")
    axes[2].legend(fontsize=8)
    fig.suptitle(title)
    save_figure_atomic(fig, path)
    plt.close(fig)
