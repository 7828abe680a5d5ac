"""`jaxserve serve` (argument parsing and output; docs/serving.md).

The argparse namespace stops here: `serve_config` builds the `ServeConfig` that
`jaxserve.serving.serve.serve` takes.
"""

from __future__ import annotations

import argparse
import json

from jaxserve.argtypes import positive_int, seconds
from jaxserve.commands.scenario import add_availability_target, add_miss_penalty
from jaxserve.serving.config import DEFAULT_PROMPT_TOKENS, ServeConfig


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """`jaxserve serve` flags (the workload ones are shared with simulate)."""
    add_miss_penalty(p)
    add_availability_target(p)
    p.add_argument(
        "--policy",
        default="greedy",
        help="static:K | static:MODEL | random | round-robin | jsq | greedy | lp | "
        "checkpoint directory",
    )
    p.add_argument("--num-requests", type=positive_int, default=500, help="arrivals to replay")
    p.add_argument("--clock", default="virtual", help="virtual | wall")
    p.add_argument(
        "--models",
        default=None,
        help="comma-separated, one per scenario model: OPT preset (random weights), "
        "HF directory or jaxserve OPT checkpoint (default: the scenario's "
        "model names as presets)",
    )
    p.add_argument(
        "--tasks",
        default=None,
        help="task JSONL file or directory (default: the shipped sample set)",
    )
    p.add_argument(
        "--tokenizer",
        default=None,
        help="local HF tokenizer directory (default: byte-level tokenizer)",
    )
    p.add_argument(
        "--prompt-tokens",
        type=positive_int,
        default=DEFAULT_PROMPT_TOKENS,
        help="tokens per prompt",
    )
    p.add_argument("--mode", default="score", help="score (first-token scoring) | generate")
    p.add_argument("--gen-tokens", type=int, default=4, help="generated tokens (--mode generate)")
    p.add_argument(
        "--quality",
        default="auto",
        help="auto | table | measured (auto: measured when every model has real "
        "weights from a directory)",
    )
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument(
        "--cpu-threads",
        default="all",
        help="XLA CPU threads per model call: all | 1 (steady timings on a shared host)",
    )
    p.add_argument(
        "--fidelity",
        action="store_true",
        help="also run the simulator on the same workload/policy/seed and report "
        "predicted vs measured",
    )
    p.add_argument("--window-s", type=seconds, default=None, help="window of windowed metrics")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--out",
        default=None,
        help="write results JSON here (and the fidelity figure beside it, .png)",
    )


def serve_config(args: argparse.Namespace) -> ServeConfig:
    """The `ServeConfig` of a parsed `jaxserve serve` command line."""
    return ServeConfig(
        scenario=args.scenario,
        policy=args.policy,
        workload=args.workload,
        rate=args.rate,
        seed=args.seed,
        num_requests=args.num_requests,
        clock=args.clock,
        models=None if args.models is None else tuple(m.strip() for m in args.models.split(",")),
        tasks=args.tasks,
        tokenizer=args.tokenizer,
        prompt_tokens=args.prompt_tokens,
        mode=args.mode,
        gen_tokens=args.gen_tokens,
        quality=args.quality,
        dtype=args.dtype,
        cpu_threads=args.cpu_threads,
        fidelity=args.fidelity,
        window_s=args.window_s,
        out=args.out,
        progress=not args.no_progress,
        miss_penalty=args.miss_penalty,
        availability_target=args.availability_target,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve; print the summary (JSON with --json); exit 130 when interrupted."""
    from jaxserve.serving.serve import serve

    result = serve(serve_config(args))
    print(json.dumps(result) if args.json else format_serve(result))
    return 130 if result["interrupted"] else 0


def format_serve(result: dict) -> str:
    """Human-readable summary of a served run (and its fidelity report)."""
    lines = [
        f"scenario {result['scenario']}  policy {result['policy']}  clock {result['clock']}"
        f"  quality {result['quality_source']}  seed {result['seed']}"
        + ("  (INTERRUPTED: partial results)" if result["interrupted"] else "")
    ]
    counts = (
        "num_arrived",
        "num_on_time",
        "num_late",
        "num_dropped",
        "num_rejected",
        "num_unfinished",
    )
    lines.append("  " + "  ".join(f"{k[4:]} {result[k]}" for k in counts))
    metrics = result.get("metrics", {})
    for key in ("availability", "normalized_performance", "latency_p50_s", "latency_p99_s"):
        if metrics.get(key) is not None:
            lines.append(f"  {key:<26} {metrics[key]:.4f}")
    d = result["router_decision_us"]
    if "p50_us" in d:
        lines.append(
            f"  router decision            p50 {d['p50_us']:.0f} us, "
            f"p99 {d['p99_us']:.0f} us over {d['num_decisions']}"
        )
    for key, row in result.get("fidelity", {}).items():
        if key != "routing_fraction" and row.get("abs_diff") is not None:
            lines.append(
                f"  fidelity {key:<22} predicted {row['predicted']:.4f}  "
                f"measured {row['measured']:.4f}  diff {row['abs_diff']:+.4f}"
            )
    return "\n".join(lines)
