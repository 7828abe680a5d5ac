"""`jaxserve plan`: choose a placement of a zoo's models on N GPUs and a router, together.

Enumerate every placement (`placements.py`), rank them by the fluid bound over the
workload's rates, simulate them in that order under greedy and the RouterWise-style `lp`
policy (per placement, the fluid LP's routing fractions) until the bound of the next is
below what a simulated one already reached (the bound is an upper bound, so nothing
screened out could have won), then train learned routers for the survivors, all of them
in one population over placements (`plan_train.py`), and simulate them on the same
arrivals. docs/planner.md has the decisions.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxserve.errors import InputError
from jaxserve.evaluation.bounds import no_bound_reason
from jaxserve.evaluation.grid import run_sweep
from jaxserve.evaluation.placements import (
    Placement,
    check_fits,
    check_memory_gb,
    enumerate_placements,
    gpus_per_replica,
    parse_placement,
    placement_scenario,
)
from jaxserve.evaluation.plan_train import (
    save_placement_router,
    train_placement_routers,
    training_config,
)
from jaxserve.evaluation.stats import mean_ci
from jaxserve.evaluation.sweep import resolve_scenario, resolve_workload
from jaxserve.policies.lp import fluid_upper_bound
from jaxserve.progress import no_progress
from jaxserve.rl.config import DQNConfig
from jaxserve.rl.envs import reference_capacity
from jaxserve.rl.trainer import load_finetune_params
from jaxserve.sim import roofline
from jaxserve.sim.scenarios import Scenario
from jaxserve.sim.workloads import WorkloadSpec

BASELINES = ("greedy", "lp")
LEARNED = "learned"
LEVEL_96 = 0.96
PLAN_DQN = DQNConfig(total_env_steps=300_000)
ROUTER_DIR = "router"


@dataclasses.dataclass(frozen=True)
class PlanConfig:
    """What to plan for: a zoo (scenario), N GPUs, the workload, and the search's sizes.

    `rates`: the workload's rates (each its long-run mean rate; None: 6 rates from 1/10 to
    2x the best model's on-time capacity on all N GPUs). `workload`: its kind (None:
    Poisson). `include`: placements ('1/1/2', replicas per zoo model) always simulated.
    `min_performance`/`min_availability`: also answer the fewest GPUs (≤ `gpus`) that meet
    both at every rate. `train_top`: learned routers for the best that many simulated
    placements (None: all of them), `train_seeds` seeds each, in one population;
    `finetune_from`: a router checkpoint of the zoo that every one starts from.
    """

    scenario: str | Scenario = "opt-a100x4"
    gpus: int = 4
    rates: Sequence[float] | None = None
    workload: str | WorkloadSpec | None = None
    task_mix: Sequence[float] | None = None
    deadline_scale: float = 1.0
    models: Sequence[str] | None = None
    hardware: str = "a100"
    memory_gb: Mapping[str, float] = dataclasses.field(default_factory=dict)
    include: Sequence[str] = ()
    num_requests: int = 4000
    seeds: int = 8
    max_simulated: int = 8
    train_top: int | None = None
    train_seeds: int = 1
    dqn: DQNConfig = PLAN_DQN
    finetune_from: str | Path | None = None
    seed: int = 0
    min_performance: float | None = None
    min_availability: float | None = None

    def __post_init__(self):
        _check_int("gpus", self.gpus, 1)
        _check_int("seeds", self.seeds, 2)
        _check_int("num_requests", self.num_requests, 1)
        _check_int("max_simulated", self.max_simulated, 1)
        if self.train_top is not None:
            _check_int("train_top", self.train_top, 0)
        _check_int("train_seeds", self.train_seeds, 1)
        _check_positive("deadline_scale", self.deadline_scale)
        for r in self.rates or ():
            _check_positive("rates[]", r)
        if self.rates is not None and not len(self.rates):
            raise InputError("PlanConfig.rates = []: expected at least one rate")
        for name in ("min_performance", "min_availability"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and 0 <= value <= 1):
                raise InputError(f"PlanConfig.{name} = {value!r}: expected a number in [0, 1]")
        roofline.get_hardware(self.hardware)

    @property
    def targets(self) -> bool:
        return self.min_performance is not None or self.min_availability is not None


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(name: str, value, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InputError(f"PlanConfig.{name} = {value!r}: expected an integer ≥ {low}")


def _check_positive(name: str, value) -> None:
    if not _is_number(value) or value <= 0:
        raise InputError(f"PlanConfig.{name} = {value!r}: expected a positive finite number")


@dataclasses.dataclass(frozen=True)
class PolicyRuns:
    """One policy on one placement: (R, S) normalised performance and availability."""

    performance: np.ndarray  # normalised by the zoo's peak at the workload's mix
    availability: np.ndarray

    def summary(self) -> dict:
        """Mean over rates with a 95 % interval over seeds; per-rate means; time ≥ 96 %."""
        score, score_ci = mean_ci(self.performance.mean(axis=0))
        avail, avail_ci = mean_ci(self.availability.mean(axis=0))
        per_rate, per_rate_ci = mean_ci(self.performance)
        return {
            "performance": float(score),
            "performance_ci": score_ci.tolist(),
            "availability": float(avail),
            "availability_ci": avail_ci.tolist(),
            "time_above_96": float(np.mean(self.performance >= LEVEL_96)),
            "performance_per_rate": per_rate.tolist(),
            "performance_per_rate_ci": per_rate_ci.tolist(),
            "availability_per_rate": self.availability.mean(axis=1).tolist(),
        }


@dataclasses.dataclass(eq=False)
class PlacementResult:
    """A placement's bound, its simulated policies (none when screened out) and why not."""

    placement: Placement
    bound: np.ndarray  # (R,) fluid LP value / zoo peak at each rate
    runs: dict[str, PolicyRuns] = dataclasses.field(default_factory=dict)
    screened: str | None = None
    router_dir: str | None = None

    @property
    def bound_score(self) -> float:
        return float(self.bound.mean())

    def best_policy(self) -> str | None:
        if not self.runs:
            return None
        return max(self.runs, key=lambda n: self.runs[n].performance.mean())

    def score(self) -> float:
        best = self.best_policy()
        return -math.inf if best is None else float(self.runs[best].performance.mean())

    def score_low(self) -> float:
        """Lower end of the best policy's 95 % interval of the mean over rates."""
        best = self.best_policy()
        if best is None:
            return -math.inf
        return float(mean_ci(self.runs[best].performance.mean(axis=0))[1][0])

    def meets(self, min_performance: float | None, min_availability: float | None) -> bool:
        """Some simulated policy keeps both means ≥ the targets at every rate."""
        perf, avail = min_performance, min_availability
        return any(
            _at_least(r.performance, perf) and _at_least(r.availability, avail)
            for r in self.runs.values()
        )


