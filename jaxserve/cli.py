"""`jaxserve` command line (docs/spec.md §7).

Bad input: one line on stderr, exit status 2 (docs/spec.md §8).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from jaxserve import __version__
from jaxserve.argtypes import positive_int, rate, seconds, seed
from jaxserve.errors import InputError
from jaxserve.host import configure_cpu_devices
from jaxserve.io_utils import check_output

EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away
_DIRECTORY_OUT = ("train", "plan")  # commands whose --out is a directory (others: a file/stem)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message instead of usage + message, defaults in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        command = self.prog.removeprefix("jaxserve").strip()  # main() prints "jaxserve: error:"
        raise InputError(f"{command}: {message}" if command else message)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scenario",
        default="opt-a100x4",
        help="built-in scenario name or TOML file",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_workload(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workload",
        default=None,
        help="KIND[:field=value,...], e.g. poisson, gamma:cv=4, unpredictable, "
        "trace:name=azure_llm_2023_code (a shipped trace) or "
        "trace:trace_path=FILE,trace_format=maf2019 (default: the scenario's)",
    )
    p.add_argument(
        "--rate", type=rate, default=None, help="arrival rate, arrivals/s (None: the workload's)"
    )
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed of the workload and the run")


def build_parser() -> argparse.ArgumentParser:
    from jaxserve.commands.scenario import add_availability_target, add_miss_penalty

    parser = _Parser(prog="jaxserve", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jaxserve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("simulate", help="one evaluation run; prints the docs/spec.md §4 metrics")
    _add_common(p)
    _add_workload(p)
    p.add_argument(
        "--policy",
        default="greedy",
        help="static:K | static:MODEL | random | round-robin | jsq | greedy | lp | "
        "checkpoint directory",
    )
    p.add_argument(
        "--num-requests", type=positive_int, default=20_000, help="arrivals in the episode"
    )
    p.add_argument("--window-s", type=seconds, default=None, help="window of windowed metrics, s")
    add_miss_penalty(p)
    add_availability_target(p)

    p = sub.add_parser("sweep", help="policy x rate x mix x deadline grid in one vmapped call")
    _add_common(p)
    p.add_argument(
        "--policies", default=None, help="comma-separated policies (default: every baseline)"
    )
    p.add_argument(
        "--rates",
        default=None,
        help="comma-separated rates, or LO:HI:N for a geometric grid "
        "(default: 1/30 .. 3x the scenario's on-time capacity, 16 points)",
    )
    p.add_argument(
        "--mixes",
        default=None,
        help="semicolon-separated task mixes, each slash-separated (default: the scenario's)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--workload",
        default=None,
        help="any workload simulate accepts (KIND[:field=value,...], e.g. gamma:cv=4, "
        "unpredictable, trace:name=azure_llm_2023_code); each --rates entry is its long-run "
        "mean rate. None: Poisson",
    )
    p.add_argument(
        "--deadline-scales",
        default="1",
        help="comma-separated factors applied to every task deadline",
    )
    p.add_argument(
        "--num-requests", type=positive_int, default=4000, help="arrivals per simulation"
    )
    p.add_argument("--seeds", type=positive_int, default=4, help="workload seeds per grid point")
    add_miss_penalty(p)
    p.add_argument(
        "--miss-penalties",
        default=None,
        help="comma-separated miss penalties: a grid axis (the knob a knob router is told, "
        "and the penalty of the reward metric; docs/knob.md)",
    )
    add_availability_target(p)
    p.add_argument(
        "--out", default=None, help="write STEM.json, STEM.csv (a row per point and seed), STEM.png"
    )

    p = sub.add_parser("profile", help="measure a Flax OPT model's batch-latency profile")
    p.add_argument(
        "--model",
        required=True,
        help="OPT preset (opt-125m, tiny, ...; random weights), HF directory, or "
        "jaxserve OPT checkpoint",
    )
    p.add_argument(
        "--prompt-tokens", type=positive_int, default=128, help="tokens per request's prompt"
    )
    p.add_argument(
        "--gen-tokens",
        type=int,
        default=0,
        help="generated tokens per request (0 = prompt scoring only)",
    )
    p.add_argument("--batch-sizes", default="1,2,4,8", help="comma-separated batch sizes")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed calls per batch size")
    p.add_argument(
        "--warmup", type=positive_int, default=1, help="untimed calls per batch size first"
    )
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument(
        "--call",
        default="forward",
        help="forward (model call only) | serve (the `jaxserve serve` batch call, "
        "host packing and result fetch included)",
    )
    p.add_argument(
        "--monotone",
        action="store_true",
        help="write latency_s as the non-decreasing (isotonic) fit of the medians "
        "(raw medians kept as median_s), as scenarios require",
    )
    p.add_argument(
        "--cpu-threads",
        default="all",
        help="XLA CPU threads per call: all | 1 (steady timings on a shared host; "
        "how the cpu-demo profiles were measured)",
    )
    p.add_argument("--out", default=None, help="write the profile JSON (scenario format) here")
    p.add_argument("--json", action="store_true", help="print the profile as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    p = sub.add_parser("serve", help="end-to-end run: workload -> router -> real Flax OPT models")
    _add_common(p)
    _add_workload(p)
    from jaxserve.commands.serve import add_serve_arguments

    add_serve_arguments(p)

    p = sub.add_parser("train", help="train Double-DQN routers (M in parallel), orbax checkpoints")
    _add_common(p)
    from jaxserve.commands.train import add_evaluate_arguments, add_train_arguments

    add_train_arguments(p)

    p = sub.add_parser("evaluate", help="learned router vs every baseline and the fluid bound")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_evaluate_arguments(p)

    p = sub.add_parser(
        "calibrate-knob", help="a knob router's availability per rate x knob, for targets"
    )
    from jaxserve.commands.train import add_calibrate_arguments

    add_calibrate_arguments(p)

    p = sub.add_parser("plan", help="choose a placement of the zoo's models on N GPUs and a router")
    _add_common(p)
    from jaxserve.commands.plan import add_plan_arguments

    add_plan_arguments(p)

    p = sub.add_parser("plot-training", help="training curves of a `train --out` run as a PNG")
    p.add_argument("run_dir", help="a training run directory (holds metrics.jsonl)")
    p.add_argument("--out", default=None, help="PNG path (None: RUN_DIR/training.png)")
    p.add_argument("--label", default=None, help="figure title (None: the directory name)")

    p = sub.add_parser("bench", help="throughput numbers (docs/spec.md §9) as JSON")
    p.add_argument("--quick", action="store_true", help="small sizes, for smoke tests")
    p.add_argument("--envs", type=positive_int, default=4096, help="vmapped simulator lanes")
    p.add_argument(
        "--steps", type=positive_int, default=256, help="decisions per lane per timed call"
    )
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument(
        "--sections",
        default="sim",
        help="comma-separated sections: sim (simulator + reference), opt (Flax OPT "
        "vs PyTorch), learner (router training and decision latency; "
        "minutes), or all",
    )
    p.add_argument("--json", action="store_true", help="(always JSON; accepted for symmetry)")

    p = sub.add_parser("reproduce", help="run the experiments of docs/results.md and regenerate it")
    p.add_argument("--quick", action="store_true", help="CPU-sized runs (<= 20 min on 2 cores)")
    p.add_argument("--only", default=None, help="comma-separated experiments, e.g. 01,05")
    p.add_argument("--force", action="store_true", help="rerun experiments that are up to date")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (CI smoke test)")
    p.add_argument("--docs-dir", default=None, help="write outputs here instead of docs/")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "out", None):  # before any work: a run never ends unable to write
            check_output(args.out, directory=args.command in _DIRECTORY_OUT)
        if args.command not in _OWN_DEVICES:
            configure_cpu_devices()
        code = _COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that left shows here, inside the handler below
        return code
    except InputError as err:
        print(f"jaxserve: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("jaxserve: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`jaxserve ... | head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return EXIT_BROKEN_PIPE


def _cmd_simulate(args) -> int:
    from jaxserve.commands.scenario import with_overrides
    from jaxserve.evaluation.simulate import simulate
    from jaxserve.sim.parse import parse_workload
    from jaxserve.sim.scenarios import get_scenario

    scenario = with_overrides(get_scenario(args.scenario), args)
    workload = parse_workload(args.workload, scenario.workload, args.rate)
    result = simulate(
        scenario,
        args.policy,
        workload,
        args.num_requests,
        args.seed,
        args.window_s,
        policy_name=args.policy,
        availability_target=args.availability_target,
    )
    if args.json:
        print(json.dumps(result))
    else:
        print(format_metrics(result))
    return 0


SUMMARY_KEYS = (
    "performance",
    "normalized_performance",
    "peak",
    "reward",
    "miss_penalty",
    "fluid_upper_bound",
    "fluid_upper_bound_normalized",
    "availability",
    "goodput",
    "num_arrived",
    "num_on_time",
    "num_late",
    "num_dropped",
    "num_rejected",
    "latency_mean_s",
    "latency_p50_s",
    "latency_p99_s",
    "time_above_96",
    "time_above_98",
)


def format_metrics(result: dict) -> str:
    """Human-readable table of one run's metrics."""
    lines = [
        f"scenario {result['scenario']}  policy {result['policy']}  "
        f"workload {result['workload']}  seed {result['seed']}"
    ]
    for key in SUMMARY_KEYS:
        if key in result:
            value = result[key]
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            lines.append(f"  {key:<30} {'n/a' if value is None else text}")
    if result.get("fluid_upper_bound_note"):
        lines.append(f"  (no fluid bound: {result['fluid_upper_bound_note']})")
    mix = ", ".join(
        f"{name} {f:.3f}"
        for name, f in zip(
            result["model_names"] + ["reject"], result["routing_fraction"], strict=False
        )
    )
    lines.append(f"  {'routing_fraction':<30} {mix}")
    return "\n".join(lines)


