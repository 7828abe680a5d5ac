"""Figure helpers shared by the experiment scripts: legends, line styles, atomic saves."""

from __future__ import annotations

from pathlib import Path

from jaxserve.io_utils import save_figure_atomic
from jaxserve.sim.scenarios import Scenario


def static_label(scenario: Scenario, name: str) -> str:
    """`static:2` -> `static:opt-6.7b` (figure legends)."""
    if name.startswith("static:") and name[7:].isdigit():
        return f"static:{scenario.model_names[int(name[7:])]}"
    return name


def policy_style(name: str) -> dict:
    """Consistent figure styles: routers bold, statics dashed."""
    if name.startswith("router") or name.startswith("learned"):
        return {"lw": 2.2}
    if name.startswith("static"):
        return {"ls": "--", "lw": 1.0}
    return {"lw": 1.0}


def save_figure(fig, figures_dir: Path, name: str) -> str:
    """`figures_dir/name`, atomically, then closed; the path relative to docs/."""
    import matplotlib.pyplot as plt

    save_figure_atomic(fig, Path(figures_dir) / name)
    plt.close(fig)
    return f"figures/{name}"