def _at_least(per_seed: np.ndarray, target: float | None) -> bool:
    """The mean over seeds of an (R, S) metric is ≥ target at every rate (None: no target)."""
    return target is None or float(per_seed.mean(axis=1).min()) >= target


@dataclasses.dataclass
class PlanResult:
    """Every placement (ranked: simulated by score, then screened by bound) and the choice."""

    config: PlanConfig
    zoo: Scenario
    gpus: int
    rates: np.ndarray
    workload: WorkloadSpec
    bound_valid: str | None  # None, or why the bound does not screen here
    placements: list[PlacementResult]
    num_enumerated: int
    wall_s: float
    fewest_gpus: dict | None = None
    train_wall_s: float | None = None  # the population call training the learned routers

    @property
    def chosen(self) -> PlacementResult:
        return self.placements[0]


def plan(
    config: PlanConfig, out_dir: str | Path | None = None, on_step: Callable = no_progress
) -> PlanResult:
    """Plan for `config.gpus` GPUs (or, with targets, the fewest that meet them).

    With `out_dir`, trained routers are checkpointed under it and the chosen placement's
    router is copied to `out_dir/router` (a `jaxserve serve`/`evaluate` checkpoint).
    `on_step(1)` after each simulated placement and each trained router's simulation.
    """
    start = time.perf_counter()
    setup = _Setup.build(config)  # bad input (sizes included): one error before any work
    if config.finetune_from is not None:  # the start of every router must fit the zoo
        load_finetune_params(config.finetune_from, setup.zoo, config.dqn)
    fewest = find_fewest_gpus(config, on_step) if config.targets else None
    gpus = fewest["gpus"] if fewest and fewest["gpus"] is not None else config.gpus
    result = plan_for(dataclasses.replace(config, gpus=gpus), out_dir, on_step)
    result.fewest_gpus = fewest
    result.wall_s = time.perf_counter() - start
    return result


