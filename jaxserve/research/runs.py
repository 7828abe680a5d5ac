"""Where an experiment writes, and the runs it is made of, all through the package API.

`Run` carries the mode and the output folders (passed in, never global); `sweep` and
`scale_sweep` are `jaxserve.evaluation.grid.run_sweep` (the record-free fast path),
`workload_runs` is `jaxserve.evaluation.simulate` per policy on the same arrivals, and
`train_router` is `jaxserve.evaluation.train` with a cache keyed by the training config;
`router_population` trains several seeds of a shipped router's exact training config.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np

from jaxserve import checkpoint
from jaxserve.data import data_path
from jaxserve.errors import InputError
from jaxserve.evaluation.bounds import nominal_curve
from jaxserve.evaluation.comparison import equal_hardware_names, equal_hardware_run
from jaxserve.evaluation.grid import run_sweep
from jaxserve.evaluation.simulate import simulate_seeds
from jaxserve.evaluation.stats import mean_ci, nested_mean_ci
from jaxserve.evaluation.train import TrainConfig, train
from jaxserve.io_utils import write_json_atomic
from jaxserve.policies.baselines import make_policy
from jaxserve.rl.config import (
    DQNConfig,
    config_from_json,
    config_to_json,
    default_hparams,
    finetune_overrides,
    hparams_to_json,
)
from jaxserve.rl.policy import load_checkpoint_scenario, load_learned_policy
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.scenarios import Scenario, equal_hardware
from jaxserve.sim.workloads import WorkloadSpec, mean_rate

TRACES = data_path("traces")  # the traces jaxserve ships (jaxserve/data/traces/README.md)
PAPER_LEVELS = (96, 98)
RUN_METRICS = (
    "performance",
    "normalized_performance",
    "availability",
    "goodput",
    "offered_rate",
    "time_above_96",
    "time_above_98",
    "routing_fraction",
    "latency_p99_s",
)


@dataclasses.dataclass(frozen=True)
class Run:
    """One experiment run's mode and folders: JSON and figures under `docs_dir`."""

    mode: str  # smoke | quick | full
    docs_dir: Path
    routers_dir: Path  # routers trained by experiments (cached, not committed)
    checkpoints_dir: Path  # the shipped routers

    @property
    def json_dir(self) -> Path:
        return self.docs_dir / "experiments"

    @property
    def figures_dir(self) -> Path:
        return self.docs_dir / "figures"

    @property
    def hard_router(self) -> Path:
        return self.checkpoints_dir / "opt-a100x4-hard"

    @property
    def soft_router(self) -> Path:
        return self.checkpoints_dir / "opt-a100x4-soft"


@dataclasses.dataclass(frozen=True)
class Alone:
    """A comparison row: model `model` alone on all the scenario's GPUs (equal hardware)."""

    model: int


@dataclasses.dataclass(frozen=True)
class Member:
    """A comparison row: member `member` (a training seed) of a router population checkpoint."""

    path: Path
    member: int


@dataclasses.dataclass(frozen=True)
class Population:
    """Routers trained like a shipped one, `seeds` training seeds; `steps`, `num_envs` and
    `episode_length` replace its DQNConfig's (None: the shipped value, i.e. full mode)."""

    seeds: int = 3
    steps: int | None = None
    num_envs: int | None = None
    episode_length: int | None = None


SMOKE_POPULATION = Population(seeds=2, steps=4000, num_envs=4, episode_length=1000)
QUICK_POPULATION = Population(steps=300_000)
ROUTER = "router"  # the label of a population's pooled row; members are 'router #m'
SHIPPED = "shipped router"  # the shipped checkpoint, a row of its own beside its population


def member_name(member: int, label: str = ROUTER) -> str:
    return f"{label} #{member}"


def members_of(names, label: str = ROUTER) -> list[str]:
    """The member rows ('router #0', ...) of population `label` among row names."""
    return [n for n in names if n.startswith(f"{label} #")]


def core_baselines(scenario: Scenario) -> list[str]:
    """The baselines every experiment includes: each static model, greedy and lp."""
    return [f"static:{k}" for k in range(scenario.num_models)] + ["greedy", "lp"]


def alone_name(scenario: Scenario, model: int) -> str:
    """'OPT-6.7B x4 GPUs': the row name of a model alone on the scenario's GPUs."""
    return equal_hardware_names(scenario)[model]


def with_baselines(scenario: Scenario, routers: dict, equal: bool = True) -> dict:
    """{label: router Path}, every core baseline {name: name}, then (with `equal`) each
    model alone on the same GPUs {'OPT-6.7B x4 GPUs': Alone(k)}."""
    rows = {**routers, **{n: n for n in core_baselines(scenario)}}
    if equal:
        rows |= {alone_name(scenario, k): Alone(k) for k in range(scenario.num_models)}
    return rows


