"""`jaxserve train` and `jaxserve evaluate` (argument parsing and output; docs/spec.md §7)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from jaxserve.argtypes import positive_int, rate, seed
from jaxserve.commands.scenario import add_availability_target, add_miss_penalty, with_overrides
from jaxserve.commands.sweep import parse_floats
from jaxserve.errors import InputError
from jaxserve.rl.config import (
    CREDITS,
    HPARAM_NAMES,
    TRAIN_MIXES,
    TRAIN_WORKLOADS,
    DQNConfig,
    finetune_overrides,
)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out",
        required=True,
        help="checkpoint directory (resumes if it holds an unfinished run of the same arguments)",
    )
    p.add_argument("--steps", type=positive_int, default=1_200_000, help="env steps per router")
    p.add_argument("--seeds", type=positive_int, default=1, help="routers trained in parallel")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed of the population")
    p.add_argument("--finetune-from", default=None, help="router checkpoint to start from")
    p.add_argument(
        "--deadline-kind",
        choices=("hard", "soft"),
        default=None,
        help="override the scenario's deadline kind (soft: no expiry drops)",
    )
    add_miss_penalty(p)
    p.add_argument("--hparams", default="", help=f"NAME=VALUE,... among {', '.join(HPARAM_NAMES)}")
    p.add_argument(
        "--search",
        default="",
        help="hyperparameter search: NAME=V1/V2/... (a grid axis) or NAME=uniform:LO:HI / "
        "NAME=loguniform:LO:HI (--samples random draws), items separated by ';'; grid x "
        "draws x --seeds members in one population; the best by held-out evaluation is kept",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=1,
        help="random points drawn from the ranges of --search (seeded by --seed)",
    )
    p.add_argument(
        "--log-csv", default=None, help="append each chunk's metrics (a row per member) here"
    )
    p.add_argument(
        "--tensorboard",
        default=None,
        help="write TensorBoard scalars to this directory (extra: jaxserve[tensorboard])",
    )
    p.add_argument(
        "--credit",
        choices=CREDITS,
        default="decision",
        help="decision: each request's utility credited to the decision that routed it; "
        "completion: utilities resolved between two decisions credited to the first",
    )
    p.add_argument(
        "--train-workload",
        choices=TRAIN_WORKLOADS,
        default="loguniform",
        help="training arrivals: Poisson at a log-uniform rate per episode, or the "
        "unpredictable workload",
    )
    p.add_argument(
        "--train-mix",
        choices=TRAIN_MIXES,
        default="fixed",
        help="task mix of training episodes: the scenario's, or a flat-Dirichlet draw per "
        "episode (robust to mixes the router was not shown)",
    )
    p.add_argument(
        "--knob-range",
        default=None,
        help="LOW,HIGH: train a knob router (docs/knob.md): each episode draws its miss "
        "penalty in [LOW, HIGH] and the router observes it; calibrated for "
        "--availability-target after training",
    )
    p.add_argument(
        "--num-envs",
        type=positive_int,
        default=None,
        help="vmapped envs per router (None: config's)",
    )
    p.add_argument(
        "--episode-length",
        type=positive_int,
        default=None,
        help="arrivals per episode (None: config's)",
    )
    p.add_argument(
        "--episodes-per-chunk",
        type=positive_int,
        default=None,
        help="episodes between checkpoints (None: config's)",
    )
    p.add_argument("--hidden", default=None, help="hidden widths, e.g. 256,256")
    p.add_argument(
        "--keep-state",
        action="store_true",
        help="keep the full learner state (replay included) after finishing",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="router checkpoint directory")
    p.add_argument("--scenario", default=None, help="default: the checkpoint's own scenario")
    add_miss_penalty(p)
    add_availability_target(p)
    p.add_argument(
        "--workload",
        default=None,
        help="one workload (KIND[:field=value,...]); default: the Poisson rate grid "
        "and the 'unpredictable' workload",
    )
    p.add_argument("--rate", type=rate, default=None, help="arrival rate of --workload")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed of the workload")
    p.add_argument(
        "--num-requests", type=positive_int, default=None, help="arrivals per run (None: by mode)"
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=8,
        help="episodes per Poisson grid point and per policy on the unpredictable workload "
        "(intervals are over these)",
    )
    p.add_argument("--quick", action="store_true", help="smaller runs (smoke tests)")
    p.add_argument("--out", default=None, help="write STEM.json and STEM-*.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def parse_assignments(text: str, flag: str) -> dict:
    """`a=1,b=2` -> {"a": 1.0, "b": 2.0}."""
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"{flag} item {item!r}: expected NAME=VALUE")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"{flag} {name.strip()}={value!r}: expected a number") from None
    return out


def _int_hparams(d: dict) -> dict:
    return {k: int(v) if k == "target_period" else v for k, v in d.items()}


def training_scenario(args):
    from jaxserve.sim.scenarios import get_scenario

    scenario = with_overrides(get_scenario(args.scenario), args)
    if args.deadline_kind and args.deadline_kind != scenario.deadline_kind:
        scenario = dataclasses.replace(
            scenario,
            deadline_kind=args.deadline_kind,
            drop_expired=args.deadline_kind == "hard",
            name=f"{scenario.name}-{args.deadline_kind}",
        )
    return scenario


def training_config(args) -> DQNConfig:
    changes = {
        "total_env_steps": args.steps,
        "credit": args.credit,
        "train_workload": args.train_workload,
        "train_mix": args.train_mix,
    }
    for flag in ("num_envs", "episode_length", "episodes_per_chunk"):
        if getattr(args, flag) is not None:
            changes[flag] = getattr(args, flag)
    if args.knob_range:
        changes["knob_range"] = tuple(parse_floats("--knob-range", args.knob_range))
    if args.hidden:
        try:
            changes["hidden"] = tuple(int(h) for h in args.hidden.split(","))
        except ValueError:
            raise InputError(f"--hidden {args.hidden!r}: expected widths like 256,256") from None
    return DQNConfig(**changes)


def cmd_train(args) -> int:
    """Train; print a summary (JSON with --json); write DIR/members.csv."""
    from jaxserve.evaluation import TrainConfig, parse_search, train
    from jaxserve.evaluation.chunk_log import chain
    from jaxserve.locks import locked_directory

    if args.seeds < 1 or args.steps < 1 or args.samples < 1:
        raise InputError(
            f"--seeds {args.seeds} / --steps {args.steps} / --samples {args.samples}: expected >= 1"
        )
    scenario = training_scenario(args)
    base = _int_hparams(parse_assignments(args.hparams, "--hparams"))
    base = finetune_overrides(base, args.finetune_from)
    config = TrainConfig(
        scenario=scenario,
        dqn=training_config(args),
        hparams=base,
        search=parse_search(args.search, args.samples, args.seed),
        seeds=args.seeds,
        seed=args.seed,
        finetune_from=args.finetune_from,
    )
    # Two runs on one --out would overwrite each other's checkpoints: the second exits 2.
    with locked_directory(args.out):
        loggers = chunk_loggers(args)
        try:
            result = train(
                config,
                args.out,
                chain(loggers),
                progress=not args.no_progress,
                keep_state=args.keep_state,
            )
        finally:
            for logger in loggers:
                getattr(logger, "close", lambda: None)()
    summary = result.summary
    finished = summary["chunks_done"] == summary["num_chunks"]
    if config.dqn.knob_range and finished:
        from jaxserve.evaluation.knob import calibrate_knob

        calibrate_knob(args.out)
        summary["knob_calibrated"] = True
    if args.search and finished:
        from jaxserve.evaluation.evaluate import select_best_member

        summary["held_out"] = select_best_member(args.out, scenario)
        _add_held_out(result.members, summary["held_out"], args.out)
    print(json.dumps(summary) if args.json else _format_summary(summary))
    return 0


def chunk_loggers(args) -> list:
    """The --log-csv and --tensorboard callbacks (an InputError naming the missing extra)."""
    from jaxserve.evaluation.chunk_log import CsvLog, TensorBoardLog

    loggers = [CsvLog(args.log_csv)] if args.log_csv else []
    if args.tensorboard:
        try:
            loggers.append(TensorBoardLog(args.tensorboard))
        except ImportError as err:
            raise InputError(f"--tensorboard: {err}") from None
    return loggers


def _add_held_out(members, held_out: dict, out_dir) -> None:
    """members.csv with each member's held-out score and the chosen member."""
    from pathlib import Path

    from jaxserve.evaluation.train import MEMBERS_FILE

    for row, score in zip(members, held_out["held_out_score"], strict=True):
        row["held_out_score"] = score
        row["best"] = row["member"] == held_out["best_member"]
    members.to_csv(Path(out_dir) / MEMBERS_FILE)


