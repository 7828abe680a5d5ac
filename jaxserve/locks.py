"""An output directory in use is locked: a second run on it exits 2 naming the owner.

`<dir>/.lock` holds the owner's pid, created with O_CREAT | O_EXCL (atomic on every local
filesystem) and removed when the run ends. A lock whose pid no longer runs (a SIGKILLed run)
is stale: it is taken over, so a killed training run still resumes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from jaxserve.errors import InputError

LOCK_FILE = ".lock"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _owner(path: Path) -> int | None:
    """The pid in a lock file, or None when it is unreadable or half-written."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    return True


@contextlib.contextmanager
def locked_directory(directory: str | Path):
    """Hold `directory`'s lock for the duration of the block.

    The directory is created if needed, and removed again if the block left it empty.
    """
    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    if not _try_create(path):
        owner = _owner(path)
        if owner is not None and owner != os.getpid() and _running(owner):
            raise InputError(
                f"--out {str(directory)!r}: in use by another run (pid {owner}, lock file "
                f"{str(path)!r}); wait for it or choose another directory"
            )
        path.unlink(missing_ok=True)  # stale: its owner is gone
        if not _try_create(path):
            raise InputError(f"--out {str(directory)!r}: taken by another run just now")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        if created and not any(directory.iterdir()):  # a run that wrote nothing leaves nothing
            directory.rmdir()


__all__ = ["LOCK_FILE", "locked_directory"]
