"""`jaxserve sweep` and `jaxserve plot-training`: command-line arguments -> typed configs.

The argparse namespaces stop here; everything below takes `SweepConfig`/paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxserve.commands.scenario import with_overrides
from jaxserve.errors import InputError
from jaxserve.evaluation.grid import num_chunks
from jaxserve.evaluation.sweep import (
    SweepConfig,
    build_policies,
    knob_slices,
    resolve_workload,
    run_sweep_grid,
    seed_means,
    sweep_records,
)
from jaxserve.limits import MAX_PENALTY
from jaxserve.progress import progress_bar
from jaxserve.sim.scenarios import Scenario, get_scenario

TRAINING_PLOT = "training.png"


def parse_rates(text: str | None, scenario: Scenario) -> np.ndarray:
    """`R1,R2,...` or `LO:HI:N` (geometric); the scenario's default grid when empty."""
    from jaxserve.evaluation.grid import default_rates

    if not text:
        return default_rates(scenario)
    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            rates = np.geomspace(float(lo), float(hi), int(n))
        else:
            rates = np.asarray([float(r) for r in text.split(",")])
    except ValueError:
        raise InputError(f"--rates {text!r}: expected R1,R2,... or LO:HI:N") from None
    if rates.size == 0 or not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise InputError(f"--rates {text!r}: expected positive finite rates")
    return rates


def parse_floats(flag: str, text: str, sep: str = ",") -> list[float]:
    """Numbers separated by `sep`; `--deadline-scales` must be positive."""
    try:
        values = [float(v) for v in text.split(sep)]
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected numbers separated by {sep!r}") from None
    if not all(np.isfinite(values)) or min(values) <= 0 and flag == "--deadline-scales":
        raise InputError(f"{flag} {text!r}: expected positive finite numbers")
    return values


def sweep_config(args) -> SweepConfig:
    """The `jaxserve sweep` arguments as a SweepConfig (scenario resolved)."""
    from jaxserve.policies.baselines import baseline_names

    scenario = with_overrides(get_scenario(args.scenario), args)
    names = args.policies.split(",") if args.policies else baseline_names(scenario.model_names)
    mixes = None
    if args.mixes:
        mixes = [parse_floats("--mixes", m, "/") for m in args.mixes.split(";")]
    return SweepConfig(
        scenario=scenario,
        policies=names,
        rates=[float(r) for r in parse_rates(args.rates, scenario)],
        mixes=mixes,
        deadline_scales=parse_floats("--deadline-scales", args.deadline_scales),
        num_requests=args.num_requests,
        seeds=args.seeds,
        workload=args.workload,
        miss_penalties=parse_penalties(args.miss_penalties),
        availability_target=args.availability_target,
    )


def parse_penalties(text: str | None) -> list[float] | None:
    """`--miss-penalties P1,P2,...` (each a valid --miss-penalty), or None."""
    if text is None:
        return None
    values = parse_floats("--miss-penalties", text)
    if not all(0 <= v <= MAX_PENALTY for v in values):
        raise InputError(f"--miss-penalties {text!r}: expected penalties in [0, {MAX_PENALTY:g}]")
    return values


def cmd_sweep(args) -> int:
    """`jaxserve sweep`: table (or JSON); with --out, STEM.json, STEM.csv and STEM.png."""
    from jaxserve.evaluation.bounds import sweep_bound

    config = sweep_config(args)
    scenario = config.scenario
    chunks = num_chunks(config.num_runs, config.chunk_lanes)
    with progress_bar(chunks, "sweep", "call", not args.no_progress) as bar:
        policies = build_policies(
            list(config.policies), scenario, config.availability_target, config.miss_penalties
        )
        per_seed, _ = run_sweep_grid(config, policies, bar.update)
    result = seed_means(per_seed)
    spec = resolve_workload(config.workload, scenario)
    result["workload"] = args.workload or "poisson"
    result.update(
        sweep_bound(scenario, spec, config.rates, result["mixes"], config.deadline_scales)
    )
    if args.out:
        from jaxserve.io_utils import write_json_atomic
        from jaxserve.plots import plot_front, plot_sweep

        write_json_atomic(f"{args.out}.json", result)
        sweep_records(per_seed, scenario).to_csv(f"{args.out}.csv")
        plot = plot_front if config.miss_penalties else plot_sweep
        plot(result, f"{args.out}.png")
    print(json.dumps(result) if args.json else format_knob_sweep(result))
    return 0


def format_knob_sweep(result: dict) -> str:
    """`format_sweep`, one block per miss penalty when the sweep has a knob axis."""
    from jaxserve.evaluation.grid import format_sweep

    blocks = []
    for knob, part in knob_slices(result):
        head = "" if knob is None else f"miss penalty (knob) {knob:g}:\n"
        blocks.append(head + format_sweep(part))
    return "\n\n".join(blocks)


def cmd_plot_training(args) -> int:
    """`jaxserve plot-training RUN_DIR`: the training curves of a run as a PNG."""
    from jaxserve.rl.plots import plot_training
    from jaxserve.rl.trainer import METRICS_FILE

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise InputError(f"plot-training: run directory {run_dir}: not found")
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file() or not metrics.read_text().strip():
        raise InputError(f"plot-training: {metrics}: no training metrics (not a training run?)")
    out = Path(args.out) if args.out else run_dir / TRAINING_PLOT
    plot_training(metrics, out, label=args.label or run_dir.name)
    print(f"training curves of {run_dir} written to {out}")
    return 0
