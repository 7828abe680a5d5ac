"""`jaxserve plan`: command-line arguments -> `PlanConfig`; table or JSON out, files under --out.

The argparse namespace stops here; `jaxserve.evaluation.plan` takes the typed config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from jaxserve.argtypes import positive_int, seed
from jaxserve.commands.scenario import add_miss_penalty, with_overrides
from jaxserve.errors import InputError

PLAN_JSON = "plan.json"
PLAN_FIGURE = "plan.png"
PLACEMENT_TOML = "placement.toml"


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1]")
    return value


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    """The `plan` flags (besides --scenario, the zoo, and --json)."""
    p.add_argument("--gpus", type=positive_int, default=4, help="GPUs to place models on (N)")
    p.add_argument(
        "--rates",
        default=None,
        help="the workload's rates: R1,R2,... or LO:HI:N geometric (default: 6 rates from 1/10 "
        "to 2x the best model's on-time capacity on all N GPUs)",
    )
    p.add_argument(
        "--workload",
        default=None,
        help="workload kind as for sweep (KIND[:field=value,...]); each rate is its long-run "
        "mean rate. None: Poisson",
    )
    p.add_argument("--mix", default=None, help="task mix, slash-separated (default: the zoo's)")
    p.add_argument(
        "--deadline-scale", type=float, default=1.0, help="factor on every task deadline"
    )
    p.add_argument(
        "--models", default=None, help="comma-separated subset of the zoo's models (default: all)"
    )
    p.add_argument(
        "--hardware", default="a100", help="GPU kind whose memory decides GPUs per replica"
    )
    p.add_argument(
        "--memory-gb",
        default=None,
        help="NAME=GB,... memory of one replica of a model (default: the roofline's OPT "
        "weights + full-batch KV; required for non-OPT models)",
    )
    p.add_argument(
        "--placement",
        action="append",
        default=[],
        help="a placement to always simulate, replicas per zoo model, e.g. 1/1/2 (repeatable)",
    )
    p.add_argument("--num-requests", type=positive_int, default=4000, help="arrivals per run")
    p.add_argument("--seeds", type=positive_int, default=8, help="workload seeds per rate (>= 2)")
    p.add_argument(
        "--max-simulated", type=positive_int, default=8, help="placements simulated at most"
    )
    p.add_argument(
        "--train-top",
        type=int,
        default=None,
        help="learned routers for the best K simulated placements, trained together in one "
        "population (default: all simulated; 0: none)",
    )
    p.add_argument(
        "--train-seeds", type=positive_int, default=1, help="seeds per placement's router"
    )
    p.add_argument(
        "--train-steps", type=positive_int, default=300_000, help="env steps per trained router"
    )
    p.add_argument("--seed", type=seed, default=0, help="training seed")
    p.add_argument(
        "--finetune-from",
        default=None,
        help="router checkpoint of the zoo every placement's router starts from",
    )
    p.add_argument(
        "--min-performance", type=_fraction, default=None, help="target: normalised performance"
    )
    p.add_argument("--min-availability", type=_fraction, default=None, help="target: availability")
    add_miss_penalty(p)
    p.add_argument(
        "--out",
        default=None,
        help="directory: plan.json, plan.png, placement.toml, router/ (the chosen checkpoint)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _memory(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--memory-gb {text!r}: expected NAME=GB,...") from None
    return out


def plan_config(args):
    """The `plan` arguments as a PlanConfig (zoo resolved, --miss-penalty applied)."""
    from jaxserve.commands.sweep import parse_floats, parse_rates
    from jaxserve.evaluation.plan import PLAN_DQN, PlanConfig
    from jaxserve.sim.scenarios import get_scenario

    zoo = with_overrides(get_scenario(args.scenario), args)
    rates = None if args.rates is None else tuple(parse_rates(args.rates, zoo).tolist())
    return PlanConfig(
        scenario=zoo,
        gpus=args.gpus,
        rates=rates,
        workload=args.workload,
        task_mix=None if args.mix is None else tuple(parse_floats("--mix", args.mix, "/")),
        deadline_scale=args.deadline_scale,
        models=None if args.models is None else tuple(args.models.split(",")),
        hardware=args.hardware,
        memory_gb=_memory(args.memory_gb),
        include=tuple(args.placement),
        num_requests=args.num_requests,
        seeds=args.seeds,
        max_simulated=args.max_simulated,
        train_top=args.train_top,
        train_seeds=args.train_seeds,
        dqn=dataclasses.replace(PLAN_DQN, total_env_steps=args.train_steps),
        finetune_from=args.finetune_from,
        seed=args.seed,
        min_performance=args.min_performance,
        min_availability=args.min_availability,
    )


def cmd_plan(args) -> int:
    from jaxserve.evaluation.plan import plan
    from jaxserve.evaluation.plan_report import format_plan, plan_json
    from jaxserve.progress import progress_bar

    config = plan_config(args)
    with progress_bar(None, "plan", "runs", not args.no_progress) as bar:
        result = plan(config, args.out, bar.update)
    data = plan_json(result)
    print(json.dumps(data) if args.json else format_plan(result))
    if args.out:
        write_outputs(result, data, Path(args.out))
    return 0


def write_outputs(result, data: dict, out: Path) -> None:
    """plan.json, plan.png and the chosen placement's scenario TOML under `out`."""
    from jaxserve.evaluation.placements import placement_scenario
    from jaxserve.evaluation.plan_report import plot_plan
    from jaxserve.io_utils import write_json_atomic, write_text_atomic
    from jaxserve.sim.scenarios import scenario_to_toml

    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / PLAN_JSON, data)
    plot_plan(result, str(out / PLAN_FIGURE))
    chosen = placement_scenario(result.zoo, result.chosen.placement)
    write_text_atomic(out / PLACEMENT_TOML, scenario_to_toml(chosen))