def is_static(name: str) -> bool:
    """A single-model row: on the scenario's placement (`static:K`) or alone on its GPUs."""
    return name.startswith("static:") or name.endswith(" GPUs")


def _policy(scenario: Scenario, spec, env=None):
    """A router checkpoint Path or population Member as a policy; a baseline name as given
    (or made, when `env` is given)."""
    if isinstance(spec, Path):
        return load_learned_policy(spec, scenario)
    if isinstance(spec, Member):
        return load_learned_policy(spec.path, scenario, member=spec.member)
    return spec if env is None else make_policy(spec, env, scenario)


def _resolve(scenario: Scenario, named: dict, env) -> list:
    """Callables for {label: baseline name | router checkpoint Path | Member}."""
    return [_policy(scenario, spec, env) for spec in named.values()]


PER_SEED_KEYS = ("availability", "normalized_performance", "performance")
GRID_KEYS = ("normalized_performance", "performance", "availability", "routing_fraction")


def _grid(scenario: Scenario, named: dict, rates, mixes, num_requests, seeds, workload=None):
    """Per-seed metrics {key: (P, R, X, S[, A])} of every row of `named`, in its order.

    Policies share one `run_sweep`; each `Alone(k)` row is its own sweep on the same
    arrivals (same seeds), normalised by this scenario's peak of each run.
    """
    policies = {n: v for n, v in named.items() if not isinstance(v, Alone)}
    env = make_env(scenario.sim_config(workload, emit_records=False))
    res = run_sweep(
        scenario, list(policies), rates, mixes, (1.0,), num_requests, seeds,
        _resolve(scenario, policies, env), per_seed=True, workload=workload,
    )  # fmt: skip
    main = {k: np.asarray(res[k])[:, :, :, 0] for k in GRID_KEYS}
    peak = np.asarray(res["peak"])[0, :, :, 0]  # (R, X, S): every row saw these arrivals
    rows, index = {}, {n: i for i, n in enumerate(policies)}
    for name, value in named.items():
        if not isinstance(value, Alone):
            rows[name] = {k: main[k][index[name]] for k in GRID_KEYS}
            continue
        alone = equal_hardware_run(
            scenario, value.model, rates, num_requests, seeds, mixes, workload
        )
        routed = np.zeros_like(main["routing_fraction"][0])
        routed[..., value.model] = 1.0
        rows[name] = {
            "normalized_performance": alone["performance"] / np.maximum(peak, 1e-12),
            "performance": alone["performance"],
            "availability": alone["availability"],
            "routing_fraction": routed,
        }
    grid = {k: np.stack([rows[n][k] for n in named]) for k in GRID_KEYS}
    return grid, res


def _with_intervals(grid: dict, seed_axis: int) -> dict:
    """Means over the seed axis of every key; 95 % intervals (…, 2) of performance and
    availability (whose seed axis is the last)."""
    out = {k: v.mean(axis=seed_axis).tolist() for k, v in grid.items()}
    for k in ("normalized_performance", "availability"):
        out[f"{k}_ci"] = mean_ci(grid[k])[1].tolist()
    return out


def sweep(scenario: Scenario, named: dict, rates, mixes=None, num_requests=2000, seeds=2) -> dict:
    """Every row x rate (x mix) x seed; means [p, r, x], 95 % intervals [p, r, x, 2] over
    seeds, and per-seed availability [p, r, x, s] (for per-seed max sustainable rates)."""
    rates = np.asarray(rates, np.float64)
    grid, res = _grid(scenario, named, rates, mixes, num_requests, seeds)
    bound = np.asarray([nominal_curve(scenario, rates, m) for m in res["mixes"]])  # (X, R)
    perf = grid["normalized_performance"].mean(axis=3)
    return {
        "policies": list(named),
        "rates": rates.tolist(),
        "mixes": res["mixes"],
        **_with_intervals(grid, seed_axis=3),
        **{f"{k}_per_seed": grid[k].tolist() for k in PER_SEED_KEYS},
        "fluid_bound": bound.T.tolist(),  # (R, X)
        "fraction_of_bound": (perf / np.maximum(bound.T[None], 1e-12)).tolist(),
        "num_requests": num_requests,
        "seeds": seeds,
        "wall_s": res["wall_s"],
    }


