"""`jaxserve bench` (argument handling and output; docs/performance.md).

The argparse namespace stops here: `bench_config` builds the `BenchConfig` that
`jaxserve.bench.run_bench` takes.
"""

from __future__ import annotations

import argparse
import json

from jaxserve.bench import BenchConfig


def bench_config(args: argparse.Namespace) -> BenchConfig:
    """The `BenchConfig` of a parsed `jaxserve bench` command line."""
    return BenchConfig(
        sections=args.sections,  # "all" or "sim,opt": the config parses it (one error line)
        num_envs=args.envs,
        num_steps=args.steps,
        quick=args.quick,
        progress=True,
    )


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure; print the JSON (and write it to --out)."""
    from jaxserve.bench import run_bench

    result = run_bench(bench_config(args))
    text = json.dumps(result, indent=1)
    if args.out:
        from jaxserve.io_utils import write_text_atomic

        write_text_atomic(args.out, text + "\n")
    print(text)
    return 0
