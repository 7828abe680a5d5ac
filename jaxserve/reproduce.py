"""`jaxserve reproduce`: run the experiment scripts and regenerate docs/results.md.

Experiments are the `experiments/NN_name.py` scripts at the repository root (beside the
`jaxserve` package); each has `get_config(quick, smoke=False) -> dict` and
`main(config) -> dict` and writes docs/experiments/NN_name.json plus docs/figures/exp_NN_*.png.
An experiment whose JSON exists with the same config is skipped unless `force`.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

from jaxserve.errors import InputError
from jaxserve.io_utils import write_text_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = REPO_ROOT / "experiments"


def experiments_dir() -> Path:
    """The experiments folder; an InputError when the package runs outside a checkout."""
    if not (EXPERIMENTS_DIR / "_common.py").is_file():
        raise InputError(
            f"experiments directory = {EXPERIMENTS_DIR}: not found; expected the repository's "
            "experiments/ folder beside the jaxserve package (run from a source checkout)"
        )
    return EXPERIMENTS_DIR


def discover() -> dict[str, Path]:
    """{'01_stable': path, ...}: every experiments/NN_*.py, in order."""
    return {
        p.stem: p for p in sorted(experiments_dir().glob("[0-9][0-9]_*.py")) if p.stem[:2].isdigit()
    }


def select(names: dict[str, Path], only: str | None) -> dict[str, Path]:
    """Filter by comma-separated prefixes or names (`01,05_shift`)."""
    if not only:
        return names
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = {n: p for n, p in names.items() if any(n == w or n.startswith(w) for w in wanted)}
    missing = [w for w in wanted if not any(n == w or n.startswith(w) for n in names)]
    if missing:
        raise InputError(
            f"--only {missing[0]!r}: unknown experiment; expected one of {list(names)}"
        )
    return chosen


def _load(path: Path):
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"jaxserve_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _common():
    experiments_dir()
    folder = str(EXPERIMENTS_DIR)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import _common  # noqa: PLC0415

    return _common


def _normal(config: dict) -> dict:
    return json.loads(json.dumps(config))


def run_experiments(
    quick: bool = False,
    only: str | None = None,
    force: bool = False,
    smoke: bool = False,
    docs_dir: Path | None = None,
    routers_dir: Path | None = None,
    progress: bool = True,
) -> dict:
    """Run (or reuse) the selected experiments, then rewrite results.md; a summary dict."""
    from tqdm import tqdm

    common = _common()
    if docs_dir is not None:
        common.set_output_dir(Path(docs_dir), routers_dir)
    chosen = select(discover(), only)
    summary = {"quick": quick, "smoke": smoke, "experiments": {}}
    start = time.perf_counter()
    bar = tqdm(list(chosen.items()), desc="reproduce", unit="exp", disable=not progress)
    for name, path in bar:
        bar.set_postfix_str(name)
        module = _load(path)
        mode = "smoke" if smoke else "quick" if quick else "full"
        config = _normal({**module.get_config(quick, smoke=smoke), "_mode": mode})
        out = common.JSON_DIR / f"{name}.json"
        if not force and out.exists():
            old = json.loads(out.read_text())
            figures_ok = all((common.DOCS / f).exists() for f in old.get("figures", []))
            if old.get("config") == config and figures_ok:
                summary["experiments"][name] = {"skipped": True, "wall_s": old.get("wall_s")}
                continue
        t0 = time.perf_counter()
        module.main(config)
        summary["experiments"][name] = {"skipped": False, "wall_s": time.perf_counter() - t0}
    summary["wall_s"] = time.perf_counter() - start
    write_results_md(common)
    return summary


def load_results(common) -> list[dict]:
    """Every experiment JSON present in the output folder, in order."""
    return [json.loads(p.read_text()) for p in sorted(common.JSON_DIR.glob("[0-9][0-9]_*.json"))]


def write_results_md(common) -> Path:
    """docs/results.md from the experiment JSONs: claims table, sections, discussion."""
    import _report  # noqa: PLC0415  (experiments/_report.py, importable once _common is)

    results = load_results(common)
    return write_text_atomic(common.DOCS / "results.md", _report.render(results))


def cmd_reproduce(args) -> int:
    """CLI entry: run, then print a one-line summary per experiment (JSON with --json)."""
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