def scale_sweep(
    scenario: Scenario, named: dict, spec: WorkloadSpec, scales, num_requests=2000, seeds=2
) -> dict:
    """Rows x `rate_scale` of any workload kind x seeds; means [p, s], intervals [p, s, 2]
    and per-seed availability [p, s, seed]."""
    rates = np.asarray(scales, np.float64) * mean_rate(spec)  # run_sweep rescales to each
    grid, res = _grid(scenario, named, rates, None, num_requests, seeds, spec)
    grid = {k: v[:, :, 0] for k, v in grid.items() if k != "routing_fraction"}  # one mix
    return {
        "policies": list(named),
        "scales": [float(s) for s in scales],
        **_with_intervals(grid, seed_axis=2),
        "availability_per_seed": grid["availability"].tolist(),
        "wall_s": res["wall_s"],
        "num_requests": num_requests,
        "seeds": seeds,
    }


def workload_runs(
    scenario: Scenario,
    named: dict,
    spec: WorkloadSpec,
    num_requests: int,
    seed: int = 0,
    window_s: float = 10.0,
    keep_series: bool = True,
    seeds: int = 1,
) -> dict:
    """Every row on the same arrivals, `seeds` episodes each (seed, seed+1, ...): the mean
    of each docs/spec.md §4 metric with a 95 % interval over episodes; time above 96/98 %
    pooled over all windows; `series_per_seed` kept for bootstrap ratios.

    `named`: {label: baseline name | router checkpoint Path | Member | Alone(k)}.
    """
    out = {"wall_s": 0.0, "num_requests": 0, "seeds": seeds, "runs": {}}
    for name, value in named.items():
        sc, policy = scenario, value
        if isinstance(value, Alone):
            sc, policy = equal_hardware(scenario, value.model), "static:0"
        else:
            policy = _policy(scenario, value)
        start = time.perf_counter()
        runs = simulate_seeds(
            sc, policy, spec, num_requests, list(range(seed, seed + seeds)), window_s,
            policy_name=name, normalise_by=scenario,
        )  # fmt: skip
        out["wall_s"] += time.perf_counter() - start
        out["num_requests"] = int(runs[0]["num_arrived"])
        out["runs"][name] = _summarise_runs(runs, keep_series)
    return out


def _summarise_runs(runs: list[dict], keep_series: bool) -> dict:
    """Mean (interval) of each metric over episodes; pooled time above 96/98 %."""
    row = {}
    for k in RUN_METRICS:
        values = np.asarray([r[k] for r in runs], np.float64)
        row[k] = values.mean(axis=0).tolist()
        if values.ndim == 1:
            row[f"{k}_ci"] = mean_ci(values)[1].tolist()
            row[f"{k}_per_seed"] = values.tolist()
    series = [r["windowed_normalized_performance"] for r in runs]
    for level in PAPER_LEVELS:
        row[f"time_above_{level}"] = float(np.mean(np.concatenate(series) >= level / 100))
    row["series_per_seed"] = series
    if keep_series:
        row["window_start_s"] = runs[0]["window_start_s"]
        row["series"] = series[0]
    return row


def train_router(
    run: Run,
    name: str,
    scenario: Scenario,
    dqn: DQNConfig,
    finetune_from: Path | None = None,
    seeds: int = 1,
    hparams: dict | None = None,
) -> tuple[Path, dict]:
    """Train (or reuse, when an identical finished run exists) a router; (path, cost).

    `seeds` > 1: a population of that many training seeds in one compiled call (members
    0..seeds-1 of the checkpoint). `hparams`: HParams overrides. Cost: env steps and wall
    seconds of this training run (compilation included).
    """
    hparams = finetune_overrides(hparams or {}, finetune_from)  # as `train --finetune-from`
    config = TrainConfig(
        scenario=scenario, dqn=dqn, hparams=hparams, finetune_from=finetune_from, seeds=seeds
    )
    out = run.routers_dir / name
    cost_file = out / "cost.json"
    wanted = {
        "dqn_config": json.loads(json.dumps(config_to_json(dqn))),
        "scenario": scenario.name,
        "finetuned_from": str(finetune_from) if finetune_from else None,
        "hparams": config.search_points()[0],  # with the reward's defaults: what trains
        **({"seeds": seeds} if seeds > 1 else {}),  # keeps single-seed caches valid
    }
    if cost_file.exists():
        cost = json.loads(cost_file.read_text())
        if cost.get("wanted") == wanted and checkpoint.read_metadata(out).get("finished"):
            return out, cost
    try:  # an interrupted run of the same config resumes from its last chunk
        summary = train(config, out, keep_state=False).summary
    except InputError:  # a finished or different run: start over
        shutil.rmtree(out)
        summary = train(config, out, keep_state=False).summary
    cost = {
        "wanted": wanted,
        "env_steps": int(summary["env_steps"]),
        "wall_s": float(summary["wall_s"]),
        "eval_mean": float(summary["eval_mean"][0]),
    }
    write_json_atomic(cost_file, cost)
    return out, cost


