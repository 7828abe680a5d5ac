"""Two processes (`jax.distributed` on CPU, loopback) give what one process gives.

Two workers (two_process_worker.py) join one JAX runtime of 2 processes x 1 CPU device and
run a sweep and a population training through the public API (`jaxserve.evaluation`):
lanes and members are split over the two processes. The truth is the same calls in this
test process, one process with the suite's 2 CPU devices (tests/conftest.py), so each
device holds the same lanes and members in both runs and the results must be equal bit
for bit. The workers run while this process computes the truth; both are killed on any
failure or after TIMEOUT_S.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from two_process_worker import NUM_PROCESSES, sweep_config, train_config

from jaxserve.checkpoint import META_FILE, read_metadata, to_host_leaves
from jaxserve.evaluation import sweep, train
from jaxserve.rl.policy import load_router_params
from jaxserve.rl.trainer import METRICS_FILE, final_state

WORKER = Path(__file__).with_name("two_process_worker.py")
TIMEOUT_S = 240


def free_port() -> int:
    """A TCP port free on loopback now (the coordinator binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out_dir: Path) -> list[subprocess.Popen]:
    """Start the workers; each writes its output and log under `out_dir`."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_PLATFORMS"] = "cpu"
    port = free_port()
    procs = []
    for process_id in range(NUM_PROCESSES):
        with open(out_dir / f"worker_{process_id}.log", "wb") as log:
            command = [sys.executable, str(WORKER), str(process_id), str(port), str(out_dir)]
            procs.append(
                subprocess.Popen(
                    command, cwd=out_dir, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    return procs


def wait_all(procs: list[subprocess.Popen], out_dir: Path, deadline: float) -> None:
    """Wait until every worker has exited 0; fail with their logs at the first failure or
    at the deadline (the caller kills what still runs)."""
    while True:
        codes = [p.poll() for p in procs]
        if all(code == 0 for code in codes):
            return
        if any(code not in (None, 0) for code in codes) or time.monotonic() > deadline:
            logs = "".join(_log_tail(out_dir, i) for i in range(len(procs)))
            pytest.fail(f"workers: exit codes {codes} (None: killed after {TIMEOUT_S} s){logs}")
        time.sleep(0.2)


def kill(procs: list[subprocess.Popen]) -> None:
    """Kill the workers still running (each by its own Popen handle) and reap them all."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def _log_tail(out_dir: Path, process_id: int) -> str:
    text = (out_dir / f"worker_{process_id}.log").read_text(errors="replace")
    return f"\n--- worker {process_id} ---\n{text[-3000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(what each worker returned, the one-process truth, their run directories)."""
    two_dir = tmp_path_factory.mktemp("two_processes")
    one_dir = tmp_path_factory.mktemp("one_process")
    deadline = time.monotonic() + TIMEOUT_S
    procs = launch(two_dir)
    try:
        truth = {
            "sweep": list(sweep(sweep_config())),
            "train": train(train_config(), out_dir=one_dir / "run"),
        }
        wait_all(procs, two_dir, deadline)
    finally:
        kill(procs)
    workers = [
        pickle.loads((two_dir / f"worker_{i}.pkl").read_bytes()) for i in range(NUM_PROCESSES)
    ]
    return workers, truth, two_dir / "run", one_dir / "run"


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _assert_leaves_equal(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_array_equal(x, y)


def _without_wall_time(rows) -> list[dict]:
    return [{k: v for k, v in dict(row).items() if k != "wall_s"} for row in rows]


def test_workers_were_two_processes(runs):
    workers, _, _, _ = runs
    assert [w["process_index"] for w in workers] == list(range(NUM_PROCESSES))


def test_sweep_split_over_two_processes_equals_one_process(runs):
    workers, truth, _, _ = runs
    assert len(truth["sweep"]) == 9
    for worker in workers:  # every process gets the whole table
        assert worker["sweep"] == truth["sweep"]


def test_population_split_over_two_processes_is_bit_identical(runs):
    workers, truth, _, _ = runs
    want = _leaves(truth["train"].params)
    assert not np.array_equal(want[-1][0], want[-1][1]), "the two members are identical"
    for worker in workers:
        _assert_leaves_equal(worker["params"], want)
        assert _without_wall_time(worker["history"]) == _without_wall_time(truth["train"].history)


def test_checkpoint_written_by_two_processes_restores_in_one(runs):
    workers, truth, two_run, one_run = runs
    result = truth["train"]
    # The whole learner state (params, target, Adam, replay, keys), restored here.
    got = to_host_leaves(final_state(two_run, result.scenario, result.config, NUM_PROCESSES))[0]
    want = to_host_leaves(final_state(one_run, result.scenario, result.config, NUM_PROCESSES))[0]
    _assert_leaves_equal(got, want)
    for member in range(NUM_PROCESSES):
        params, _ = load_router_params(two_run, result.scenario, member=member)
        _assert_leaves_equal(_leaves(params), [x[member] for x in _leaves(result.params)])
    # ... and restored in each of the two processes, right after writing.
    for worker in workers:
        _assert_leaves_equal(worker["restored_member_1"], [x[1] for x in _leaves(result.params)])
    # Written once (process 0): same files, one step folder, nothing left half-written.
    meta, meta_one = read_metadata(two_run), read_metadata(one_run)
    assert meta["trees"] == meta_one["trees"] and meta["chunks_done"] == result.config.num_chunks
    files = sorted(p.name for p in two_run.iterdir())
    assert files == sorted([META_FILE, "members.csv", METRICS_FILE, meta["path"]])
    assert sorted(p.name for p in one_run.iterdir()) == files
    assert (two_run / "members.csv").read_text() == (one_run / "members.csv").read_text()
    lines = lambda run: [json.loads(x) for x in (run / METRICS_FILE).read_text().splitlines()]
    assert _without_wall_time(lines(two_run)) == _without_wall_time(lines(one_run))
