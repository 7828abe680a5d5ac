"""`jaxserve serve`: replay a workload against real Flax OPT models.

`serve(ServeConfig(...))` runs one served workload: setup (setup.py), warm-up, the virtual or
wall clock with SIGINT handled between arrivals, then the results record (results.py).
See docs/spec.md §7 and docs/serving.md.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from jaxserve.io_utils import write_json_or_print
from jaxserve.progress import no_progress, progress_bar
from jaxserve.serving.config import ServeConfig
from jaxserve.serving.cpu import configure_cpu_threads
from jaxserve.serving.executor import random_prompt
from jaxserve.serving.setup import Setup, build_setup

# The simulator modules (env, router, report, results) are imported inside functions:
# importing jaxserve.sim.env initialises the JAX backend, which must wait for cpu_threads.


def warm_up(setup: Setup, router, models) -> dict:
    """Compile every batch size of every model and the router before the clock starts."""
    seconds = {}
    for k, replicas in enumerate(setup.runners):
        prompt = random_prompt(replicas[0].config, replicas[0].prompt_tokens)
        for runner in replicas:
            seconds[setup.scenario.model_names[k]] = sum(
                runner.warmup(setup.scenario.max_batch[k], prompt)
            )
    seconds["router"] = router.warmup(models)
    return seconds


@contextlib.contextmanager
def stop_on_sigint(stop: threading.Event):
    """SIGINT sets `stop` (checked between arrivals) instead of raising mid-batch."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _log(message: str) -> None:
    print(f"jaxserve serve: {message}", file=sys.stderr, flush=True)


def serve(
    config: ServeConfig,
    stop: threading.Event | None = None,
    on_arrival: Callable[[int], None] = no_progress,
) -> dict:
    """Run one served workload; returns (and writes to `config.out`) the results record.

    `on_arrival(1)` is called after each routed arrival, e.g. to set `stop` after N of them.
    """
    cpu_threads = configure_cpu_threads(config.cpu_threads)
    from jaxserve.serving.results import add_fidelity, served_record
    from jaxserve.serving.router import Router
    from jaxserve.sim.env import ServingEnv

    setup = build_setup(config)
    stop = stop or threading.Event()
    s = setup.scenario
    env = ServingEnv(s.sim_config(setup.workload))
    arrival_s = np.cumsum(np.asarray(setup.arrivals.gap_s, np.float64))
    tasks = np.asarray(setup.arrivals.task)
    valid = np.asarray(setup.arrivals.valid)
    arrival_s, tasks = arrival_s[valid], tasks[valid]
    scale = setup.arrivals.deadline_scale  # per-request deadline factors, as the simulators
    scale = None if scale is None else np.asarray(scale)[valid]
    router = Router(setup.policy, env, s.sim_params(), setup.arrivals, setup.key_run)
    engine = _make_engine(config.clock, s, setup)
    compile_s = warm_up(setup, router, engine.models)
    _log(
        f"{len(arrival_s)} requests, clock {config.clock}, policy {config.policy}; "
        f"warm-up {sum(compile_s.values()):.1f} s"
    )
    start = time.perf_counter()
    with (
        stop_on_sigint(stop),
        progress_bar(len(arrival_s), "serve", "req", config.progress) as bar,
    ):
        arrived = lambda n: (bar.update(n), on_arrival(n))
        requests = _run(
            config.clock, engine, router, (arrival_s, tasks, scale), setup.task_set, stop, arrived
        )
    wall_s = time.perf_counter() - start
    result = served_record(config, setup, engine, router, requests, arrival_s, tasks, wall_s, stop)
    result["warmup_s"] = compile_s
    result["cpu_threads"] = cpu_threads
    if config.fidelity and not stop.is_set():
        add_fidelity(config, setup, result)
    if config.out:
        write_json_or_print(config.out, result)
    return result


def _make_engine(clock: str, scenario, setup: Setup):
    if clock == "wall":
        from jaxserve.serving.wall import WallEngine

        return WallEngine(
            scenario.sim_config(), scenario.sim_params(), setup.runners, setup.measured_quality
        )
    from jaxserve.serving.engine import VirtualEngine

    return VirtualEngine(
        scenario.sim_config(),
        scenario.sim_params(),
        [replicas[0] for replicas in setup.runners],
        setup.measured_quality,
    )


def _run(clock, engine, router, workload, task_set, stop, on_arrival):
    """Serve `workload` = (arrival_s, tasks, deadline_scale) on the wall or virtual clock."""
    from jaxserve.serving.engine import run_virtual
    from jaxserve.serving.wall import run_wall

    arrival_s, tasks, scale = workload
    run = run_wall if clock == "wall" else run_virtual
    return run(engine, router, arrival_s, tasks, task_set, stop, on_arrival, deadline_scale=scale)
