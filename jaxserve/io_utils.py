"""Atomic file output: write to a temporary name in the same folder, then rename.

No half-written file on failure (docs/spec.md §8).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from jaxserve.errors import InputError


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to `path` so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data) -> Path:
    """JSON version of write_text_atomic (indented, keys in insertion order)."""
    return write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def save_figure_atomic(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically (PNG inferred from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output(path: str | Path, directory: bool = False) -> None:
    """InputError now, before any work, if `path` (a file, or a directory) cannot be written.

    The path itself, when it exists, must be a file (or, with `directory`, a directory); the
    nearest existing folder above it must be a directory this process may write into: a
    folder is made and removed there to find out (permissions alone miss read-only and
    pseudo file systems such as /proc). Nothing is left behind.
    """
    path = Path(path)
    if path.exists() and path.is_dir() != directory:
        expected = "a directory" if directory else "a file path, not a directory"
        raise InputError(f"--out {str(path)!r}: exists and is not {expected}")
    folder = path if directory and path.exists() else path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"--out {str(path)!r}: {str(folder)!r} is a file, not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--out {str(path)!r}: no permission to write in {str(folder)!r}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".jaxserve-probe-", dir=folder))
    except OSError as err:
        message = f"--out {str(path)!r}: cannot write in {str(folder)!r}: {err.strerror}"
        raise InputError(message) from None


def write_json_or_print(path: str | Path, data, printed: bool = False) -> Path:
    """write_json_atomic; if the write fails, InputError, with the JSON on stdout first
    unless the caller `printed` the results already.

    Results are never lost to a failing write (a full disk, a folder removed mid-run).
    """
    try:
        return write_json_atomic(path, data)
    except OSError as err:
        if not printed:
            print(json.dumps(data), flush=True)
        where = "above" if printed else "on stdout instead"
        raise InputError(
            f"could not write {str(path)!r} ({err.strerror or err}); the results are {where}"
        ) from None
