"""`jaxserve reproduce`: run the experiment scripts and regenerate docs/results.md.

Experiments are the `experiments/NN_name.py` scripts at the repository root (beside the
`jaxserve` package). Each defines a frozen `Config` dataclass with `SMOKE`, `QUICK` and
`FULL` presets, the steps `compute(config, run)`, `plot(data, figures_dir)` and
`write_up(data, figures)` composed by `main(config, run)` (`research.runs.run_pipeline`;
`run`: a `jaxserve.research.Run`, the mode and output folders), writing
docs/experiments/NN_name.json and docs/figures/*.png, and optionally `discussion(data) ->
str`, its paragraph in results.md. The JSON records the mode and `dataclasses.asdict(config)`;
an experiment whose JSON has the same mode and config (and whose figures exist) is not rerun
unless `force`: its figures and write-up are redrawn from the stored data.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

from jaxserve.errors import InputError
from jaxserve.io_utils import write_json_atomic, write_text_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = REPO_ROOT / "experiments"
PRESETS = {"smoke": "SMOKE", "quick": "QUICK", "full": "FULL"}
CLOSING = (
    "**What has not been measured before.** To our knowledge no published system reports: "
    "learned best-effort routing with 5 and 8 models against a fluid LP bound (Exp 6); "
    "deadlines that change during a run, with the deadline in the router's observation "
    "(Exp 7); single-task, skewed and abrupt task-mix shifts for a router trained on uniform "
    "(Exp 5); the Azure LLM 2023 traces as a burst pattern for best-effort routing (Exp 9); "
    "and ablations of observation, credit assignment, Double DQN and width (Exp 8). All of "
    "these are simulator results (roofline latency, no real models in the loop); see "
    "docs/serving.md for the end-to-end fidelity checks on CPU models."
)


def experiments_dir() -> Path:
    """The experiments folder; an InputError when the package runs outside a checkout."""
    if not any(EXPERIMENTS_DIR.glob("[0-9][0-9]_*.py")):
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


def load(path: Path) -> ModuleType:
    """An experiment script as a module (it imports only the installed package)."""
    spec = importlib.util.spec_from_file_location(f"jaxserve_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def preset(module: ModuleType, mode: str):
    """The experiment's config preset for `mode` (smoke, quick or full)."""
    return getattr(module, PRESETS[mode])


def _normal(value):
    return json.loads(json.dumps(value))


def up_to_date(old: dict, config, mode: str, docs_dir: Path) -> bool:
    """Whether a recorded result was made in `mode` with `config` and has its figures.

    Fields added to a config after a JSON was written count as their default values.
    """
    recorded = {k: v for k, v in old.get("config", {}).items() if k != "_mode"}
    for field in dataclasses.fields(config):
        if field.name not in recorded and field.default is not dataclasses.MISSING:
            recorded[field.name] = _normal(field.default)
    old_mode = old.get("mode") or old.get("config", {}).get("_mode")
    figures_ok = all((docs_dir / f).exists() for f in old.get("figures", []))
    return old_mode == mode and recorded == _normal(dataclasses.asdict(config)) and figures_ok


def make_run(mode: str, docs_dir: Path | None = None, routers_dir: Path | None = None):
    """The `Run` of this checkout: docs/, experiments/.routers, checkpoints/ by default."""
    from jaxserve.research.runs import Run

    return Run(
        mode=mode,
        docs_dir=Path(docs_dir) if docs_dir is not None else REPO_ROOT / "docs",
        routers_dir=Path(routers_dir) if routers_dir else experiments_dir() / ".routers",
        checkpoints_dir=REPO_ROOT / "checkpoints",
    )


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

    mode = "smoke" if smoke else "quick" if quick else "full"
    run = make_run(mode, docs_dir, routers_dir)
    modules = {name: load(path) for name, path in select(discover(), only).items()}
    summary = {"quick": quick, "smoke": smoke, "mode": mode, "experiments": {}}
    start = time.perf_counter()
    bar = tqdm(list(modules.items()), desc="reproduce", unit="exp", disable=not progress)
    for name, module in bar:
        bar.set_postfix_str(name)
        config = preset(module, mode)
        out = run.json_dir / f"{name}.json"
        if not force and out.exists():
            old = json.loads(out.read_text())
            if up_to_date(old, config, mode, run.docs_dir):
                rerender(module, old, run, out)
                summary["experiments"][name] = {"skipped": True, "wall_s": old.get("wall_s")}
                continue
        t0 = time.perf_counter()
        module.main(config, run)
        summary["experiments"][name] = {"skipped": False, "wall_s": time.perf_counter() - t0}
    summary["wall_s"] = time.perf_counter() - start
    write_results_md(run.docs_dir)
    return summary


def rerender(module, old: dict, run, out: Path) -> None:
    """Figures and write-up of a current result redrawn from its stored data by today's code
    (numbers unchanged, wording and figures current). A result whose data predates the
    write-up code keeps its stored write-up, with a note on stderr."""
    import sys

    try:
        figures = module.plot(old["data"], run.figures_dir)
        text = module.write_up(old["data"], figures)
    except (KeyError, TypeError, IndexError, ValueError) as error:
        print(f"jaxserve: note: {out.name}: stored write-up kept ({error!r})", file=sys.stderr)
        return
    old.update(claims=text["claims"], markdown=text["markdown"], figures=figures)
    write_json_atomic(out, old)


def load_results(docs_dir: Path) -> list[dict]:
    """Every experiment JSON present in `docs_dir`/experiments, in order."""
    folder = Path(docs_dir) / "experiments"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("[0-9][0-9]_*.json"))]


def write_results_md(docs_dir: Path) -> Path:
    """docs/results.md from the experiment JSONs: claims table, sections, discussion."""
    from jaxserve.research.report import render_results

    results = load_results(docs_dir)
    scripts = discover()
    modules = {r["name"]: load(scripts[r["name"]]) for r in results if r["name"] in scripts}
    discussions = {n: m.discussion for n, m in modules.items() if hasattr(m, "discussion")}
    text = render_results(results, discussions, CLOSING)
    return write_text_atomic(Path(docs_dir) / "results.md", text)
