"""Experiment 2 — unpredictable workloads: synthetic generator and MAF 2019 replay.

The shipped hard router vs every static model, greedy and lp on opt-a100x4:
* synthetic 'unpredictable' workload (segments of mean 30 s, rates log-uniform from 1/30 to
  3x the OPT-6.7B pair's capacity, 10 % spikes x3): windowed normalised performance (10 s
  windows), time above 96 % / 98 % of peak and 'N x more often than static' (docs/spec.md §4);
* the same generator scaled by rate_scale (load levels) — how the ratios depend on load;
* max sustainable rate on the unpredictable workload: the highest rate_scale (geometric grid)
  at which availability >= 0.99, reported as the mean offered rate;
* Azure Functions 2019 replay (100-function sample, 480 minutes): time-compressed 30x (a
  trace minute lasts 2 s) and thinned/replicated so that the median minute is `load` x the
  OPT-6.7B pair's capacity; windows of one trace minute.

    .venv/bin/python experiments/02_unpredictable.py [--quick | --smoke]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxserve.evaluation.comparison import unpredictable_spec
from jaxserve.evaluation.stats import format_interval, mean_ci, ratio_ci
from jaxserve.research import report as R
from jaxserve.research.figures import policy_style, save_figure, static_label
from jaxserve.research.runs import (
    PAPER_LEVELS,
    TRACES,
    Run,
    alone_name,
    is_static,
    run_pipeline,
    scale_sweep,
    with_baselines,
    workload_runs,
)
from jaxserve.rl.envs import reference_capacity
from jaxserve.sim.metrics import max_sustainable_rate
from jaxserve.sim.scenarios import get_scenario
from jaxserve.sim.traces import load_maf2019_counts
from jaxserve.sim.workloads import WorkloadSpec, mean_rate, rate_at

NAME = "02_unpredictable"
TITLE = "Unpredictable workloads: synthetic generator and Azure Functions 2019 replay"
SCENARIO = "opt-a100x4"
MAF = "azure_functions_2019_invitro_sample/100/invocations.csv"
MAF_COMPRESSION = 30.0
PAPER = {96: 4.1, 98: 2.3}  # "N x more often above the level than static"


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 8  # episodes per policy and setting (intervals are over these)
    synthetic_requests: int = 125_000  # per episode
    load_scales: tuple[float, ...] = (2.0, 4.0, 8.0)
    scale_requests: int = 25_000
    msr_scales: tuple[float, ...] = tuple(np.geomspace(0.25, 32, 22).tolist())
    msr_requests: int = 20_000
    msr_seeds: int = 4
    maf_requests: int = 100_000
    maf_loads: tuple[float, ...] = (0.5, 1.0, 2.0)


SMOKE = Config(
    seeds=2,
    synthetic_requests=2000,
    load_scales=(1.0,),
    scale_requests=1000,
    msr_scales=(0.5, 2.0),
    msr_requests=500,
    msr_seeds=1,
    maf_requests=2000,
    maf_loads=(1.0,),
)
QUICK = Config(
    seeds=4,
    synthetic_requests=25_000,
    load_scales=(2.0, 4.0),
    scale_requests=10_000,
    msr_scales=tuple(np.geomspace(0.25, 32, 15).tolist()),
    msr_requests=8000,
    msr_seeds=2,
    maf_requests=20_000,
)
FULL = Config()


def maf_spec(load: float, cap: float) -> WorkloadSpec:
    """MAF 2019 sample with the median minute at `load` x cap req/s after 30x compression."""
    counts = load_maf2019_counts(TRACES / MAF).sum(axis=0)
    scale = load * cap * (60.0 / MAF_COMPRESSION) / float(np.median(counts))
    return WorkloadSpec(
        kind="trace",
        trace_path=str(TRACES / MAF),
        trace_format="maf2019",
        time_compression=MAF_COMPRESSION,
        rate_scale=scale,
    )


def _ratios(runs: dict, largest: str) -> dict:
    """Router / static time above each level, with bootstrap intervals (seeds x windows)."""
    statics = [n for n in runs if is_static(n)]
    out = {}
    for level in PAPER_LEVELS:
        key = f"time_above_{level}"
        best = max(statics, key=lambda n: runs[n][key])
        series = lambda n: runs[n]["series_per_seed"]  # noqa: E731
        vs_largest = ratio_ci(series("router"), series(largest), level / 100)
        vs_best = ratio_ci(series("router"), series(best), level / 100)
        out[str(level)] = {  # str keys: the same in memory and in the JSON
            "vs_largest": vs_largest["ratio"],
            "vs_largest_ci": vs_largest["ci"],
            "best_static": best,
            "vs_best_static": vs_best["ratio"],
            "vs_best_static_ci": vs_best["ci"],
        }
    return out


def _max_sustainable(config: Config, scenario, named: dict, spec: WorkloadSpec) -> dict:
    msr = scale_sweep(
        scenario, named, spec, config.msr_scales, config.msr_requests, config.msr_seeds
    )
    offered = [mean_rate(dataclasses.replace(spec, rate_scale=s)) for s in msr["scales"]]
    per_seed = np.asarray(msr["availability_per_seed"])  # (P, scales, seeds)
    rate = {n: max_sustainable_rate(offered, msr["availability"][p]) for p, n in enumerate(named)}
    seed_rate = {
        n: [v or 0.0 for v in R.seed_msr(offered, per_seed[p])] for p, n in enumerate(named)
    }
    largest = alone_name(scenario, scenario.num_models - 1)
    pairs = zip(seed_rate["router"], seed_rate[largest], strict=True)
    return {
        **msr,
        "mean_offered_rate": offered,
        "max_sustainable_rate": rate,
        "ratio_vs_largest": R.ratio(rate["router"], rate[largest]),
        "ratio_vs_largest_ci": mean_ci([R.ratio(a, b) or 0.0 for a, b in pairs])[1].tolist(),
    }


def compute(config: Config, run: Run) -> dict:
    """Synthetic runs, load scales, the max-sustainable-rate grid and the MAF replays."""
    scenario = get_scenario(SCENARIO)
    cap = reference_capacity(scenario)
    largest = alone_name(scenario, scenario.num_models - 1)
    named = with_baselines(scenario, {"router": run.hard_router})
    spec = unpredictable_spec(scenario)
    n = config.seeds
    syn = workload_runs(scenario, named, spec, config.synthetic_requests, 0, 10.0, seeds=n)
    loads = {}
    for s in config.load_scales:
        scaled = dataclasses.replace(spec, rate_scale=s)
        r = workload_runs(
            scenario, named, scaled, config.scale_requests, 0, keep_series=False, seeds=n
        )
        loads[str(s)] = {"runs": r["runs"], "ratios": _ratios(r["runs"], largest)}
    maf = {}
    main_load = 1.0 if 1.0 in config.maf_loads else config.maf_loads[0]
    for load in config.maf_loads:
        mspec = maf_spec(load, cap)
        r = workload_runs(
            scenario,
            named,
            mspec,
            config.maf_requests,
            0,
            60.0 / MAF_COMPRESSION,
            keep_series=load == main_load,
            seeds=n,
        )
        maf[str(load)] = {
            "runs": r["runs"],
            "ratios": _ratios(r["runs"], largest),
            "rate_scale": mspec.rate_scale,
            "num_requests": r["num_requests"],
        }
    syn_ratios = _ratios(syn["runs"], largest)
    for runs in [
        syn["runs"],
        *(v["runs"] for v in loads.values()),
        *(v["runs"] for v in maf.values()),
    ]:
        for row in runs.values():
            row.pop("series_per_seed")  # the ratios above are what it was for; keeps the JSON small
    return {
        "synthetic": {
            "runs": syn["runs"],
            "ratios": syn_ratios,
            "spec": dataclasses.asdict(spec),
            "num_requests": syn["num_requests"],
            "wall_s": syn["wall_s"],
        },
        "load_scales": loads,
        "msr": _max_sustainable(config, scenario, named, spec),
        "maf": maf,
        "maf_main_load": main_load,
    }


def _plot_series(ax, runs: dict, scenario, title: str) -> None:
    for name, r in runs.items():
        t = np.asarray(r["window_start_s"])
        ax.plot(t - t[0], r["series"], label=static_label(scenario, name), **policy_style(name))
    for level in (0.96, 0.98):
        ax.axhline(level, color="grey", lw=0.6, ls=":")
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("windowed normalised perf")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _rate_axis(ax, spec: WorkloadSpec, runs: dict, num_arrivals: int) -> None:
    """The offered rate on a twin axis (the synthetic workload's first draw)."""
    import jax

    t = np.asarray(next(iter(runs.values()))["window_start_s"])
    key = jax.random.split(jax.random.key(0))[0]
    rate = rate_at(spec, t, key=key, num_arrivals=num_arrivals)
    twin = ax.twinx()
    twin.plot(t - t[0], rate, color="black", lw=0.6, alpha=0.35)
    twin.set_ylabel("offered rate (req/s)", fontsize=8)
    twin.set_yscale("log")


def plot(data: dict, figures_dir: Path) -> list[str]:
    """Windowed performance (synthetic, MAF) and availability vs mean offered rate."""
    import matplotlib.pyplot as plt

    scenario = get_scenario(SCENARIO)
    syn, load = data["synthetic"], data["maf_main_load"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 7.5))
    title = "synthetic unpredictable workload (10 s windows); thin black: offered rate"
    _plot_series(ax1, syn["runs"], scenario, title)
    _rate_axis(ax1, WorkloadSpec(**syn["spec"]), syn["runs"], syn["num_requests"])
    _plot_series(
        ax2,
        data["maf"][str(load)]["runs"],
        scenario,
        f"Azure Functions 2019 replay, median minute = "
        f"{load}x the 6.7B capacity (windows = one trace minute)",
    )
    ax1.set_xlim(0, min(1500, ax1.get_xlim()[1]))
    ax2.set_xlabel("time (s)")
    ax1.legend(fontsize=7, ncol=6, loc="lower left")
    series = save_figure(fig, figures_dir, "exp_02_unpredictable.png")

    msr = data["msr"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for p, name in enumerate(msr["policies"]):
        label = static_label(scenario, name)
        ax.plot(
            msr["mean_offered_rate"],
            msr["availability"][p],
            marker=".",
            label=label,
            **policy_style(name),
        )
    ax.axhline(0.99, color="grey", ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("mean offered rate of the unpredictable workload (req/s)")
    ax.set_ylabel("availability")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return [series, save_figure(fig, figures_dir, "exp_02_msr.png")]


def _row(name, runs, scenario):
    r = runs[name]
    keys = ("normalized_performance", "availability", "time_above_96", "time_above_98")
    return [static_label(scenario, name)] + [R.fx(r[k]) for k in keys]


def _level_verdict(data: dict, level: int) -> str:
    """Which settings reproduce the paper's ratio (vs OPT-6.7B x4 GPUs), by `R.verdict`."""
    pair = lambda r: (r["vs_largest"], tuple(r["vs_largest_ci"]))  # noqa: E731
    settings = {"synthetic": pair(data["synthetic"]["ratios"][str(level)])}
    for s, v in data["load_scales"].items():
        settings[f"synthetic x{float(s):g}"] = pair(v["ratios"][str(level)])
    for k, v in data["maf"].items():
        settings[f"MAF load {float(k):g}"] = pair(v["ratios"][str(level)])
    return R.settings_verdict(settings, PAPER[level])


def _tables(data: dict, spec: WorkloadSpec, largest: str) -> list[str]:
    """The load-scale and MAF tables."""
    loads = []
    for s, v in data["load_scales"].items():
        rt = v["runs"]
        loads.append(
            [
                f"{float(s):g} ({mean_rate(dataclasses.replace(spec, rate_scale=float(s))):.0f}"
                " req/s)",
                R.fx(rt["router"]["normalized_performance"]),
                R.fx(rt[largest]["normalized_performance"]),
                R.fx(rt["router"]["time_above_96"]),
                R.fx(rt[largest]["time_above_96"]),
                _ratio(v["ratios"]["96"]),
                _ratio(v["ratios"]["98"]),
            ]
        )
    maf = []
    for load, v in data["maf"].items():
        rt = v["runs"]
        maf.append(
            [
                f"{float(load):g}",
                R.fx(rt["router"]["normalized_performance"]),
                R.fx(rt["greedy"]["normalized_performance"]),
                R.fx(rt[largest]["normalized_performance"]),
                R.fx(rt["router"]["time_above_96"]),
                R.fx(rt[largest]["time_above_96"]),
                _ratio(v["ratios"]["96"]),
                _ratio(v["ratios"]["98"]),
            ]
        )
    head = ["router perf", "6.7B perf", "router > 96 %", "6.7B > 96 %", "ratio 96 %", "ratio 98 %"]
    return [
        R.markdown_table(["rate_scale (mean rate)", *head], loads),
        R.markdown_table(["load", "router perf", "greedy perf", *head[1:]], maf),
    ]


def write_up(data: dict, figures: list[str]) -> dict:
    """Tables for every setting and the three claims rows."""
    scenario = get_scenario(SCENARIO)
    largest = alone_name(scenario, scenario.num_models - 1)
    syn, msr = data["synthetic"], data["msr"]
    spec = WorkloadSpec(**syn["spec"])
    main_load = str(data["maf_main_load"])
    head = ["policy", "normalised perf", "availability", "time above 96 %", "time above 98 %"]
    load_table, maf_table = _tables(data, spec, largest)
    md = [
        f"Synthetic: {syn['num_requests']:,} requests (mean offered rate "
        f"{mean_rate(spec):.0f} req/s, {len(syn['runs']['router']['series'])} windows of 10 s);"
        f" all policies on the same arrivals ({syn['wall_s']:.0f} s).",
        "",
        f"![exp 2]({figures[0]})",
        "",
        R.markdown_table(head, [_row(n, syn["runs"], scenario) for n in syn["runs"]]),
        "",
    ]
    for level in PAPER_LEVELS:
        r = syn["ratios"][str(level)]
        md.append(
            f"* Above {level} % of peak: router vs {largest} **{_ratio(r)}**"
            f"; vs the static deployment most often above "
            f"({static_label(scenario, r['best_static'])}) "
            f"{_ratio(r, 'vs_best_static')} (paper: {PAPER[level]}x)."
        )
    rate = msr["max_sustainable_rate"]
    md += [
        "",
        "The same generator at higher load (`rate_scale`; the ratio depends on how much of the"
        " time the offered rate exceeds OPT-6.7B's capacity):",
        "",
        load_table,
        "",
        f"Max sustainable rate on the unpredictable workload (highest mean offered rate on a "
        f"grid of {len(msr['scales'])} rate scales, {msr['num_requests']:,} requests x "
        f"{msr['seeds']} seeds each, availability >= 0.99): "
        + ", ".join(f"{static_label(scenario, n)} {R.fx(v, 0)}" for n, v in rate.items())
        + f" req/s. Router / {largest}: **{R.fx_ratio(msr['ratio_vs_largest'])}** "
        f"{format_interval(_msr_interval(msr))} "
        "(paper: > 10x).",
        "",
        f"![exp 2 msr]({figures[1]})",
        "",
        "Azure Functions 2019 replay (100-function sample, compressed 30x; `load` = median "
        f"minute / 6.7B capacity; first {data['maf'][main_load]['num_requests']:,} requests):",
        "",
        maf_table,
    ]
    top = max(data["load_scales"], key=float) if data["load_scales"] else None

    def measured(level: int) -> str:
        text = f"synthetic: {_ratio(syn['ratios'][str(level)])} vs {largest}"
        if top:
            text += f"; {_ratio(data['load_scales'][top]['ratios'][str(level)])} at rate_scale "
            text += f"{float(top):g}"
        ratio = data["maf"][main_load]["ratios"][str(level)]
        return text + f"; MAF (load {float(main_load):g}): {_ratio(ratio)}"

    claims = [
        R.claim(
            f"Above {level} % of peak N x more often than static (unpredictable)",
            f"{PAPER[level]}x",
            measured(level),
            "Exp 2: windowed normalised performance",
            _level_verdict(data, level),
        )
        for level in PAPER_LEVELS
    ]
    claims.append(
        R.claim(
            "Available at > 10x higher request rates than static (unpredictable)",
            "> 10x",
            f"{R.fx_ratio(msr['ratio_vs_largest'])} {format_interval(_msr_interval(msr))} vs "
            f"{largest} ({R.fx(rate['router'], 0)} vs {R.fx(rate[largest], 0)} req/s mean "
            "offered)",
            "Exp 2: rate_scale grid of the unpredictable workload, equal hardware",
            R.verdict(msr["ratio_vs_largest"], 10.0, tuple(_msr_interval(msr))),
        )
    )
    return {"claims": claims, "markdown": "\n".join(md)}


def discussion(d: dict) -> str:
    """The results.md paragraph on Exp 2 (comparisons read from the data)."""
    ratios = d["synthetic"]["ratios"]
    r96, r98 = ratios["96"], ratios["98"]
    msr = d["msr"]
    loads = {s: v["ratios"]["96"] for s, v in d["load_scales"].items()}
    return (
        "**Where the headline ratios come from (Exp 2).** 'N x more often above 96 % of peak "
        "than static' is a ratio of two fractions of time, and the static denominator depends "
        "on how often the offered rate exceeds the static deployment's capacity. Against "
        "OPT-6.7B on all four GPUs (equal hardware) the synthetic workload gives "
        f"{_ratio(r96)} above 96 % and {_ratio(r98)} above 98 % (paper 4.1x / 2.3x); scaled "
        "up, "
        + ", ".join(f"x{float(s):g}: {_ratio(v)}" for s, v in loads.items())
        + ". The ratio grows with the share of time the load exceeds the static deployment's "
        "capacity and is undefined where it never gets there, so the paper's numbers are a "
        "property of its workload-to-capacity ratio rather than fixed constants. The max "
        f"sustainable rate on the unpredictable workload is {R.fx_ratio(msr['ratio_vs_largest'])}"
        f" {format_interval(_msr_interval(msr))} that of OPT-6.7B x4 GPUs (paper > 10x) "
        "with the shipped router, which prices no miss; Exp 10 trains routers that do."
    )


def _msr_interval(msr: dict) -> list[float]:
    """Router / OPT-6.7B x4 max sustainable rate: range over seeds x the grid's resolution."""
    per_seed = np.asarray(msr["availability_per_seed"])  # (P, scales, seeds)
    offered = msr["mean_offered_rate"]

    def seeds_of(name: str) -> list[float | None]:
        return R.seed_msr(offered, per_seed[msr["policies"].index(name)])

    largest = next(n for n in msr["policies"] if n.endswith(" GPUs") and "6.7" in n)
    rate = msr["max_sustainable_rate"]
    point = (rate["router"], rate[largest])
    interval = R.msr_ratio_interval(seeds_of("router"), seeds_of(largest), offered, point)
    return interval or [0.0, None]


def _ratio(r: dict, key: str = "vs_largest") -> str:
    """'1.23x [1.05, 1.40]' (bootstrap interval), or undefined."""
    if r[key] is None:
        return R.fx_ratio(None)
    return f"{r[key]:.2f}x {format_interval(r[f'{key}_ci'])}"


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/02_unpredictable.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
