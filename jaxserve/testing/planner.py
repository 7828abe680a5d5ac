"""A toy zoo whose best placement is worked out by hand (tests/planner/).

Two models, one task (deadline 0.25 s), `max_batch` 1 so a replica serves one request at
a time: "small" (quality 0.5, 0.01 s: on-time capacity 100 req/s per replica, 10 GB) and
"big" (quality 1.0, 0.1 s: 10 req/s, 40 GB). On 2 GPUs (80 GB each) at 40 req/s the three
placements' fluid bounds, normalised by the zoo's peak 1.0, are:

* 2 x big:          2 · 10 / 40 · 1.0                  = 0.5
* 1 x small + big:  (10 · 1.0 + 30 · 0.5) / 40         = 0.625 (big full, small the rest)
* 2 x small:        min(1, 200 / 40) · 0.5             = 0.5

so only small + big can exceed 0.5, and any policy that keeps big busy and sends the rest
to small gets close to 0.625: the best placement is 1 x small + 1 x big (`TOY_BEST`). On
1 GPU the bounds are 10 / 40 = 0.25 (big) and 0.5 (small): no placement reaches 0.6.
"""

from __future__ import annotations

from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec

TOY_RATE = 40.0
TOY_MEMORY_GB = {"small": 10.0, "big": 40.0}
TOY_BEST = "1/1"  # replicas of (small, big)
TOY_BOUNDS = {"2/0": 0.5, "1/1": 0.625, "0/2": 0.5}


def toy_zoo() -> Scenario:
    """The zoo of the module docstring (one replica each; the planner re-places them)."""
    return Scenario(
        name="toy-zoo",
        model_names=("small", "big"),
        task_names=("t",),
        quality=((0.5, 1.0),),
        latency_s=((0.01,), (0.1,)),
        replicas=(1, 1),
        queue_capacity=(4, 4),
        deadline_s=(0.25,),
        workload=WorkloadSpec(kind="poisson", rate=TOY_RATE),
    )
