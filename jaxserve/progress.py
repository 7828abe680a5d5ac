"""Progress bars on stderr (rate and ETA), one helper for every long-running command.

A leaf module: commands pass `bar.update` (or `no_progress`) down as a plain callback, so
library code never depends on how progress is shown. A bar prints nothing until its first
unit of work is done: input is validated before that, so bad input still gets exactly one
line on stderr, with no bar before it.
"""

from __future__ import annotations

import sys
import time


class _LazyBar:
    """A tqdm bar created at the first `update`, timed from when the work started."""

    def __init__(self, total: int | None, desc: str, unit: str, enabled: bool):
        self._args = dict(total=total, desc=desc, unit=unit, file=sys.stderr)
        self._enabled, self._bar, self._start = enabled, None, time.time()

    def update(self, n: int = 1) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(**self._args)
            self._bar.start_t = self._start  # rate and ETA over the whole run so far
        self._bar.update(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool = True) -> _LazyBar:
    """A context-managed bar on stderr; `enabled=False` gives a silent one."""
    return _LazyBar(total, desc, unit, enabled)


def no_progress(n: int = 1) -> None:
    """The callback for callers that show no progress."""
    del n


__all__ = ["no_progress", "progress_bar"]