def plan_for(
    config: PlanConfig, out_dir: str | Path | None = None, on_step: Callable = no_progress
) -> PlanResult:
    """Enumerate, screen, simulate and train for exactly `config.gpus` GPUs."""
    start = time.perf_counter()
    setup = _Setup.build(config)
    results = setup.screen_and_simulate(on_step)
    ranked = rank(results)
    train_wall_s = None
    survivors = [entry for entry in ranked[: config.train_top] if entry.runs]
    if survivors:
        train_wall_s = setup.add_learned(survivors, out_dir, on_step)
    ranked = rank(results)
    if out_dir is not None and ranked[0].router_dir is not None:
        target = Path(out_dir) / ROUTER_DIR
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ranked[0].router_dir, target)
        ranked[0].router_dir = str(target)
    return PlanResult(
        config, setup.zoo, config.gpus, setup.rates, setup.workload, setup.no_screen,
        ranked, setup.num_enumerated, time.perf_counter() - start, train_wall_s=train_wall_s,
    )  # fmt: skip


def rank(results: list[PlacementResult]) -> list[PlacementResult]:
    """Simulated placements by score (best policy's mean over rates), then the rest by bound."""
    simulated = sorted((r for r in results if r.runs), key=lambda r: -r.score())
    rest = sorted((r for r in results if not r.runs), key=lambda r: -r.bound_score)
    return simulated + rest


def find_fewest_gpus(config: PlanConfig, on_step: Callable = no_progress) -> dict:
    """The fewest GPUs (1..config.gpus) where a placement meets both targets at every rate.

    GPU counts whose every placement has a bound below `min_performance` at some rate are
    skipped without simulating (the bound certifies they cannot meet it); the rest are
    simulated under greedy and lp only (no training per count).
    """
    tried = []
    for n in range(1, config.gpus + 1):
        trial = dataclasses.replace(config, gpus=n, train_top=0, include=())
        try:
            setup = _Setup.build(trial)
        except InputError as err:  # no model fits n GPUs: try more
            tried.append({"gpus": n, "note": str(err)})
            continue
        if setup.certainly_below(config.min_performance):
            tried.append({"gpus": n, "note": "every placement's bound is below the target"})
            continue
        results = rank(setup.screen_and_simulate(on_step))
        meeting = [r for r in results if r.meets(config.min_performance, config.min_availability)]
        tried.append({"gpus": n, "note": f"{len(meeting)} placement(s) meet the targets"})
        if meeting:
            return {"gpus": n, "placement": meeting[0].placement.key, "tried": tried}
    return {"gpus": None, "placement": None, "tried": tried}


