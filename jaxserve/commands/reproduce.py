"""`jaxserve reproduce` (argument handling and the summary it prints; docs/results.md)."""

from __future__ import annotations

import argparse
import json


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run, then print a one-line summary per experiment (JSON with --json)."""
    from jaxserve.reproduce import run_experiments

    summary = run_experiments(
        quick=args.quick,
        only=args.only,
        force=args.force,
        smoke=args.smoke,
        docs_dir=args.docs_dir,
        progress=not args.no_progress,
    )
    if args.json:
        print(json.dumps(summary))
    else:
        for name, s in summary["experiments"].items():
            state = "skipped (up to date)" if s["skipped"] else f"ran in {s['wall_s']:.0f} s"
            print(f"{name:<24} {state}")
        print(f"total {summary['wall_s']:.0f} s; docs/results.md regenerated")
    return 0