def _cmd_sweep(args) -> int:
    from jaxserve.commands.sweep import cmd_sweep

    return cmd_sweep(args)


def _cmd_plot_training(args) -> int:
    from jaxserve.commands.sweep import cmd_plot_training

    return cmd_plot_training(args)


def _cmd_profile(args) -> int:
    from jaxserve.commands.profile import cmd_profile

    return cmd_profile(args)


def _cmd_serve(args) -> int:
    from jaxserve.commands.serve import cmd_serve

    return cmd_serve(args)


def _cmd_bench(args) -> int:
    from jaxserve.commands.bench import cmd_bench

    return cmd_bench(args)


def _cmd_train(args) -> int:
    from jaxserve.commands.train import cmd_train

    return cmd_train(args)


def _cmd_evaluate(args) -> int:
    from jaxserve.commands.train import cmd_evaluate

    return cmd_evaluate(args)


def _cmd_calibrate_knob(args) -> int:
    from jaxserve.commands.train import cmd_calibrate_knob

    return cmd_calibrate_knob(args)


def _cmd_plan(args) -> int:
    from jaxserve.commands.plan import cmd_plan

    return cmd_plan(args)


def _cmd_reproduce(args) -> int:
    from jaxserve.commands.reproduce import cmd_reproduce

    return cmd_reproduce(args)


_COMMANDS = {
    "reproduce": _cmd_reproduce,
    "simulate": _cmd_simulate,
    "sweep": _cmd_sweep,
    "profile": _cmd_profile,
    "serve": _cmd_serve,
    "bench": _cmd_bench,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "plan": _cmd_plan,
    "calibrate-knob": _cmd_calibrate_knob,
    "plot-training": _cmd_plot_training,
}

# `serve` and `profile` place model replicas on devices and time them: they keep XLA's
# default (one CPU device unless XLA_FLAGS or JAX_NUM_CPU_DEVICES say otherwise) and choose
# their own threads (`--cpu-threads`). Every other command gets one CPU device per core,
# over which simulator lanes are sharded (jaxserve/sim/devices.py).
_OWN_DEVICES = ("serve", "profile")

if __name__ == "__main__":
    sys.exit(main())
