"""Output-directory locks: one run per directory; a stale lock (killed owner) is taken over."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jaxserve.errors import InputError
from jaxserve.locks import LOCK_FILE, locked_directory


def test_second_holder_is_refused_with_the_owner_named(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (tmp_path / LOCK_FILE).write_text(f"{holder.pid}\n")  # a live process owns it
        with pytest.raises(InputError, match=rf"in use by another run \(pid {holder.pid}"):
            with locked_directory(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / LOCK_FILE).write_text(dead.stdout)
    with locked_directory(tmp_path) as path:
        assert path.read_text().strip() != dead.stdout.strip()  # now ours
    assert not (tmp_path / LOCK_FILE).exists()  # released at the end


def test_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with locked_directory(tmp_path / "new"):
            raise RuntimeError("the run failed")
    with locked_directory(tmp_path / "new"):  # free again
        pass


def test_a_second_train_on_the_same_out_exits_2(tmp_path, capsys):
    from jaxserve.cli import main

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (tmp_path / LOCK_FILE).write_text(f"{holder.pid}\n")  # a first run is training here
        assert main(["train", "--out", str(tmp_path), "--steps", "1000", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"pid {holder.pid}" in err, err
        assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]  # nothing written
    finally:
        holder.kill()
        holder.wait()


def test_a_directory_created_for_a_run_that_wrote_nothing_is_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with locked_directory(tmp_path / "run"):
            raise RuntimeError("bad input found after the lock was taken")
    assert not (tmp_path / "run").exists()
    with locked_directory(tmp_path / "kept") as lock:
        (lock.parent / "result.json").write_text("{}")
    assert (tmp_path / "kept" / "result.json").is_file()
