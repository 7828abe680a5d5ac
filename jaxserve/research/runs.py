"""Where an experiment writes, and the runs it is made of, all through the package API.

`Run` carries the mode and the output folders (passed in, never global); `sweep` and
`scale_sweep` are `jaxserve.evaluation.grid.run_sweep` (the record-free fast path),
`workload_runs` is `jaxserve.evaluation.simulate` per policy on the same arrivals, and
`train_router` is `jaxserve.evaluation.train` with a cache keyed by the training config.
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
from jaxserve.evaluation.grid import run_sweep
from jaxserve.evaluation.simulate import simulate
from jaxserve.evaluation.train import TrainConfig, train
from jaxserve.io_utils import write_json_atomic
from jaxserve.policies.baselines import make_policy
from jaxserve.rl.config import DQNConfig, config_to_json
from jaxserve.rl.policy import load_learned_policy
from jaxserve.sim.counter_env import make_env
from jaxserve.sim.scenarios import Scenario
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


def core_baselines(scenario: Scenario) -> list[str]:
    """The baselines every experiment includes: each static model, greedy and lp."""
    return [f"static:{k}" for k in range(scenario.num_models)] + ["greedy", "lp"]


def with_baselines(scenario: Scenario, routers: dict) -> dict:
    """{label: router Path} followed by every core baseline {name: name}."""
    return {**routers, **{n: n for n in core_baselines(scenario)}}


def _resolve(scenario: Scenario, named: dict, env) -> list:
    """Callables for {label: baseline name | router checkpoint Path}."""
    return [
        load_learned_policy(spec, scenario)
        if isinstance(spec, Path)
        else make_policy(spec, env, scenario)
        for spec in named.values()
    ]


def sweep(scenario: Scenario, named: dict, rates, mixes=None, num_requests=2000, seeds=2) -> dict:
    """Every policy x rate (x mix) x seed in one `run_sweep`; arrays indexed [p, r, x]."""
    env = make_env(scenario.sim_config(emit_records=False))
    rates = np.asarray(rates, np.float64)
    res = run_sweep(
        scenario,
        list(named),
        rates,
        mixes,
        (1.0,),
        num_requests,
        seeds,
        _resolve(scenario, named, env),
    )
    bound = np.asarray([nominal_curve(scenario, rates, m) for m in res["mixes"]])  # (X, R)
    perf = np.asarray(res["normalized_performance"])[:, :, :, 0]
    pick = lambda key: np.asarray(res[key])[:, :, :, 0].tolist()  # noqa: E731
    return {
        "policies": list(named),
        "rates": rates.tolist(),
        "mixes": res["mixes"],
        "normalized_performance": perf.tolist(),
        "performance": pick("performance"),
        "availability": pick("availability"),
        "routing_fraction": pick("routing_fraction"),
        "fluid_bound": bound.T.tolist(),  # (R, X)
        "fraction_of_bound": (perf / np.maximum(bound.T[None], 1e-12)).tolist(),
        "num_requests": num_requests,
        "seeds": seeds,
        "wall_s": res["wall_s"],
    }


def scale_sweep(
    scenario: Scenario, named: dict, spec: WorkloadSpec, scales, num_requests=2000, seeds=2
) -> dict:
    """Policies x `rate_scale` of any workload kind x seeds, one `run_sweep`; [p, s] arrays."""
    env = make_env(scenario.sim_config(spec, emit_records=False))
    rates = np.asarray(scales, np.float64) * mean_rate(spec)  # run_sweep rescales to each
    res = run_sweep(
        scenario,
        list(named),
        rates,
        None,
        (1.0,),
        num_requests,
        seeds,
        _resolve(scenario, named, env),
        workload=spec,
    )
    pick = lambda key: np.asarray(res[key])[:, :, 0, 0].tolist()  # noqa: E731
    return {
        "policies": list(named),
        "scales": [float(s) for s in scales],
        "normalized_performance": pick("normalized_performance"),
        "availability": pick("availability"),
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
) -> dict:
    """Every policy on the same arrivals (`simulate` per policy); docs/spec.md §4 metrics.

    `named`: {label: baseline name | router checkpoint Path}.
    """
    out = {"wall_s": 0.0, "num_requests": 0, "runs": {}}
    for name, spec_or_path in named.items():
        policy = spec_or_path
        if isinstance(spec_or_path, Path):
            policy = load_learned_policy(spec_or_path, scenario)
        start = time.perf_counter()
        m = simulate(scenario, policy, spec, num_requests, seed, window_s, policy_name=name)
        out["wall_s"] += time.perf_counter() - start
        out["num_requests"] = int(m["num_arrived"])
        row = {k: m[k] for k in RUN_METRICS}
        if keep_series:
            row["window_start_s"] = m["window_start_s"]
            row["series"] = m["windowed_normalized_performance"]
        out["runs"][name] = row
    return out


def train_router(
    run: Run,
    name: str,
    scenario: Scenario,
    dqn: DQNConfig,
    finetune_from: Path | None = None,
    seeds: int = 1,
) -> tuple[Path, dict]:
    """Train (or reuse, when an identical finished run exists) a router; (path, cost).

    `seeds` > 1: a population of that many training seeds in one compiled call (members
    0..seeds-1 of the checkpoint). Cost: env steps and wall seconds of this training run
    (compilation included).
    """
    hparams = {"epsilon_start": 0.1} if finetune_from else {}  # as `train --finetune-from`
    out = run.routers_dir / name
    cost_file = out / "cost.json"
    wanted = {
        "dqn_config": json.loads(json.dumps(config_to_json(dqn))),
        "scenario": scenario.name,
        "finetuned_from": str(finetune_from) if finetune_from else None,
        "hparams": hparams,
        **({"seeds": seeds} if seeds > 1 else {}),  # keeps single-seed caches valid
    }
    if cost_file.exists():
        cost = json.loads(cost_file.read_text())
        if cost.get("wanted") == wanted and checkpoint.read_metadata(out).get("finished"):
            return out, cost
    config = TrainConfig(
        scenario=scenario, dqn=dqn, hparams=hparams, finetune_from=finetune_from, seeds=seeds
    )
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
