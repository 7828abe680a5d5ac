"""`jaxserve profile` (argument handling and output; docs/opt.md, docs/serving.md).

The argparse namespace stops here: `profile_config` builds the `ProfileConfig` that
`jaxserve.serving.profile.run_profile` takes.
"""

from __future__ import annotations

import argparse
import json

from jaxserve.serving.config import ProfileConfig


def profile_config(args: argparse.Namespace) -> ProfileConfig:
    """The `ProfileConfig` of a parsed `jaxserve profile` command line."""
    return ProfileConfig(
        model=args.model,
        prompt_tokens=args.prompt_tokens,
        gen_tokens=args.gen_tokens,
        batch_sizes=args.batch_sizes,  # "1,2,4": the config parses it (one error line)
        repeats=args.repeats,
        warmup=args.warmup,
        dtype=args.dtype,
        call=args.call,
        monotone=args.monotone,
        cpu_threads=args.cpu_threads,
        out=args.out,
        progress=not args.no_progress,
    )


def cmd_profile(args: argparse.Namespace) -> int:
    """Profile; print the record as JSON (with --json or without --out), else one line."""
    from jaxserve.serving.profile import run_profile

    result = run_profile(profile_config(args))
    if args.json or not args.out:
        print(json.dumps(result))
    else:
        print(
            f"profile of {args.model} written to {args.out}: latency_s = "
            + ", ".join(f"{x:.4f}" for x in result["latency_s"])
        )
    return 0
