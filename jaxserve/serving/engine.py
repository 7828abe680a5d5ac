"""Virtual-clock serving: the reference simulator's event loop, with real model runs as service.

`VirtualEngine` is `jaxserve.sim.reference`'s discrete-event simulator (docs/simulator.md,
docs/spec.md §3) with one change: when a batch starts, the batch's real prompts run on the real
model and the measured wall time of that run becomes the batch's service time on the
simulated clock. Queues, replicas, drops, the batch-size rule (which, as in the simulator,
uses the nominal profile: a server cannot know the run time in advance) and outcomes are
the simulator's own code, so predicted and measured runs differ only in service times.
Several replicas are emulated on one device: batches run one after another in real time,
while the simulated clock lets them overlap.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable

import numpy as np

from jaxserve.progress import no_progress
from jaxserve.serving.executor import NO_ANSWER
from jaxserve.serving.tasks import Prompt
from jaxserve.sim.reference import INF, ModelQueue, Params, Request, Simulator
from jaxserve.sim.types import SimConfig

NOT_RUN = -2  # answer of a request that never reached a model


@dataclasses.dataclass
class ServeRequest(Request):
    """A reference request plus its prompt and what the model answered."""

    prompt: Prompt | None = None
    action: int = -1  # the router's action (num_models = reject)
    answer: int = NOT_RUN
    batch_size: int = 0
    start_s: float = math.nan  # batch start (simulated clock)

    @property
    def correct(self) -> bool:
        return self.prompt is not None and self.answer == self.prompt.label


@dataclasses.dataclass
class BatchLog:
    """One executed batch: which model, when (simulated), how many, measured seconds."""

    model: int
    replica: int
    start_s: float
    size: int
    service_s: float


def request_deadline_s(task_deadline_s, arrival_s: float, task: int, scale: float) -> float:
    """Absolute deadline: arrival + the task's deadline x the request's factor (dynamic
    deadlines), in float32 like the simulators (docs/simulator.md)."""
    return arrival_s + float(np.float32(task_deadline_s[task]) * np.float32(scale))


class VirtualEngine(Simulator):
    """Reference simulator whose batch service time is a measured model run."""

    def __init__(self, config: SimConfig, params, runners, measured_quality: bool = False):
        super().__init__(config, Params.from_any(params), noise=None)
        self.runners = runners  # one executor.ModelRunner per model
        self.measured_quality = measured_quality
        self.batches: list[BatchLog] = []

    def quality(self, request) -> float:
        """Measured correctness (1 or 0) of the answer, or the scenario's table."""
        if self.measured_quality:
            return 1.0 if request.correct else 0.0
        return super().quality(request)

    def service_time_s(self, model: ModelQueue, replica: int, batch: list, t: float) -> float:
        """The batch really runs on the model; its measured wall time is the service time."""
        answers, service_s = self.runners[model.index].run([r.prompt for r in batch])
        for request, answer in zip(batch, answers, strict=True):
            request.answer, request.batch_size, request.start_s = int(answer), len(batch), t
        self.batches.append(BatchLog(model.index, replica, t, len(batch), service_s))
        return service_s

    def in_system(self) -> int:
        """Requests queued or in service."""
        return sum(len(m.queue) + sum(len(b) for b in m.batches if b) for m in self.models)


def run_virtual(
    engine: VirtualEngine,
    router,
    arrival_s: np.ndarray,
    tasks: np.ndarray,
    task_set,
    stop: threading.Event,
    on_arrival: Callable[[int], None] = no_progress,
    deadline_scale: np.ndarray | None = None,
) -> list[ServeRequest]:
    """Route and serve every arrival in order; stops early (cleanly) when `stop` is set.

    Returns the requests that arrived; those still in the system after a stop keep
    outcome -1 (unfinished). `on_arrival(1)` is called after each arrival (progress).
    `deadline_scale`: (n,) factor on each request's task deadline (None = 1).
    """
    deadline_s = engine.params.deadline_s
    requests: list[ServeRequest] = []
    n = len(arrival_s)
    scale = np.ones(n) if deadline_scale is None else np.asarray(deadline_scale)
    for i in range(n):
        if stop.is_set():
            break
        a_i, task = float(arrival_s[i]), int(tasks[i])
        request = ServeRequest(
            decision=i,
            task=task,
            arrival_s=a_i,
            deadline_s=request_deadline_s(deadline_s, a_i, task, scale[i]),
            prompt=task_set.draw(task),
        )
        requests.append(request)
        engine.step = i
        engine.rewards.append(0.0)
        request.action = router.decide(i, a_i, engine.models)
        engine.admit(request, request.action)
        t_next = float(arrival_s[i + 1]) if i + 1 < n else INF  # INF: drain (docs/spec.md §3.8)
        for model in engine.models:
            engine.advance(model, a_i, t_next)
        on_arrival(1)
    return requests


__all__ = ["NO_ANSWER", "NOT_RUN", "ServeRequest", "VirtualEngine", "run_virtual"]
