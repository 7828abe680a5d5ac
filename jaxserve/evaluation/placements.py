"""Placements: which of a zoo's models run on how many GPUs (docs/planner.md).

A *placement* gives every model of the zoo a replica count r_k ≥ 0; a replica of model k
takes g_k whole GPUs, g_k = ⌈memory_k / GPU memory⌉ (weights plus the KV of a full batch:
`roofline.opt_scoring_cost` for OPT sizes, or a given size in GB). The planner enumerates
every placement that uses at most N GPUs and leaves no room for another replica of any
model (with g_k = 1 for all k: the multisets of N models, C(K + N - 1, N) of them). A
multi-GPU replica keeps the zoo's latency profile: tensor-parallel speed-up is not modelled,
so such a replica is priced conservatively.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from jaxserve.errors import InputError
from jaxserve.sim import roofline
from jaxserve.sim.scenarios import Scenario, display_name

MAX_PLACEMENTS = 20_000  # enumeration guard: more than any plan can simulate


@dataclasses.dataclass(frozen=True)
class Placement:
    """Replica counts per zoo model and the GPUs one replica of each takes."""

    model_names: tuple[str, ...]
    replicas: tuple[int, ...]  # per zoo model, 0 = not deployed
    gpus_per_replica: tuple[int, ...]

    @property
    def gpus(self) -> int:
        """GPUs the placement occupies."""
        return sum(r * g for r, g in zip(self.replicas, self.gpus_per_replica, strict=True))

    @property
    def label(self) -> str:
        """'1xOPT-125M + 1xOPT-1.3B + 2xOPT-6.7B' (deployed models only)."""
        pairs = zip(self.model_names, self.replicas, strict=True)
        return " + ".join(f"{r}x{display_name(m)}" for m, r in pairs if r)

    @property
    def key(self) -> str:
        """'1/1/2': replica counts in zoo order, what `--placement` takes."""
        return "/".join(map(str, self.replicas))


def model_memory_gb(zoo: Scenario, model: str, memory_gb: Mapping[str, float]) -> float:
    """GB one replica of `model` needs: given, else the roofline's OPT weights + full-batch KV."""
    if model in memory_gb:
        return float(memory_gb[model])
    try:
        dims = roofline.get_opt_dims(model)
    except InputError:
        raise InputError(
            f"model = {model!r}: no memory size; expected an OPT size "
            f"({', '.join(roofline.OPT_DIMS)}) or memory_gb for it (--memory-gb {model}=GB)"
        ) from None
    k = zoo.model_names.index(model)
    tokens = roofline.DEFAULT_TOKENS_PER_REQUEST
    return roofline.opt_scoring_cost(dims, zoo.max_batch[k], tokens).bytes / 1e9


def gpus_per_replica(
    zoo: Scenario, gpu_memory_gb: float, memory_gb: Mapping[str, float]
) -> tuple[int, ...]:
    """⌈memory / GPU memory⌉ per zoo model (at least 1); `memory_gb` as `check_memory_gb`."""
    return tuple(
        max(1, math.ceil(model_memory_gb(zoo, m, memory_gb) / gpu_memory_gb - 1e-9))
        for m in zoo.model_names
    )


def check_memory_gb(zoo: Scenario, memory_gb: Mapping[str, float]) -> None:
    """InputError unless every entry names a zoo model and is a positive number of GB."""
    for name, size in memory_gb.items():
        if name not in zoo.model_names:
            raise InputError(
                f"memory_gb[{name!r}]: no such model in zoo {zoo.name!r}; expected one of "
                f"{list(zoo.model_names)}"
            )
        if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size < math.inf:
            raise InputError(f"memory_gb[{name!r}] = {size!r}: expected a positive number of GB")


def enumerate_placements(
    model_names: Sequence[str], gpus_per_replica: Sequence[int], num_gpus: int
) -> list[Placement]:
    """Every maximal placement on at most `num_gpus` GPUs (no other replica would fit)."""
    smallest = min(gpus_per_replica)
    out: list[Placement] = []

    def extend(k: int, counts: tuple[int, ...], used: int) -> None:
        if k == len(gpus_per_replica):
            if num_gpus - used < smallest and any(counts):
                out.append(Placement(tuple(model_names), counts, tuple(gpus_per_replica)))
            if len(out) > MAX_PLACEMENTS:
                raise InputError(
                    f"gpus = {num_gpus}: more than {MAX_PLACEMENTS} placements; "
                    "expected fewer GPUs or models"
                )
            return
        most = (num_gpus - used) // gpus_per_replica[k]
        # Fewer replicas of the last model leave room for one more: never maximal. So the
        # search visits about as many nodes as it keeps, and the guard above stops it early.
        for r in (most,) if k == len(gpus_per_replica) - 1 else range(most + 1):
            extend(k + 1, counts + (r,), used + r * gpus_per_replica[k])

    extend(0, (), 0)
    return out


def placement_scenario(zoo: Scenario, placement: Placement) -> Scenario:
    """The zoo restricted to the deployed models, with the placement's replicas.

    Queue capacity per replica as in the zoo (⌈capacity / replicas⌉, as `equal_hardware`),
    times the new replica count; quality, latency, deadlines and rules unchanged.
    """
    keep = [k for k, r in enumerate(placement.replicas) if r > 0]
    per_replica = replica_queue_capacity(zoo)
    wait = zoo.max_wait_s
    return dataclasses.replace(
        zoo,
        name=f"{zoo.name}-plan-{placement.key.replace('/', '-')}",
        model_names=tuple(zoo.model_names[k] for k in keep),
        quality=tuple(tuple(row[k] for k in keep) for row in zoo.quality),
        latency_s=tuple(zoo.latency_s[k] for k in keep),
        replicas=tuple(placement.replicas[k] for k in keep),
        queue_capacity=tuple(per_replica[k] * placement.replicas[k] for k in keep),
        max_wait_s=tuple(wait[k] for k in keep) if wait else (),
        description=f"{placement.label} ({placement.gpus} GPUs) from zoo {zoo.name}",
    )


def replica_queue_capacity(zoo: Scenario) -> tuple[int, ...]:
    """Queue capacity per replica of each zoo model: ⌈capacity / replicas⌉ (`equal_hardware`)."""
    return tuple(-(-c // r) for c, r in zip(zoo.queue_capacity, zoo.replicas, strict=True))


def parse_placement(text: str, names: Sequence[str], gpus: Sequence[int]) -> Placement:
    """'1/1/2' (replicas per zoo model `names`, each replica taking `gpus[k]` GPUs)."""
    try:
        counts = tuple(int(x) for x in text.split("/"))
    except ValueError:
        counts = ()
    if len(counts) != len(names) or min(counts) < 0 or not any(counts):
        raise InputError(
            f"placement = {text!r}: expected {len(names)} replica counts ≥ 0 separated by '/', "
            f"one per model ({', '.join(names)}), not all 0"
        )
    return Placement(tuple(names), counts, tuple(gpus))


def check_fits(placement: Placement, num_gpus: int) -> None:
    """InputError naming the placement when it needs more than `num_gpus` GPUs."""
    if placement.gpus > num_gpus:
        raise InputError(
            f"placement {placement.key} ({placement.label}) needs {placement.gpus} GPUs: "
            f"expected at most {num_gpus}"
        )


__all__ = [
    "Placement",
    "check_fits",
    "check_memory_gb",
    "enumerate_placements",
    "gpus_per_replica",
    "model_memory_gb",
    "parse_placement",
    "placement_scenario",
    "replica_queue_capacity",
]