@dataclasses.dataclass
class _Setup:
    """A plan's zoo, placements, rates, workload and bound, ready to simulate."""

    config: PlanConfig
    zoo: Scenario
    rates: np.ndarray
    workload: WorkloadSpec
    mix: np.ndarray
    zoo_peak: float
    candidates: list[Placement]
    included: list[Placement]
    num_enumerated: int
    no_screen: str | None

    @classmethod
    def build(cls, config: PlanConfig) -> _Setup:
        full = resolve_scenario(config.scenario)
        check_memory_gb(full, config.memory_gb)
        zoo = select_models(full, config.models)
        memory_gb = {m: v for m, v in config.memory_gb.items() if m in zoo.model_names}
        gpu_gb = roofline.get_hardware(config.hardware).memory_bytes / 1e9
        per_replica = gpus_per_replica(zoo, gpu_gb, memory_gb)
        check_some_model_fits(zoo, per_replica, config.gpus)
        candidates = enumerate_placements(zoo.model_names, per_replica, config.gpus)
        included = [parse_placement(t, zoo.model_names, per_replica) for t in config.include]
        for p in included:
            check_fits(p, config.gpus)
        workload = resolve_workload(config.workload, zoo)
        mix = np.asarray(config.task_mix if config.task_mix is not None else zoo.task_mix())
        check_mix(mix, zoo)
        mix = mix / mix.sum()
        rates = np.asarray(config.rates or default_plan_rates(zoo, config.gpus), np.float64)
        extra = [p for p in included if p not in candidates]
        return cls(
            config, zoo, rates, workload, mix, zoo.peak_quality(mix), candidates + extra,
            included, len(candidates), screen_reason(zoo, workload),
        )  # fmt: skip

    def bound(self, placement: Placement) -> np.ndarray:
        """(R,) fluid LP value / zoo peak at each rate (a bound where `no_screen` is None)."""
        scenario = placement_scenario(self.zoo, placement)
        scale = self.config.deadline_scale
        values = [fluid_upper_bound(scenario, float(r), self.mix, scale)[0] for r in self.rates]
        return np.asarray(values) / self.zoo_peak

    def certainly_below(self, target: float | None) -> bool:
        """Every placement's bound is below `target` at some rate (only when it is a bound)."""
        if target is None or self.no_screen is not None:
            return False
        return all(self.bound(p).min() < target for p in self.candidates)

    def screen_and_simulate(self, on_step: Callable) -> list[PlacementResult]:
        """Simulate by decreasing bound until the next bound is below the best reached."""
        results = [PlacementResult(p, self.bound(p)) for p in self.candidates]
        order = sorted(results, key=lambda r: -r.bound_score)
        forced = [r for r in order if r.placement in self.included]
        best = None
        for entry in forced + [r for r in order if r not in forced]:
            reason = self._skip_reason(entry, best, sum(bool(r.runs) for r in results), forced)
            if reason is not None:
                entry.screened = reason
                continue
            entry.runs = self.simulate(entry.placement, BASELINES)
            on_step(1)
            if best is None or entry.score_low() > best.score_low():
                best = entry
        return results

    def _skip_reason(self, entry, best, num_simulated: int, forced) -> str | None:
        if entry in forced:
            return None
        if best is not None and self.no_screen is None and entry.bound_score < best.score_low():
            return (
                f"bound {entry.bound_score:.3f} < {best.score_low():.3f} "
                f"(lower 95 % end reached by {best.placement.key})"
            )
        if num_simulated >= self.config.max_simulated:
            return f"beyond the {self.config.max_simulated} best bounds simulated"
        return None

    def simulate(self, placement: Placement, names, policies=None) -> dict[str, PolicyRuns]:
        """Each policy at every rate and seed (common random numbers across placements)."""
        sweep = run_sweep(
            placement_scenario(self.zoo, placement), list(names), self.rates,
            [tuple(self.mix)], (self.config.deadline_scale,), self.config.num_requests,
            self.config.seeds, policies, per_seed=True, workload=self.workload,
        )  # fmt: skip
        perf = np.asarray(sweep["performance"])[:, :, 0, 0] / self.zoo_peak  # (P, R, S)
        avail = np.asarray(sweep["availability"])[:, :, 0, 0]
        return {n: PolicyRuns(perf[i], avail[i]) for i, n in enumerate(names)}

    def add_learned(self, entries: list[PlacementResult], out_dir, on_step: Callable) -> float:
        """Train routers for `entries`' placements in one population; simulate each.

        Returns the wall seconds of the population call (docs/planner.md, "Measured").
        """
        routers, wall_s = train_placement_routers(
            self.zoo, [e.placement for e in entries], self.config.dqn, self.rates,
            self.config.seed, self.config.train_seeds, self.config.finetune_from,
        )  # fmt: skip
        for entry, router in zip(entries, routers, strict=True):
            entry.runs |= self.simulate(entry.placement, [LEARNED], [router.policy()])
            if out_dir is not None:
                router_dir = Path(out_dir) / "routers" / entry.placement.key.replace("/", "-")
                shutil.rmtree(router_dir, ignore_errors=True)
                save_placement_router(router, self.config.seed, router_dir)
                entry.router_dir = str(router_dir)
            on_step(1)
        return wall_s


