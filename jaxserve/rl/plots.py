"""Training curves from a run's metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path


def plot_training(metrics_path: str | Path, png_path: str | Path, label: str = "") -> None:
    """Eval normalised performance, loss and mean Q against env steps, one line per member."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxserve.io_utils import save_figure_atomic

    lines = [json.loads(x) for x in Path(metrics_path).read_text().splitlines() if x]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for member in sorted({x["member"] for x in lines}):
        rows = [x for x in lines if x["member"] == member]
        steps = [x["num_env_steps"] for x in rows]
        for ax, key in zip(axes, ("eval_mean", "loss", "q_mean"), strict=True):
            ax.plot(steps, [x[key] for x in rows], marker=".", label=f"member {member}")
            ax.set_title(key)
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
    if label:
        fig.suptitle(label)
    save_figure_atomic(fig, png_path)
    plt.close(fig)