def _format_summary(s: dict) -> str:
    lines = [
        f"trained {s['env_steps']:,} env steps in {s['wall_s']:.1f} s "
        f"({s['chunks_done']}/{s['num_chunks']} chunks) -> {s['out_dir']}"
    ]
    if "eval_mean" in s:
        lines.append(
            "eval mean normalised performance per member: "
            + ", ".join(f"{v:.4f}" for v in s["eval_mean"])
        )
    if "held_out" in s:
        lines.append(f"best member by held-out evaluation: {s['held_out']['best_member']}")
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    """Router vs baselines: tables (or JSON), optional JSON + plots."""
    from jaxserve.evaluation import comparison as ev
    from jaxserve.progress import progress_bar
    from jaxserve.rl.policy import load_checkpoint_scenario, load_learned_policy
    from jaxserve.sim.parse import parse_workload
    from jaxserve.sim.scenarios import get_scenario

    scenario = with_overrides(
        get_scenario(args.scenario) if args.scenario else load_checkpoint_scenario(args.checkpoint),
        args,
    )
    result = {"checkpoint": args.checkpoint, "scenario": scenario.name}
    one_workload = bool(args.workload or args.rate)
    spec = parse_workload(args.workload, scenario.workload, args.rate) if one_workload else None
    router = load_learned_policy(
        args.checkpoint,
        scenario,
        availability_target=args.availability_target,
        knob_schedule=spec.knob_schedule if spec else None,
    )
    rows = len(ev.policy_names(scenario)) + scenario.num_models  # + equal-hardware statics
    runs = len(ev.policy_names(scenario)) if one_workload else rows + 1  # + the Poisson sweep
    with progress_bar(runs, "evaluate", "run", not args.no_progress) as bar:
        if one_workload:
            runs = ev.workload_comparison(
                router, scenario, spec, args.num_requests or 20_000, args.seed, bar.update
            )
            result["workload"] = runs
            text = _format_workload(runs)
        else:
            n = args.num_requests or (1000 if args.quick else 4000)
            poisson = ev.poisson_comparison(
                router, scenario, num_requests=n, seeds=1 if args.quick else args.seeds
            )
            bar.update(1)
            unpred = ev.unpredictable_comparison(
                router,
                scenario,
                num_requests=2500 if args.quick else 25_000,
                seed=args.seed,
                on_run=bar.update,
                seeds=2 if args.quick else args.seeds,
            )
            result.update(poisson=poisson, unpredictable=unpred)
            text = ev.format_poisson(poisson) + "\n\n" + ev.format_unpredictable(unpred)
    print(json.dumps(result) if args.json else text, flush=True)  # before a write can fail
    if args.out:
        from jaxserve.io_utils import write_json_or_print

        write_json_or_print(f"{args.out}.json", result, printed=True)
        ev.plot_evaluation(result, args.out)
    return 0


