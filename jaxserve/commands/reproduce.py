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


def run_script(name: str, argv: list[str] | None = None) -> int:
    """`python experiments/NN_name.py [--quick|--smoke] [--force]`: reproduce that one."""
    import argparse

    from jaxserve.host import configure_cpu_devices

    parser = argparse.ArgumentParser(description=f"jaxserve reproduce --only {name}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    configure_cpu_devices()
    from jaxserve.reproduce import run_experiments

    summary = run_experiments(args.quick, name, args.force, args.smoke, progress=False)
    print(json.dumps(summary))
    return 0
