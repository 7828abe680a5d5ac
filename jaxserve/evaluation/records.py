"""Long-format results: one row (a flat dict of scalars) per grid point, member or chunk.

`Records` is a list of dicts with writers and readers for CSV and JSON and an optional
pandas view. Every sweep, search and training function of `jaxserve.evaluation` returns
one, so results from any of them load, filter and plot the same way.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from jaxserve.errors import InputError
from jaxserve.io_utils import write_text_atomic

PANDAS_MISSING = (
    "Records.to_pandas needs pandas, which is not installed: "
    "pip install pandas (or use .to_csv / .to_json / the rows themselves)"
)


class Records(list):
    """A list of rows (dicts of str -> int | float | str | bool | None), long format."""

    def __init__(self, rows: Iterable[Mapping] = ()):
        super().__init__(dict(r) for r in rows)

    @property
    def columns(self) -> list[str]:
        """Every column name, in the order first seen."""
        return list(dict.fromkeys(name for row in self for name in row))

    def column(self, name: str) -> list:
        """One column's values (None where a row lacks it)."""
        return [row.get(name) for row in self]

    def where(self, **equals) -> Records:
        """The rows whose columns equal the given values."""
        return Records(r for r in self if all(r.get(k) == v for k, v in equals.items()))

    def to_pandas(self):
        """A pandas DataFrame (pandas is an optional dependency)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(PANDAS_MISSING) from None
        return pd.DataFrame(list(self), columns=self.columns)

    def to_csv(self, path: str | Path) -> Path:
        """Write a CSV file (header = `columns`; missing values empty), atomically."""
        return write_text_atomic(path, self.csv_text())

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in self)
        return buffer.getvalue()

    def to_json(self, path: str | Path) -> Path:
        """Write a JSON list of row objects (pandas `read_json(orient="records")` reads it)."""
        return write_text_atomic(path, json.dumps(list(self), indent=1, default=_json_default))

    @classmethod
    def from_csv(cls, path: str | Path) -> Records:
        """Read a CSV written by `to_csv` (numbers and booleans parsed back)."""
        with open(_existing(path), newline="") as f:
            return cls({k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(f))

    @classmethod
    def from_json(cls, path: str | Path) -> Records:
        """Read a JSON list of row objects."""
        rows = json.loads(_existing(path).read_text())
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputError(f"records {path}: expected a JSON list of objects")
        return cls(rows)


def load_records(path: str | Path) -> Records:
    """Records from a `.csv` or `.json` file (by suffix)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return Records.from_csv(path)
    if suffix == ".json":
        return Records.from_json(path)
    raise InputError(f"records {path}: expected a .csv or .json file")


def flatten_row(row: Mapping, labels: Mapping[str, Iterable[str]] | None = None) -> dict:
    """Scalars kept; a vector `name` becomes `name_<label>` columns (labels or 0, 1, ...)."""
    out = {}
    labels = labels or {}
    for name, value in row.items():
        if isinstance(value, list | tuple) or getattr(value, "ndim", 0) > 0:
            values = list(value.tolist() if hasattr(value, "tolist") else value)
            names = list(labels.get(name, range(len(values))))
            out.update({f"{name}_{n}": _scalar(v) for n, v in zip(names, values, strict=True)})
        else:
            out[name] = _scalar(value)
    return out


def _scalar(value):
    if hasattr(value, "item"):  # numpy / jax scalars
        value = value.item()
    return value


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"records {path}: no such file")
    return path


def _csv_cell(value):
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return "" if value is None else value


def _parse_cell(text: str):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