def _format_workload(runs: dict) -> str:
    keys = ("normalized_performance", "availability", "time_above_96", "time_above_98")
    lines = [f"{'policy':<18}" + "".join(f"{k[:14]:>16}" for k in keys)]
    for name, r in runs.items():
        lines.append(f"{name:<18}" + "".join(f"{r[k]:>16.4f}" for k in keys))
    return "\n".join(lines)


def add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a knob router checkpoint (trained with --knob-range)")
    p.add_argument("--rates", type=positive_int, default=12, help="Poisson rates in the table")
    p.add_argument("--knobs", type=positive_int, default=8, help="knob values in the table")
    p.add_argument("--seeds", type=positive_int, default=4, help="episodes per table cell")
    p.add_argument("--num-requests", type=positive_int, default=2000, help="arrivals per episode")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def cmd_calibrate_knob(args) -> int:
    """Measure a knob router's availability table into its checkpoint; print it."""
    from jaxserve.evaluation.knob import calibrate_knob

    table = calibrate_knob(args.checkpoint, args.rates, args.knobs, args.seeds, args.num_requests)
    if args.json:
        print(json.dumps(table.to_json()))
        return 0
    print("availability (rows: Poisson rate, req/s; columns: knob)")
    print(f"{'rate':>8}" + "".join(f"{k:>8.2f}" for k in table.knobs))
    for per_s, row in zip(table.rates, table.availability, strict=True):
        print(f"{per_s:>8.0f}" + "".join(f"{a:>8.3f}" for a in row))
    return 0
