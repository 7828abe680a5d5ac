"""The results record of a served run: conservation, metrics, ledger, batches, fidelity.

`serve.py` runs the workload; this module turns what the engine and router recorded into
the JSON record (docs/serving.md).
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxserve.serving import report
from jaxserve.serving.config import ServeConfig
from jaxserve.serving.setup import Setup


def window_s(config: ServeConfig, arrival_s: np.ndarray) -> float:
    """Window of the windowed metrics: `config.window_s`, else 1/20 of the arrivals' span."""
    if config.window_s:
        return float(config.window_s)
    span = float(arrival_s[-1] - arrival_s[0]) if len(arrival_s) > 1 else 1.0
    return max(span / 20.0, 1e-3)


def served_record(
    config: ServeConfig, setup: Setup, engine, router, requests, arrival_s, tasks, wall_s, stop
) -> dict:
    """Results record: conservation, metrics, per-request ledger, batches, router overhead."""
    s = setup.scenario
    num_arrived = len(requests)
    ledger = report.ledger_from_requests(requests, len(arrival_s))
    resolved = ledger["outcome"] >= 0
    result = {
        "scenario": s.name,
        "policy": setup.policy_name,
        "workload": setup.workload.kind,
        "seed": config.seed,
        "clock": config.clock,
        "mode": config.mode,
        "quality_source": "measured" if setup.measured_quality else "table",
        "models": setup.model_sources,
        "model_names": list(s.model_names),
        "prompt_tokens": config.prompt_tokens,
        "num_requests": int(len(arrival_s)),
        "interrupted": stop.is_set(),
        "wall_s": wall_s,
        "router_decision_us": router.overhead_summary(),
        **report.conservation(ledger, num_arrived),
    }
    if resolved.any():
        result["metrics"] = report.run_metrics(
            ledger,
            arrival_s,
            tasks,
            s.quality,
            s.num_models + int(s.allow_reject),
            window_s(config, arrival_s),
            resolved,
        )
    result["accuracy"] = _accuracy(ledger, tasks, s)
    result["batches"] = _batch_summary(engine, s)
    result["requests"] = {k: v[:num_arrived].tolist() for k, v in ledger.items()}
    result["requests"]["arrival_s"] = arrival_s[:num_arrived].tolist()
    result["requests"]["task"] = tasks[:num_arrived].tolist()
    return result


def _accuracy(ledger, tasks, scenario) -> dict:
    """Measured correctness of answered requests per task and model."""
    out = {}
    answered = ledger["answer"] != -2
    for t, task in enumerate(scenario.task_names):
        row = {}
        for k, model in enumerate(scenario.model_names):
            mine = answered & (tasks == t) & (ledger["model"] == k)
            row[model] = float(ledger["correct"][mine].mean()) if mine.any() else None
        out[task] = row
    return out


def _batch_summary(engine, scenario) -> dict:
    """Per model and batch size: count, median/p10/p90 measured seconds vs the profile."""
    out = {}
    for k, name in enumerate(scenario.model_names):
        rows = {}
        for b in range(1, scenario.max_batch[k] + 1):
            secs = [x.service_s for x in engine.batches if x.model == k and x.size == b]
            if secs:
                rows[str(b)] = {
                    "count": len(secs),
                    "median_s": float(np.median(secs)),
                    "p10_s": float(np.percentile(secs, 10)),
                    "p90_s": float(np.percentile(secs, 90)),
                    "profile_s": scenario.latency_s[k][b - 1],
                }
        out[name] = rows
    out["log_sigma"] = _log_sigma(engine)
    return out


def _log_sigma(engine) -> float | None:
    """Std of log(service time / median of its model and batch size), over all batches:
    the log-normal noise sigma (docs/spec.md §3.3) that the measured service times show."""
    groups: dict = {}
    for x in engine.batches:
        groups.setdefault((x.model, x.size), []).append(x.service_s)
    logs = [np.log(np.asarray(v) / np.median(v)) for v in groups.values() if len(v) > 1]
    return float(np.std(np.concatenate(logs))) if logs else None


def add_fidelity(config: ServeConfig, setup: Setup, result: dict) -> None:
    """Simulator prediction for the same run, the comparison, and the figure (with out)."""
    arrival_s = np.asarray(result["requests"]["arrival_s"])
    predicted = report.predict(
        setup.scenario, setup.policy, setup.arrivals, setup.key_run, window_s(config, arrival_s)
    )
    result["predicted"] = predicted
    result["fidelity"] = report.compare(predicted, result["metrics"])
    if config.out:
        figure = pathlib.Path(config.out).with_suffix(".png")
        report.plot_fidelity(
            predicted,
            result["metrics"],
            figure,
            f"{setup.scenario.name} {setup.policy_name} "
            f"{setup.workload.kind} rate {setup.workload.rate:g}",
            setup.scenario.model_names,
        )
        result["figure"] = str(figure)
