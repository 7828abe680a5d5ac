"""Wall-clock serving: real arrival times, one worker thread per replica on its own device.

Queue admission, expiry drops, the batch-size rule and outcomes reuse the reference
simulator's methods (as the virtual engine does); what changes is time. A dispatcher
thread releases arrivals at their workload times and routes them; each replica's worker
waits for work, forms a batch under the shared lock, runs it outside the lock (JAX releases
the GIL, so replicas on different devices overlap) and resolves it at the real completion
time. While a batch runs, the router sees the replica's *expected* completion
(start + profile latency), since the real one is not known yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from jaxserve.progress import no_progress
from jaxserve.serving.engine import BatchLog, ServeRequest, VirtualEngine, request_deadline_s
from jaxserve.sim.reference import ModelQueue


class WallEngine(VirtualEngine):
    """Shared state of a wall-clock run; workers and the dispatcher hold `lock` to touch it."""

    def __init__(self, config, params, runners, measured_quality: bool = False):
        super().__init__(config, params, runners, measured_quality)
        self.replica_runners = runners  # [model][replica] -> ModelRunner
        self.lock = threading.Condition()
        self.shutdown = False
        self.stop: threading.Event | None = None
        self._t0 = 0.0
        self._origin_s = 0.0

    def start_clock(self, origin_s: float) -> None:
        """Clock time origin_s is now."""
        self._t0, self._origin_s = time.perf_counter(), origin_s

    def now(self) -> float:
        """Current time on the workload's clock."""
        return self._origin_s + time.perf_counter() - self._t0

    def _wait_for_batch(self, model: ModelQueue, replica: int) -> bool:
        """Under the lock: wait until this replica may start a batch; False = exit."""
        while True:
            if self.stop is not None and self.stop.is_set():
                return False
            if model.queue:
                wait_s = self.ready_s(model) - self.now()
                if wait_s <= 0:
                    return True
                self.lock.wait(timeout=wait_s)
            elif self.shutdown:
                return False
            else:
                self.lock.wait()

    def _take_batch(self, model: ModelQueue, replica: int) -> list[ServeRequest]:
        """Under the lock: drop expired, size and pop a batch (empty if all were dropped)."""
        t = self.now()
        if self.config.drop_expired:
            self.drop_expired(model, t)
            if not model.queue:
                return []
        b = self.batch_size(model, t)
        batch = [model.queue.popleft() for _ in range(b)]
        for request in batch:
            request.batch_size, request.start_s = b, t
        model.batches[replica] = batch
        model.completions.append((t + self.params.latency_s[model.index, b - 1], replica))
        return batch

    def _finish(self, model: ModelQueue, replica: int, batch, answers, service_s: float) -> None:
        """Under the lock: resolve the batch at the real completion time."""
        done_s = self.now()
        for request, answer in zip(batch, answers, strict=True):
            request.answer = int(answer)
            self.resolve(request, *self.completion_utility(request, done_s), done_s)
        model.batches[replica] = None
        model.completions[:] = [c for c in model.completions if c[1] != replica]
        self.batches.append(BatchLog(model.index, replica, batch[0].start_s, len(batch), service_s))
        self.lock.notify_all()

    def worker(self, k: int, replica: int) -> None:
        """Serve batches of model k on one replica until shutdown (or stop)."""
        model, runner = self.models[k], self.replica_runners[k][replica]
        while True:
            with self.lock:
                if not self._wait_for_batch(model, replica):
                    return
                batch = self._take_batch(model, replica)
            if batch:
                answers, service_s = runner.run([r.prompt for r in batch])
                with self.lock:
                    self._finish(model, replica, batch, answers, service_s)


def _start_workers(engine: WallEngine) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=engine.worker, args=(k, r), daemon=True, name=f"replica-{k}-{r}")
        for k, model in enumerate(engine.models)
        for r in range(len(model.batches))
    ]
    for thread in threads:
        thread.start()
    return threads


def run_wall(
    engine: WallEngine,
    router,
    arrival_s: np.ndarray,
    tasks: np.ndarray,
    task_set,
    stop: threading.Event,
    on_arrival: Callable[[int], None] = no_progress,
    deadline_scale: np.ndarray | None = None,
) -> list[ServeRequest]:
    """Release arrivals at their times, route them, let the replica workers serve; drain.

    `on_arrival(1)` is called after each arrival is routed (progress).
    """
    deadline_s = engine.params.deadline_s
    scale = np.ones(len(arrival_s)) if deadline_scale is None else np.asarray(deadline_scale)
    engine.stop = stop
    requests: list[ServeRequest] = []
    engine.start_clock(float(arrival_s[0]))
    threads = _start_workers(engine)
    try:
        for i, (a_i, task) in enumerate(zip(arrival_s, tasks, strict=True)):
            if stop.wait(timeout=max(0.0, float(a_i) - engine.now())):
                break
            request = ServeRequest(
                decision=i,
                task=int(task),
                arrival_s=float(a_i),
                deadline_s=request_deadline_s(deadline_s, float(a_i), int(task), scale[i]),
                prompt=task_set.draw(int(task)),
            )
            with engine.lock:
                requests.append(request)
                engine.step = i
                engine.rewards.append(0.0)
                request.action = router.decide(i, engine.now(), engine.models)
                engine.admit(request, request.action)
                engine.lock.notify_all()
            on_arrival(1)
    finally:
        with engine.lock:
            engine.shutdown = True
            engine.lock.notify_all()
        for thread in threads:
            thread.join()
    return requests
