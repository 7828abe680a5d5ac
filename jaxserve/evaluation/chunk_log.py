"""Per-chunk training logs: callbacks for `train(..., on_chunk=...)` (and `jaxserve train`).

`CsvLog` appends one row per chunk and member to a CSV file; `TensorBoardLog` writes every
numeric metric as a scalar `member_<m>/<metric>` at step `num_env_steps` through tensorboardX
(the optional extra `jaxserve[tensorboard]`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

from jaxserve.evaluation.records import Records
from jaxserve.rl.config import HPARAM_NAMES

TENSORBOARD_MISSING = (
    "TensorBoard logging needs tensorboardX, which is not installed: "
    "pip install 'jaxserve[tensorboard]'"
)
# Columns that describe the member rather than measure it (not written as scalars).
NOT_SCALARS = ("chunk", "member", "point", "replicate", "seed", *HPARAM_NAMES)


class CsvLog:
    """Append each chunk's rows to `path` (header written once; kept when resuming)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, rows: Records) -> None:
        if not rows:
            return
        fields = self._existing_header() or Records(rows).columns
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", restval="")
            if new:
                writer.writeheader()
            writer.writerows({k: v for k, v in row.items() if k in fields} for row in rows)

    def _existing_header(self) -> list[str] | None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        with self.path.open(newline="") as f:
            return next(csv.reader(f), None)


class TensorBoardLog:
    """Scalars per member under `logdir` (ImportError naming the extra without tensorboardX)."""

    def __init__(self, logdir: str | Path):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError(TENSORBOARD_MISSING) from None
        self.writer = SummaryWriter(str(logdir))

    def __call__(self, rows: Records) -> None:
        for row in rows:
            step = int(row.get("num_env_steps", row["chunk"]))
            for name, value in row.items():
                if name in NOT_SCALARS or isinstance(value, bool | str) or value is None:
                    continue
                self.writer.add_scalar(f"member_{row['member']}/{name}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def chain(callbacks: Sequence[Callable[[Records], None] | None]) -> Callable | None:
    """One callback calling each of `callbacks` in turn (None if there are none)."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def call(rows: Records) -> None:
        for callback in active:
            callback(rows)

    return call