def select_models(zoo: Scenario, models: Sequence[str] | None) -> Scenario:
    """The zoo restricted to `models` (each must have the zoo's latency data)."""
    if models is None:
        return zoo
    if not models:
        raise InputError("models = []: expected at least one of the zoo's models")
    for m in models:
        if m not in zoo.model_names:
            raise InputError(
                f"model = {m!r}: no latency data in zoo {zoo.name!r}; expected one of "
                f"{list(zoo.model_names)}"
            )
    keep = {zoo.model_names.index(m) for m in models}
    replicas = tuple(r if k in keep else 0 for k, r in enumerate(zoo.replicas))
    subset = Placement(zoo.model_names, replicas, (1,) * zoo.num_models)
    return dataclasses.replace(placement_scenario(zoo, subset), name=zoo.name)


def check_some_model_fits(zoo: Scenario, per_replica: Sequence[int], gpus: int) -> None:
    """InputError when no model of the zoo fits `gpus` GPUs (one line naming the smallest)."""
    smallest = int(np.argmin(per_replica))
    if per_replica[smallest] > gpus:
        raise InputError(
            f"gpus = {gpus}: no model of zoo {zoo.name!r} fits; the smallest, "
            f"{zoo.model_names[smallest]}, needs {per_replica[smallest]} GPUs per replica"
        )


def check_mix(mix: np.ndarray, zoo: Scenario) -> None:
    if mix.shape != (zoo.num_tasks,) or not np.all(np.isfinite(mix)) or mix.min() < 0:
        raise InputError(f"task_mix = {mix.tolist()}: expected {zoo.num_tasks} probabilities ≥ 0")
    if mix.sum() <= 0:
        raise InputError(f"task_mix = {mix.tolist()}: expected a positive sum")


def default_plan_rates(zoo: Scenario, gpus: int, num: int = 6) -> np.ndarray:
    """1/10 to 2x the best-quality model's on-time capacity with one replica per GPU."""
    scale = reference_capacity(zoo) / zoo.replicas[_best_model(zoo)] * gpus
    return np.geomspace(scale / 10.0, 2.0 * scale, num)


def _best_model(zoo: Scenario) -> int:
    return int(np.argmax(np.asarray(zoo.quality).mean(axis=0)))


def screen_reason(zoo: Scenario, workload: WorkloadSpec) -> str | None:
    """Why the fluid bound cannot screen placements here (None: it can)."""
    if workload.deadline_schedule is not None:
        return "deadline schedule: the deadline changes over the run"
    if workload.mix_schedule is not None:
        return "mix schedule: the task mix changes over the run"
    return no_bound_reason(zoo)


__all__ = [
    "PlacementResult",
    "PlanConfig",
    "PlanResult",
    "PolicyRuns",
    "find_fewest_gpus",
    "plan",
    "plan_for",
    "rank",
    "training_config",
]