def shipped_training(router: Path) -> tuple[Scenario, DQNConfig, dict, Path | None]:
    """(scenario, DQNConfig, HParams overrides, fine-tuned-from) a router checkpoint was
    trained with, read from its metadata (overrides: the values that differ from today's
    defaults, so a default-trained router's cache key has none)."""
    meta = checkpoint.read_metadata(router)
    defaults = hparams_to_json(default_hparams())
    hparams = {k: _stored(v[0] if isinstance(v, list) else v) for k, v in meta["hparams"].items()}
    changed = {k: v for k, v in hparams.items() if not np.isclose(v, defaults[k], rtol=1e-6)}
    parent = meta.get("finetuned_from")
    dqn = config_from_json(meta["dqn_config"])
    return load_checkpoint_scenario(router), dqn, changed, Path(parent) if parent else None


def _stored(value):
    """A hyperparameter as it was given: stored as float32, so 0.1 reads 0.10000000149."""
    return value if isinstance(value, int) else float(str(np.float32(value)))


def router_population(run: Run, router: Path, population: Population) -> tuple[dict, dict]:
    """({'router #m': Member}, training cost): `population.seeds` routers trained with
    `router`'s exact training config (its budget replaced where `population` says so);
    cached in run.routers_dir, shared by every experiment asking for the same population."""
    scenario, dqn, hparams, parent = shipped_training(router)
    budget = {"total_env_steps": population.steps, "num_envs": population.num_envs}
    budget["episode_length"] = population.episode_length
    dqn = dataclasses.replace(dqn, **{k: v for k, v in budget.items() if v is not None})
    name = f"{router.name}_x{population.seeds}_{run.mode}"
    path, cost = train_router(run, name, scenario, dqn, parent, population.seeds, hparams)
    return {member_name(m): Member(path, m) for m in range(population.seeds)}, cost


def pool_members(values, num_members: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, 95 % interval) of a population from its member rows' per-seed values
    (members, …, seeds): two-level, training seeds x evaluation episodes."""
    values = np.moveaxis(np.asarray(values, np.float64), 0, -2)  # (…, members, seeds)
    assert values.shape[-2] == num_members, values.shape
    return nested_mean_ci(values)


def pool_sweep(res: dict, label: str = ROUTER) -> dict:
    """`res` (a `sweep`) with population `label`'s pooled row under res['pooled'][label]:
    the mean and two-level interval of each per-seed key over its member rows ([r, x])."""
    rows = [res["policies"].index(n) for n in members_of(res["policies"], label)]
    pooled = {}
    for key in PER_SEED_KEYS:
        mean, ci = pool_members(np.asarray(res[f"{key}_per_seed"])[rows], len(rows))
        pooled[key], pooled[f"{key}_ci"] = mean.tolist(), ci.tolist()
    return {**res, "pooled": {**res.get("pooled", {}), label: pooled}}


def as_json(data):
    """`data` as the JSON will hold it (str keys, lists): what plots and write-ups read, so a
    write-up can be re-rendered from a stored result (`reproduce` does, when it is current)."""
    return json.loads(json.dumps(data))


def run_pipeline(module_name: str, config, run: Run) -> dict:
    """An experiment's `main`: compute -> (JSON-typed data) -> plot -> write-up -> its JSON.

    `module_name`: the script's `__name__`; its NAME, TITLE, compute(config, run),
    plot(data, figures_dir) and write_up(data, figures) are the steps (`reproduce`
    re-renders a current result with the same plot and write_up).
    """
    import sys

    m = sys.modules[module_name]
    start = time.perf_counter()
    data = as_json(m.compute(config, run))
    figures = m.plot(data, run.figures_dir)
    return write_result(
        run, m.NAME, m.TITLE, config, start, m.write_up(data, figures), figures, data
    )


def write_result(
    run: Run,
    name: str,
    title: str,
    config,
    start_s: float,
    write_up: dict,
    figures: list[str],
    data: dict,
) -> dict:
    """Assemble, save (docs/experiments/<name>.json) and return an experiment's result.

    `config`: the experiment's frozen config dataclass, recorded with the run's mode.
    `write_up`: {'claims': [...], 'markdown': str}.
    """
    result = {
        "name": name,
        "title": title,
        "mode": run.mode,
        "config": json.loads(json.dumps(dataclasses.asdict(config))),
        "wall_s": time.perf_counter() - start_s,
        "claims": write_up["claims"],
        "markdown": write_up["markdown"],
        "figures": figures,
        "data": data,
    }
    write_json_atomic(run.json_dir / f"{name}.json", result)
    return result
