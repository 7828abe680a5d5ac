"""Experiment 2 — unpredictable workloads, swept by their peak-to-capacity ratio.

A population of routers trained with the shipped hard router's exact config
(`population.seeds` training seeds; numbers: mean and two-level 95 % interval over training
seeds x evaluation episodes), the shipped router itself, greedy and every model alone on the
same 4 GPUs ("OPT-6.7B x4 GPUs", whose on-time capacity C is the axis' unit), on opt-a100x4:

* the paper-like synthetic 'unpredictable' workload (segments of mean 30 s, rates
  log-uniform from 1/30 to 3x the OPT-6.7B pair's capacity, 10 % spikes x3) with every
  baseline: windowed normalised performance (10 s windows), time above 96 % / 98 % of peak
  performance and 'N x more often than static' (docs/spec.md §4);
* two workload families whose *peak arrival rate* (docs/workloads.md, "Peak": the largest
  offered rate averaged over W seconds) is stated and swept at `peaks` x C: the unpredictable
  generator without spikes (W = 10 s) and an MAF-derived schedule (the Azure Functions 2019
  sample's `maf_minutes` minutes from just before its busiest minute, compressed 30x, each
  2 s minute a Poisson segment; W = one minute = 2 s): availability, performance, time
  above 96/98 % vs OPT-6.7B x4, and each workload's peak-to-mean ratio;
* the max sustainable peak of each family: the highest peak (geometric grid `msr_peaks`)
  at which availability >= 0.99.

    .venv/bin/python experiments/02_unpredictable.py [--quick | --smoke]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from jaxserve.evaluation.comparison import unpredictable_spec
from jaxserve.evaluation.stats import format_interval, format_ratio, ratio_ci
from jaxserve.research import report as R
from jaxserve.research.figures import policy_style, save_figure, static_label
from jaxserve.research.peaks import (
    MAF_BIN_S,
    maf_pass_requests,
    maf_peak_spec,
    maf_window_counts,
    peak_to_mean,
    realised_peaks,
    stated_peak,
    unpredictable_peak_spec,
)
from jaxserve.research.runs import (
    PAPER_LEVELS,
    QUICK_POPULATION,
    ROUTER,
    SHIPPED,
    SMOKE_POPULATION,
    Alone,
    Population,
    Run,
    alone_name,
    is_static,
    members_of,
    pool_members,
    router_population,
    run_pipeline,
    scale_sweep,
    with_baselines,
    workload_runs,
)
from jaxserve.sim.metrics import max_sustainable_rate
from jaxserve.sim.scenarios import equal_hardware, get_scenario
from jaxserve.sim.workloads import WorkloadSpec, mean_rate, rate_at

NAME = "02_unpredictable"
TITLE = "Unpredictable workloads: peak-to-capacity swept, synthetic and MAF-derived"
SCENARIO = "opt-a100x4"
BIG = 2  # OPT-6.7B: its x4 deployment's capacity is the peak axis' unit
PAPER = {96: 4.1, 98: 2.3}  # "N x more often above the level than static"
WINDOW_S = {"synthetic": 10.0, "maf": MAF_BIN_S}  # peak window W = evaluation window
FAMILY = {"synthetic": "unpredictable (no spikes)", "maf": "MAF-derived"}
METRICS = ("normalized_performance", "availability")


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 8  # evaluation episodes per policy and setting
    synthetic_requests: int = 60_000  # per episode, the paper-like workload
    peaks: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)  # peak rate / OPT-6.7B x4 capacity
    peak_horizon_s: float = 120.0  # unpredictable family: episode length (~4 segments)
    maf_minutes: int = 30  # MAF window: one pass per episode
    msr_peaks: tuple[float, ...] = tuple(np.geomspace(0.25, 32, 22).tolist())
    msr_requests: int = 20_000
    msr_seeds: int = 4
    population: Population = Population()


SMOKE = Config(
    seeds=2,
    synthetic_requests=2000,
    peaks=(2.0,),
    peak_horizon_s=10.0,
    maf_minutes=3,
    msr_peaks=(0.5, 2.0),
    msr_requests=500,
    msr_seeds=1,
    population=SMOKE_POPULATION,
)
QUICK = Config(
    seeds=4,
    synthetic_requests=25_000,
    peak_horizon_s=60.0,
    maf_minutes=15,
    msr_peaks=tuple(np.geomspace(0.25, 32, 15).tolist()),
    msr_requests=8000,
    msr_seeds=2,
    population=QUICK_POPULATION,
)
FULL = Config()


def _series(runs: dict, name: str) -> list:
    return runs[name]["series_per_seed"]


def _ratios(runs: dict, largest: str) -> dict:
    """Per level: router population / OPT-6.7B x4 time above (bootstrap over training seeds,
    episodes, windows), the shipped router's, and the population's vs the best static."""
    members = members_of(runs)
    grouped = [_series(runs, m) for m in members]
    statics = [n for n in runs if is_static(n)]
    out = {}
    for level in PAPER_LEVELS:
        best = max(statics, key=lambda n: runs[n][f"time_above_{level}"])
        out[str(level)] = {  # str keys: the same in memory and in the JSON
            "vs_largest": ratio_ci(grouped, _series(runs, largest), level / 100),
            "shipped_vs_largest": ratio_ci(
                _series(runs, SHIPPED), _series(runs, largest), level / 100
            ),
            "best_static": best,
            "vs_best_static": ratio_ci(grouped, _series(runs, best), level / 100),
        }
    return out


def _summary(runs: dict) -> dict:
    """{row: {metric: mean, metric_ci}}: the population pooled (two-level), others as run."""
    members = members_of(runs)
    out = {ROUTER: {}}
    for key in METRICS:
        mean, ci = pool_members([runs[m][f"{key}_per_seed"] for m in members], len(members))
        out[ROUTER] |= {key: float(mean), f"{key}_ci": ci.tolist()}
    for level in PAPER_LEVELS:
        key = f"time_above_{level}"
        out[ROUTER][key] = float(np.mean([runs[m][key] for m in members]))
    keep = (*METRICS, *(f"{k}_ci" for k in METRICS), "time_above_96", "time_above_98")
    for name, row in runs.items():
        if name not in members:
            out[name] = {k: row[k] for k in keep}
    return out


def _compact(runs: dict) -> None:
    """Drop the per-episode series once the ratios are computed (keeps the JSON small)."""
    for row in runs.values():
        row.pop("series_per_seed")


def _setting(config: Config, scenario, rows: dict, spec, n: int, window_s: float, keep: bool):
    """Every row on one workload, `config.seeds` episodes: summaries, ratios, stated peaks."""
    largest = alone_name(scenario, BIG)
    r = workload_runs(scenario, rows, spec, n, 0, window_s, keep_series=keep, seeds=config.seeds)
    out = {
        "summary": _summary(r["runs"]),
        "ratios": _ratios(r["runs"], largest),
        "stated_peak": stated_peak(spec, window_s),
        "peak_to_mean": peak_to_mean(spec, window_s),
        "realised_peak": realised_peaks(spec, n, range(config.seeds), window_s),
        "mean_rate": mean_rate(spec),
        "num_requests": r["num_requests"],
        "wall_s": r["wall_s"],
    }
    if keep:
        out["series"] = {k: (v["window_start_s"], v["series"]) for k, v in r["runs"].items()}
    _compact(r["runs"])
    return out


def _family_spec(family: str, peak_rate: float, counts) -> WorkloadSpec:
    if family == "synthetic":
        return unpredictable_peak_spec(peak_rate)
    return maf_peak_spec(peak_rate, counts)


def _family_requests(config: Config, family: str, spec: WorkloadSpec) -> int:
    """Requests per episode: the same expected horizon at every peak (the unpredictable
    family's `peak_horizon_s`; one pass over the MAF window)."""
    if family == "synthetic":
        return round(config.peak_horizon_s * mean_rate(spec))
    return maf_pass_requests(spec)


def _max_sustainable(config: Config, scenario, rows: dict, spec) -> dict:
    """Availability over the peak grid (a `scale_sweep` of the 1x-capacity workload), the
    max sustainable peak per row, and the population / OPT-6.7B x4 ratio with its range."""
    largest = alone_name(scenario, BIG)
    peaks = list(config.msr_peaks)
    res = scale_sweep(scenario, rows, spec, peaks, config.msr_requests, config.msr_seeds)
    names = res["policies"]
    per_seed = np.asarray(res["availability_per_seed"])  # (P, peaks, seeds)
    members = members_of(names)
    mean, ci = pool_members(per_seed[[names.index(m) for m in members]], len(members))
    curves = {n: np.asarray(res["availability"])[p] for p, n in enumerate(names)}
    curves[ROUTER] = mean
    msr = {n: max_sustainable_rate(peaks, a) for n, a in curves.items()}
    mine = [v or 0.0 for m in members for v in R.seed_msr(peaks, per_seed[names.index(m)])]
    theirs = R.seed_msr(peaks, per_seed[names.index(largest)]) * len(members)
    point = (msr[ROUTER], msr[largest])
    return {
        "peaks": peaks,
        "policies": names,
        "availability": res["availability"],
        "availability_ci": res["availability_ci"],
        "router_availability": mean.tolist(),
        "router_availability_ci": ci.tolist(),
        "max_sustainable_peak": msr,  # multiples of the OPT-6.7B x4 capacity
        "mean_rate_at_msr": {n: None if v is None else v * mean_rate(spec) for n, v in msr.items()},
        "ratio_vs_largest": R.ratio(msr[ROUTER], msr[largest]),
        "ratio_interval": R.msr_ratio_interval(mine, theirs, peaks, point),
        "num_requests": config.msr_requests,
        "seeds": config.msr_seeds,
        "wall_s": res["wall_s"],
    }


def compute(config: Config, run: Run) -> dict:
    """Train (cached) the population; the paper-like workload; both families across peaks."""
    scenario = get_scenario(SCENARIO)
    capacity = float(equal_hardware(scenario, BIG).capacity_per_model()[0])
    members, cost = router_population(run, run.hard_router, config.population)
    routers = {**members, SHIPPED: run.hard_router}
    spec = unpredictable_spec(scenario)
    main = _setting(
        config, scenario, with_baselines(scenario, routers), spec, config.synthetic_requests,
        WINDOW_S["synthetic"], keep=True,
    )  # fmt: skip
    rows = {**routers, "greedy": "greedy", alone_name(scenario, BIG): Alone(BIG)}
    counts = maf_window_counts(config.maf_minutes)
    peaks, msr = {}, {}
    for family in FAMILY:
        peaks[family] = {}
        for peak in config.peaks:
            fspec = _family_spec(family, peak * capacity, counts)
            n = _family_requests(config, family, fspec)
            keep = peak == config.peaks[len(config.peaks) // 2]
            level = _setting(config, scenario, rows, fspec, n, WINDOW_S[family], keep)
            peaks[family][str(peak)] = level
        base = _family_spec(family, capacity, counts)
        msr[family] = _max_sustainable(config, scenario, rows, base)
    return {
        "capacity_big_x4": capacity,
        "train_seeds": len(members),
        "train_cost": cost,
        "synthetic": {**main, "spec": dataclasses.asdict(spec)},
        "maf_counts": counts.tolist(),
        "peak_horizon_s": config.peak_horizon_s,
        "peaks": peaks,
        "msr": msr,
    }


def _label(data: dict, name: str) -> str:
    if name == ROUTER:
        return f"router ({data['train_seeds']} training seeds)"
    return static_label(get_scenario(SCENARIO), name)


def _style(name: str) -> dict:
    return {"color": "black", "ls": "-."} if name == SHIPPED else policy_style(name)


def _plot_series(ax, series: dict, title: str) -> None:
    """Windowed performance of the first episode, every row but the population's members
    after the first (whose series stands for the population)."""
    members = members_of(series)
    for name, (start, values) in series.items():
        if name in members[1:]:
            continue
        t = np.asarray(start)
        ax.plot(t - t[0], values, label=static_label(get_scenario(SCENARIO), name), **_style(name))
    for level in (0.96, 0.98):
        ax.axhline(level, color="grey", lw=0.6, ls=":")
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("windowed normalised perf")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _rate_axis(ax, spec: WorkloadSpec, series: dict, num_arrivals: int) -> None:
    """The offered rate on a twin axis (the first episode's draw)."""
    import jax

    t = np.asarray(next(iter(series.values()))[0])
    key = jax.random.split(jax.random.key(0))[0]
    rate = rate_at(spec, t, key=key, num_arrivals=num_arrivals)
    twin = ax.twinx()
    twin.plot(t - t[0], rate, color="black", lw=0.6, alpha=0.35)
    twin.set_ylabel("offered rate (req/s)", fontsize=8)
    twin.set_yscale("log")


def _kept(levels: dict) -> tuple[str, dict]:
    return next((p, v) for p, v in levels.items() if "series" in v)


def plot(data: dict, figures_dir: Path) -> list[str]:
    """Windowed series (paper-like synthetic, MAF-derived); availability and time-above
    ratios across the peak-to-capacity axis."""
    import matplotlib.pyplot as plt

    syn = data["synthetic"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 7.5))
    _plot_series(ax1, syn["series"], "paper-like synthetic workload (10 s windows); thin "
                 "black: offered rate")  # fmt: skip
    _rate_axis(ax1, WorkloadSpec(**syn["spec"]), syn["series"], syn["num_requests"])
    peak, maf = _kept(data["peaks"]["maf"])
    _plot_series(ax2, maf["series"], f"MAF-derived workload, peak {float(peak):g}x the "
                 "OPT-6.7B x4 capacity (windows = one trace minute = 2 s)")  # fmt: skip
    ax1.set_xlim(0, min(1500, ax1.get_xlim()[1]))
    ax2.set_xlabel("time (s)")
    ax1.legend(fontsize=7, ncol=6, loc="lower left")
    ax2.legend(fontsize=7, ncol=4, loc="lower left")
    series = save_figure(fig, figures_dir, "exp_02_unpredictable.png")
    return [series, _plot_peaks(data, figures_dir)]


def _plot_peaks(data: dict, figures_dir: Path) -> str:
    import matplotlib.pyplot as plt

    largest = alone_name(get_scenario(SCENARIO), BIG)
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for ax, family in zip(axes[:2], FAMILY, strict=True):
        msr = data["msr"][family]
        peaks = np.asarray(msr["peaks"])
        (line,) = ax.plot(
            peaks, msr["router_availability"], marker=".", label=_label(data, ROUTER), lw=2.2
        )
        ci = np.asarray(msr["router_availability_ci"])
        ax.fill_between(peaks, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.2)
        for p, name in enumerate(msr["policies"]):
            if name in (SHIPPED, "greedy", largest):
                ax.plot(peaks, msr["availability"][p], marker=".", label=name, **_style(name))
        ax.axhline(0.99, color="grey", ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("peak arrival rate / OPT-6.7B x4 capacity")
        ax.set_ylabel("availability (mean, 95 % interval)")
        ax.set_title(
            f"{FAMILY[family]}: {msr['num_requests']:,} requests x {msr['seeds']} seeds", fontsize=9
        )
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _plot_ratios(axes[2], data)
    fig.suptitle("Exp 2 — across the peak-to-capacity axis (grey dotted: the paper's 4.1x / 2.3x)")
    return save_figure(fig, figures_dir, "exp_02_peaks.png")


def _plot_ratios(ax, data: dict) -> None:
    """Population / OPT-6.7B x4 time-above ratios vs peak; an interval unbounded above is
    drawn to the top of the axes; undefined ratios (static never above) are left out."""
    top = 2 * max(PAPER.values())
    for family, marker in zip(FAMILY, "os", strict=True):
        for level, ls in zip(PAPER_LEVELS, ("-", "--"), strict=True):
            pts = [(float(p), v["ratios"][str(level)]["vs_largest"])
                   for p, v in data["peaks"][family].items()]  # fmt: skip
            pts = [(p, r) for p, r in pts if r["ratio"] is not None]
            y = np.asarray([r["ratio"] for _, r in pts])
            high = np.asarray([top if r["ci"][1] is None else r["ci"][1] for _, r in pts])
            low = np.asarray([r["ci"][0] for _, r in pts])
            top = max([top, *(1.1 * high)])
            ax.errorbar([p for p, _ in pts], y, yerr=[y - low, high - y], marker=marker, ls=ls,
                        capsize=3, label=f"{FAMILY[family]}, above {level} %")  # fmt: skip
    for value in PAPER.values():
        ax.axhline(value, color="grey", lw=0.6, ls=":")
    ax.axhline(1.0, color="black", lw=0.6)
    ax.set_ylim(0, top)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("peak arrival rate / OPT-6.7B x4 capacity")
    ax.set_ylabel(
        f"time above X % of peak perf: router / {alone_name(get_scenario(SCENARIO), BIG)}"
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _ci(row: dict, key: str) -> str:
    return f"{row[key]:.3f} {format_interval(row[f'{key}_ci'], 3)}"


def _main_table(data: dict) -> str:
    rows = data["synthetic"]["summary"]
    head = ["policy", "normalised perf", "availability", "time above 96 %", "time above 98 %"]
    body = [
        [_label(data, n), _ci(r, "normalized_performance"), _ci(r, "availability"),
         R.fx(r["time_above_96"]), R.fx(r["time_above_98"])]
        for n, r in rows.items()
    ]  # fmt: skip
    return R.markdown_table(head, body)


def _realised(level: dict) -> str:
    peaks = np.asarray(level["realised_peak"]) / level["stated_peak"]
    if np.allclose(peaks, 1.0):
        return "= stated"
    return f"{peaks.mean():.2f} [{peaks.min():.2f}, {peaks.max():.2f}]"


def _peaks_table(data: dict) -> str:
    largest = alone_name(get_scenario(SCENARIO), BIG)
    head = [
        "workload", "peak / capacity (req/s)", "peak / mean", "realised peak / stated",
        "router availability", f"{largest} availability", "router perf", f"{largest} perf",
        "ratio above 96 %", "ratio above 98 %",
    ]  # fmt: skip
    body = []
    for family, levels in data["peaks"].items():
        for peak, v in levels.items():
            s, r = v["summary"], v["ratios"]
            body.append([
                FAMILY[family], f"{float(peak):g}x ({v['stated_peak']:.0f})",
                f"{v['peak_to_mean']:.2f}", _realised(v),
                _ci(s[ROUTER], "availability"), _ci(s[largest], "availability"),
                _ci(s[ROUTER], "normalized_performance"),
                _ci(s[largest], "normalized_performance"),
                _ratio(r["96"]["vs_largest"]), _ratio(r["98"]["vs_largest"]),
            ])  # fmt: skip
    return R.markdown_table(head, body)


def _msr_table(data: dict) -> str:
    largest = alone_name(get_scenario(SCENARIO), BIG)
    names = [ROUTER, SHIPPED, "greedy", largest]
    head = ["workload", *(_label(data, n) for n in names), "router / OPT-6.7B x4"]
    body = []
    for family, m in data["msr"].items():
        cells = [
            f"{R.fx(m['max_sustainable_peak'][n], 2, 'x')} ({R.fx(m['mean_rate_at_msr'][n], 0)})"
            for n in names
        ]
        body.append([FAMILY[family], *cells, _msr_ratio(m)])
    return R.markdown_table(head, body)


def _msr_ratio(m: dict) -> str:
    interval = m["ratio_interval"]
    text = format_interval(interval) if interval else "[n/a]"
    return f"{R.fx_ratio(m['ratio_vs_largest'])} {text}"


def _ratio(r: dict) -> str:
    return format_ratio(r, "undefined (OPT-6.7B x4 never above)")


def _curve(data: dict, family: str, level: int) -> str:
    levels = data["peaks"][family]
    return ", ".join(
        f"{float(p):g}x: {_ratio(v['ratios'][str(level)]['vs_largest'])}" for p, v in levels.items()
    )


def _level_verdict(data: dict, level: int) -> str:
    """Which settings reproduce the paper's ratio (population vs OPT-6.7B x4), by `R.verdict`."""

    def pair(r: dict):
        return r["ratio"], tuple(r["ci"])

    settings = {"paper-like": pair(data["synthetic"]["ratios"][str(level)]["vs_largest"])}
    for family, levels in data["peaks"].items():
        for p, v in levels.items():
            settings[f"{FAMILY[family]} {float(p):g}x"] = pair(
                v["ratios"][str(level)]["vs_largest"]
            )
    return R.settings_verdict(settings, PAPER[level])


def write_up(data: dict, figures: list[str]) -> dict:
    """Tables for every setting and the three claims rows."""
    largest = alone_name(get_scenario(SCENARIO), BIG)
    syn, cap = data["synthetic"], data["capacity_big_x4"]
    spec = WorkloadSpec(**syn["spec"])
    cost = data["train_cost"]
    md = [
        f"Router: a population of {data['train_seeds']} routers trained with the shipped "
        f"`checkpoints/opt-a100x4-hard`'s exact config ({cost['env_steps']:,} env steps in "
        f"all, {cost['wall_s']:.0f} s); `router` rows are its mean with a two-level 95 % "
        "interval (Student t over training seeds' means; time-above ratios: bootstrap over "
        "training seeds, then episodes, then windows); `shipped router` is the shipped "
        f"checkpoint. Capacity C = {largest}'s on-time capacity, {cap:.0f} req/s. *Peak* = "
        "the largest offered arrival rate averaged over W seconds (W = 10 s for the "
        "synthetic workloads, one trace minute = 2 s for MAF; docs/workloads.md).",
        "",
        f"Paper-like synthetic workload: {syn['num_requests']:,} requests x "
        f"{len(syn['realised_peak'])} episodes (mean offered rate {mean_rate(spec):.0f} req/s, "
        f"stated peak {syn['stated_peak']:.0f} req/s = {syn['stated_peak'] / cap:.1f}x C, "
        f"peak / mean {syn['peak_to_mean']:.1f}; realised peak / stated {_realised(syn)}); "
        f"all policies on the same arrivals ({syn['wall_s']:.0f} s).",
        "",
        f"![exp 2]({figures[0]})",
        "",
        _main_table(data),
        "",
    ]
    for level in PAPER_LEVELS:
        r = syn["ratios"][str(level)]
        md.append(
            f"* Above {level} % of peak performance: router vs {largest} "
            f"**{_ratio(r['vs_largest'])}** (shipped router {_ratio(r['shipped_vs_largest'])})"
            f"; vs the static deployment most often above "
            f"({static_label(get_scenario(SCENARIO), r['best_static'])}) "
            f"{_ratio(r['vs_best_static'])} (paper: {PAPER[level]}x)."
        )
    md += [
        "",
        f"Across the peak-to-capacity axis ({len(syn['realised_peak'])} episodes per setting, "
        f"each about {data['peak_horizon_s']:g} s long for the unpredictable family and one "
        f"pass over the {len(data['maf_counts'])}-minute MAF window "
        f"({len(data['maf_counts']) * MAF_BIN_S:g} s) at every peak; the unpredictable family "
        "draws new segments per episode, so its realised peak varies below the stated one; "
        "the MAF-derived schedule is the same in every episode, only its Poisson arrivals "
        "differ):",
        "",
        f"![exp 2 peaks]({figures[1]})",
        "",
        _peaks_table(data),
        "",
        "Max sustainable peak (highest peak on a geometric grid at which availability >= "
        f"0.99, as a multiple of C; {data['msr']['synthetic']['num_requests']:,} requests per "
        "episode at every peak, so higher peaks are shorter episodes; in brackets the mean "
        "offered rate there, req/s; the "
        "ratio's interval is its range over training seeds x episodes widened by the grid's "
        "resolution):",
        "",
        _msr_table(data),
    ]
    claims = [
        R.claim(
            f"Above {level} % of peak N x more often than static (unpredictable)",
            f"{PAPER[level]}x",
            f"paper-like synthetic: {_ratio(syn['ratios'][str(level)]['vs_largest'])} vs "
            f"{largest}; by peak / C, unpredictable: {_curve(data, 'synthetic', level)}; "
            f"MAF-derived: {_curve(data, 'maf', level)} ({data['train_seeds']} training seeds)",
            "Exp 2: windowed normalised performance, peak-to-capacity swept",
            _level_verdict(data, level),
        )
        for level in PAPER_LEVELS
    ]
    msr = data["msr"]
    claims.append(
        R.claim(
            "Available at > 10x higher request rates than static (unpredictable)",
            "> 10x",
            "; ".join(f"{FAMILY[f]}: {_msr_ratio(m)} vs {largest} (max sustainable peak "
                      f"{R.fx(m['max_sustainable_peak'][ROUTER], 2, 'x')} vs "
                      f"{R.fx(m['max_sustainable_peak'][largest], 2, 'x')} C)"
                      for f, m in msr.items()),
            "Exp 2: peak grid of each workload family, equal hardware",
            _msr_verdict(msr),
        )
    )  # fmt: skip
    return {"claims": claims, "markdown": "\n".join(md)}


def _msr_verdict(msr: dict) -> str:
    settings = {}
    for family, m in msr.items():
        interval = tuple(m["ratio_interval"]) if m["ratio_interval"] else None
        settings[FAMILY[family]] = (m["ratio_vs_largest"], interval)
    return R.settings_verdict(settings, 10.0)


def discussion(d: dict) -> str:
    """The results.md paragraph on Exp 2 (comparisons read from the data)."""
    r96 = d["synthetic"]["ratios"]["96"]["vs_largest"]
    r98 = d["synthetic"]["ratios"]["98"]["vs_largest"]
    msr = d["msr"]
    return (
        "**Where the headline ratios come from (Exp 2).** 'N x more often above 96 % of peak "
        "than static' is a ratio of two fractions of time, and the static denominator depends "
        "on how often the offered rate exceeds the static deployment's capacity. Against "
        f"OPT-6.7B on all four GPUs (equal hardware), over {d['train_seeds']} training seeds, "
        f"the paper-like synthetic workload gives {_ratio(r96)} above 96 % and {_ratio(r98)} "
        "above 98 % (paper 4.1x / 2.3x). With the peak stated and swept (1x to 8x the "
        f"capacity), above 96 %: unpredictable {_curve(d, 'synthetic', 96)}; MAF-derived "
        f"{_curve(d, 'maf', 96)}. The ratio is a property of the workload-to-capacity ratio "
        "rather than a fixed constant, and is undefined where the static deployment never "
        "gets there. Max sustainable peak, router / OPT-6.7B x4: "
        + "; ".join(f"{FAMILY[f]} {_msr_ratio(m)}" for f, m in msr.items())
        + " (paper > 10x) with routers that price no miss; Exp 10 trains routers that do."
    )


def main(config: Config, run: Run) -> dict:
    """compute -> plot -> write-up -> docs/experiments/02_unpredictable.json."""
    return run_pipeline(__name__, config, run)


if __name__ == "__main__":
    from jaxserve.commands.reproduce import run_script

    raise SystemExit(run_script(NAME))
