"""Progress bars on stderr (rate and ETA), one helper for every long-running command.

A leaf module: commands pass `bar.update` (or `lambda n=1: None`) down as a plain callback,
so library code never depends on how progress is shown.
"""

from __future__ import annotations

import sys


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool = True):
    """A tqdm bar on stderr; `enabled=False` gives a silent one with the same interface."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr)


def no_progress(n: int = 1) -> None:
    """The callback for callers that show no progress."""
    del n


__all__ = ["no_progress", "progress_bar"]
