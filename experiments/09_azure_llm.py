"""Experiment 9 — a second real burst pattern: Azure LLM inference traces 2023 (Splitwise).

Code (8,819 requests, inter-arrival CV 13) and conversation (19,366 requests, CV 1.1) traces,
~1 hour each, replayed as timestamped arrivals, time-compressed so that the trace's mean rate
is `load` x the OPT-6.7B pair's on-time capacity; windows of one original trace minute.
Shipped hard router vs every static model, greedy and lp on opt-a100x4. Cite: Patel et al.,
"Splitwise", ISCA 2024 (data CC-BY 4.0, Azure/AzurePublicDataset).

    .venv/bin/python experiments/09_azure_llm.py [--quick | --smoke]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxserve.research import report as R
from jaxserve.research.figures import policy_style, save_figure, static_label
from jaxserve.research.runs import (
    TRACES,
    Run,
    run_pipeline,
    with_baselines,
    workload_runs,
)
from jaxserve.rl.envs import reference_capacity
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.traces import load_timestamps
from jaxserve.sim.workloads import WorkloadSpec

NAME = "09_azure_llm"
TITLE = "A second real burst pattern: Azure LLM inference traces 2023"
SCENARIO = "opt-a100x4"
TRACE_FILES = {
    "code": "azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv",
    "conv": "azure_llm_inference_2023/AzureLLMInferenceTrace_conv.csv",
}


@dataclasses.dataclass(frozen=True)
class Config:
    loads: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    max_requests: int = 20_000


SMOKE = Config(loads=(1.0,), max_requests=2000)
QUICK = Config(loads=(0.5, 1.0, 2.0))
FULL = Config()


def trace_spec(kind: str, load: float, cap: float) -> tuple[WorkloadSpec, float]:
    """(spec, compression) with mean rate = load x cap."""
    path = TRACES / TRACE_FILES[kind]
    compression = load * cap / load_timestamps(path).mean_rate()
    spec = WorkloadSpec(
        kind="trace", trace_path=str(path), trace_format="timestamps", time_compression=compression
    )
    return spec, compression


def _main_key(data: dict, kind: str) -> str:
    return f"{kind}@1" if f"{kind}@1" in data else f"{kind}@{data_loads(data)[0]:g}"


def data_loads(data: dict) -> list[float]:
    """The loads of the replays, in order."""
    return sorted({float(k.split("@")[1]) for k in data})


def compute(config: Config, run: Run) -> dict:
    """Every trace at every load: {'code@1': {'runs', 'compression', 'num_requests'}, ...}."""
    scenario = get_scenario(SCENARIO)
    cap = reference_capacity(scenario)
    named = with_baselines(scenario, {"router": run.hard_router})
    out = {}
    for kind in TRACE_FILES:
        for load in config.loads:
            spec, c = trace_spec(kind, load, cap)
            series = load == 1.0 or (1.0 not in config.loads and load == config.loads[0])
            r = workload_runs(
                scenario, named, spec, config.max_requests, 0, 60.0 / c, keep_series=series
            )
            out[f"{kind}@{load:g}"] = {
                "runs": r["runs"],
                "compression": c,
                "num_requests": r["num_requests"],
            }
    return out


def plot(data: dict, figures_dir: Path) -> list[str]:
    """Per trace: the windowed series at load 1, and performance vs load."""
    import matplotlib.pyplot as plt

    scenario = get_scenario(SCENARIO)
    loads = data_loads(data)
    fig, axes = plt.subplots(2, 2, figsize=(13, 7), gridspec_kw={"width_ratios": [1.6, 1]})
    for row, kind in enumerate(TRACE_FILES):
        ax = axes[row, 0]
        for name, r in data[_main_key(data, kind)]["runs"].items():
            if "series" in r:
                t = np.asarray(r["window_start_s"])
                label = static_label(scenario, name)
                ax.plot(t - t[0], r["series"], label=label, **policy_style(name))
        ax.set_ylim(-0.02, 1.05)
        ax.set_ylabel("windowed normalised perf")
        ax.set_title(
            f"{kind} trace at mean rate = 6.7B capacity (windows = 1 trace minute)", fontsize=9
        )
        ax.grid(alpha=0.3)
        ax = axes[row, 1]
        for name in data[_main_key(data, kind)]["runs"]:
            perf = [data[f"{kind}@{x:g}"]["runs"][name]["normalized_performance"] for x in loads]
            label = static_label(scenario, name)
            ax.plot(loads, perf, marker="o", label=label, **policy_style(name))
        ax.set_xscale("log")
        ax.set_xlabel("mean rate / 6.7B capacity")
        ax.set_ylabel("normalised performance")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=3)
    axes[1, 0].set_xlabel("time (s, compressed)")
    return [save_figure(fig, figures_dir, "exp_09_azure_llm.png")]


def _ratio(runs: dict, largest: str, level: int) -> float | None:
    key = f"time_above_{level}"
    return R.ratio(runs["router"][key], runs[largest][key])


def write_up(data: dict, figures: list[str]) -> dict:
    """The table of every replay and the claims row."""
    scenario = get_scenario(SCENARIO)
    largest = f"static:{scenario.num_models - 1}"
    rows = []
    for key, v in data.items():
        rt = v["runs"]
        rows.append(
            [
                key,
                f"{v['compression']:.0f}x",
                R.fx(rt["router"]["normalized_performance"]),
                R.fx(rt["greedy"]["normalized_performance"]),
                R.fx(rt[largest]["normalized_performance"]),
                R.fx(rt["router"]["time_above_96"]),
                R.fx(rt[largest]["time_above_96"]),
                R.fx_ratio(_ratio(rt, largest, 96)),
                R.fx_ratio(_ratio(rt, largest, 98)),
            ]
        )
    diff = [
        v["runs"]["router"]["normalized_performance"]
        - v["runs"]["greedy"]["normalized_performance"]
        for v in data.values()
    ]
    head = ["trace@load", "compression", "router", "greedy", "6.7B alone", "router > 96 %"]
    md = [
        f"![exp 9]({figures[0]})",
        "",
        R.markdown_table(head + ["6.7B > 96 %", "ratio 96 %", "ratio 98 %"], rows),
        "",
        f"* Router minus greedy (normalised performance) over the {len(data)} replays: min "
        f"{min(diff):+.3f}, max {max(diff):+.3f}. The router was trained on Poisson episodes "
        "only; the code trace's bursts (CV 13) are a distribution it never saw.",
    ]
    meas = "; ".join(
        f"{k}: ratio 96 % " + R.fx_ratio(_ratio(data[k]["runs"], largest, 96))
        for k in data
        if k.endswith("@1")
    )
    claims = [
        R.claim(
            "Benefit on a second real burst pattern (Azure LLM 2023)",
            "(not measured in the paper)",
            meas or "see Exp 9",
            "Exp 9: code and conv traces, time-compressed",
            "new measurement",
        )
    ]
    return {"claims": claims, "markdown": "\n".join(md)}


def discussion(d: dict) -> str:
    """The results.md paragraph on Exp 9."""
    diffs = {
        k: v["runs"]["router"]["normalized_performance"]
        - v["runs"]["greedy"]["normalized_performance"]
        for k, v in d.items()
    }
    best = max(diffs, key=diffs.get)
    return (
        "**Azure LLM 2023 bursts (Exp 9).** On the very bursty code trace the router's margin "
        f"over greedy reaches {diffs[best]:+.3f} ({best}): greedy's completion-time heuristic "
        "ignores drops and piles bursts onto models that then miss deadlines, while the "
        "router learned to spill early. On the smoother conversation trace both are close. "
        "Time-above ratios on these ~1 hour traces rest on about 58 one-minute windows each."
    )


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/09_azure_llm.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
