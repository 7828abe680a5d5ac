"""Shared helpers of the experiment scripts (not an experiment: no NN_ prefix).

Paths, policy resolution (baseline names or router checkpoints), one-call vmapped sweeps and
workload runs, cached router training, result files and formatting. Every experiment writes
docs/experiments/NN_name.json (its config, claims rows, markdown section, data) and
docs/figures/exp_NN_*.png, both atomically.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.data import data_path
from jaxserve.errors import InputError
from jaxserve.host import configure_cpu_devices

# Run directly (`python experiments/NN_name.py`), a script gets what the CLI gives
# `jaxserve reproduce`: one XLA CPU device per core, set before anything starts JAX.
try:
    configure_cpu_devices()
except InputError as err:  # a bad JAXSERVE_CPU_DEVICES: one line, as the CLI prints it
    raise SystemExit(f"jaxserve: error: {err}") from None

from jaxserve import checkpoint  # noqa: E402
from jaxserve.evaluation.grid import fluid_curve, make_switch_policy, run_sweep  # noqa: E402
from jaxserve.io_utils import save_figure_atomic, write_json_atomic  # noqa: E402
from jaxserve.policies.baselines import make_policy  # noqa: E402
from jaxserve.rl.config import DQNConfig, config_to_json, hparams_with  # noqa: E402
from jaxserve.rl.policy import load_learned_policy  # noqa: E402
from jaxserve.sim.env import ServingEnv  # noqa: E402
from jaxserve.sim.metrics import absolute_arrival_times, request_metrics  # noqa: E402
from jaxserve.sim.rollout import ledger_rollout  # noqa: E402
from jaxserve.sim.scenarios import Scenario  # noqa: E402
from jaxserve.sim.workloads import WorkloadSpec, make_workload  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
JSON_DIR = DOCS / "experiments"
FIG_DIR = DOCS / "figures"
ROUTER_DIR = ROOT / "experiments" / ".routers"  # routers trained by experiments (not committed)
HARD_ROUTER = ROOT / "checkpoints" / "opt-a100x4-hard"
SOFT_ROUTER = ROOT / "checkpoints" / "opt-a100x4-soft"
TRACES = data_path("traces")  # the traces jaxserve ships (jaxserve/data/traces/README.md)
PAPER_LEVELS = (96, 98)


def set_output_dir(docs: Path, routers: Path | None = None) -> None:
    """Redirect every output (JSON, figures; optionally trained routers), e.g. for smoke tests."""
    global DOCS, JSON_DIR, FIG_DIR, ROUTER_DIR
    DOCS = Path(docs)
    JSON_DIR, FIG_DIR = DOCS / "experiments", DOCS / "figures"
    if routers is not None:
        ROUTER_DIR = Path(routers)


def core_baselines(scenario: Scenario) -> list[str]:
    """The baselines every experiment includes: each static model, greedy and lp."""
    return [f"static:{k}" for k in range(scenario.num_models)] + ["greedy", "lp"]


def static_label(scenario: Scenario, name: str) -> str:
    """`static:2` -> `static:opt-6.7b` (figure legends)."""
    if name.startswith("static:") and name[7:].isdigit():
        return f"static:{scenario.model_names[int(name[7:])]}"
    return name


def resolve_policies(scenario: Scenario, env: ServingEnv, named: dict) -> list:
    """Callables for {label: baseline name | router checkpoint Path | callable}."""
    out = []
    for spec in named.values():
        if isinstance(spec, Path):
            out.append(load_learned_policy(spec, scenario))
        elif isinstance(spec, str):
            out.append(make_policy(spec, env, scenario))
        else:
            out.append(spec)
    return out


def sweep(
    scenario: Scenario,
    named: dict,
    rates,
    mixes=None,
    num_requests: int = 2000,
    seeds: int = 2,
) -> dict:
    """Every policy x rate (x mix) x seed in one vmapped call; arrays indexed [p, r, x]."""
    env = ServingEnv(dataclasses.replace(scenario.sim_config(), emit_records=False))
    policies = resolve_policies(scenario, env, named)
    rates = np.asarray(rates, np.float64)
    res = run_sweep(scenario, list(named), rates, mixes, (1.0,), num_requests, seeds, policies)
    mix_list = res["mixes"]
    bound = np.asarray([fluid_curve(scenario, rates, m) for m in mix_list])  # (X, R)
    perf = np.asarray(res["normalized_performance"])[:, :, :, 0]
    return {
        "policies": list(named),
        "rates": rates.tolist(),
        "mixes": mix_list,
        "normalized_performance": perf.tolist(),
        "performance": np.asarray(res["performance"])[:, :, :, 0].tolist(),
        "availability": np.asarray(res["availability"])[:, :, :, 0].tolist(),
        "routing_fraction": np.asarray(res["routing_fraction"])[:, :, :, 0].tolist(),
        "fluid_bound": bound.T.tolist(),  # (R, X)
        "fraction_of_bound": (perf / np.maximum(bound.T[None], 1e-12)).tolist(),
        "num_requests": num_requests,
        "seeds": seeds,
        "wall_s": res["wall_s"],
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
    """Every policy on the same arrivals (one vmapped call over policies); docs/spec.md §4 metrics.

    Same keys as `runner.simulate(seed=...)`, so a single run there reproduces a row here.
    """
    env = ServingEnv(scenario.sim_config(spec, emit_records=True))
    policies = resolve_policies(scenario, env, named)
    switch = make_switch_policy(policies)
    if spec.kind == "trace":
        from jaxserve.sim.workloads import load_spec_trace

        num_requests = min(num_requests, load_spec_trace(spec).num_arrivals)
    wparams, generate = make_workload(spec, scenario.num_tasks, num_requests)
    key_workload, key_run = jax.random.split(jax.random.key(seed))
    arrivals = jax.jit(generate)(key_workload, wparams)
    params = scenario.sim_params()

    def one(index):
        policy = lambda *a: switch(index, *a)
        return ledger_rollout(env, policy, key_run, params, arrivals)

    start = time.perf_counter()
    ledgers = jax.tree.map(np.asarray, jax.jit(jax.vmap(one))(jnp.arange(len(policies))))
    wall_s = time.perf_counter() - start
    arrival_s = absolute_arrival_times(arrivals.gap_s)
    tasks, valid = np.asarray(arrivals.task), np.asarray(arrivals.valid)
    out = {"wall_s": wall_s, "num_requests": int(valid.sum()), "runs": {}}
    for p, name in enumerate(named):
        ledger = jax.tree.map(lambda x, p=p: x[p], ledgers)
        m = request_metrics(
            ledger, arrival_s, tasks, scenario.quality, env.num_actions, window_s, valid
        )
        keys = (
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
        row = {k: m[k] for k in keys}
        if keep_series:
            row["window_start_s"] = m["window_start_s"]
            row["series"] = m["windowed_normalized_performance"]
        out["runs"][name] = row
    return out


def train_router(
    name: str,
    scenario: Scenario,
    steps: int,
    finetune_from: Path | None = None,
    hparams: dict | None = None,
    **changes,
) -> tuple[Path, dict]:
    """Train (or reuse, when an identical finished run exists) a router; (path, cost).

    Cost: env steps and wall seconds of this training run (compilation included).
    """
    config = DQNConfig(total_env_steps=steps, **changes)
    hp = dict(hparams or {})
    if finetune_from is not None:
        hp.setdefault("epsilon_start", 0.1)  # as `jaxserve train --finetune-from`
    out = ROUTER_DIR / name
    cost_file = out / "cost.json"
    wanted = {
        "dqn_config": json.loads(json.dumps(config_to_json(config))),
        "scenario": scenario.name,
        "finetuned_from": str(finetune_from) if finetune_from else None,
        "hparams": hp,
    }
    if cost_file.exists():
        cost = json.loads(cost_file.read_text())
        if cost.get("wanted") == wanted and checkpoint.read_metadata(out).get("finished"):
            return out, cost
    if out.exists():
        shutil.rmtree(out)
    from jaxserve.rl.trainer import run_training

    summary = run_training(
        scenario,
        config,
        out,
        hparams_with(hp),
        seed=0,
        population=1,
        finetune_from=finetune_from,
        progress=False,
        keep_state=False,
    )
    cost = {
        "wanted": wanted,
        "env_steps": int(summary["env_steps"]),
        "wall_s": float(summary["wall_s"]),
        "eval_mean": float(summary["eval_mean"][0]),
    }
    write_json_atomic(cost_file, cost)
    return out, cost


def save_result(stem: str, result: dict) -> Path:
    """docs/experiments/<stem>.json, atomically."""
    return write_json_atomic(JSON_DIR / f"{stem}.json", result)


def save_figure(fig, name: str) -> str:
    """docs/figures/<name>, atomically; returns the path relative to docs/."""
    import matplotlib.pyplot as plt

    save_figure_atomic(fig, FIG_DIR / name)
    plt.close(fig)
    return f"figures/{name}"


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None when undefined (b = 0 or missing)."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fx(value: float | None, digits: int = 3, suffix: str = "") -> str:
    """A number for text and tables; 'n/a' for None."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}{suffix}"


def fx_ratio(value: float | None) -> str:
    return "undefined (baseline never there)" if value is None else f"{value:.2f}x"


def claim(claim: str, paper: str, measured: str, how: str, verdict: str) -> dict:
    """One row of the results.md claims table."""
    return {"claim": claim, "paper": paper, "measured": measured, "how": how, "verdict": verdict}


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def policy_style(name: str) -> dict:
    """Consistent figure styles: routers bold, statics dashed."""
    if name.startswith("router") or name.startswith("learned"):
        return {"lw": 2.2}
    if name.startswith("static"):
        return {"ls": "--", "lw": 1.0}
    return {"lw": 1.0}


def finish(
    stem: str,
    title: str,
    config: dict,
    start_s: float,
    claims: list[dict],
    markdown: str,
    figures: list[str],
    data: dict,
) -> dict:
    """Assemble, save and return an experiment's result (what reproduce reads back)."""
    result = {
        "name": stem,
        "title": title,
        "config": json.loads(json.dumps(config)),
        "wall_s": time.perf_counter() - start_s,
        "claims": claims,
        "markdown": markdown,
        "figures": figures,
        "data": data,
    }
    save_result(stem, result)
    return result


def scale_sweep(
    scenario: Scenario,
    named: dict,
    spec: WorkloadSpec,
    scales,
    num_requests: int = 2000,
    seeds: int = 2,
) -> dict:
    """Policies x rate_scale (any synthetic workload kind) x seeds, one vmapped call.

    Returns normalised performance and availability indexed [p, s] (mean over seeds).
    """
    from jaxserve.sim.metrics import counter_metrics
    from jaxserve.sim.rollout import counter_rollout

    env = ServingEnv(scenario.sim_config(spec, emit_records=False))
    switch = make_switch_policy(resolve_policies(scenario, env, named))
    wparams, generate = make_workload(spec, scenario.num_tasks, num_requests)
    params = scenario.sim_params()

    def one(index, scale, seed):
        key_workload, key_run = jax.random.split(jax.random.fold_in(jax.random.key(1), seed))
        arrivals = generate(key_workload, wparams.replace(rate_scale=scale))
        policy = lambda *a: switch(index, *a)
        return counter_metrics(counter_rollout(env, policy, key_run, params, arrivals))

    grid = np.array(
        [(p, s, k) for p in range(len(named)) for s in range(len(scales)) for k in range(seeds)]
    )
    scales = np.asarray(scales, np.float32)
    start = time.perf_counter()
    m = jax.jit(jax.vmap(one))(
        jnp.asarray(grid[:, 0], jnp.int32),
        jnp.asarray(scales[grid[:, 1]]),
        jnp.asarray(grid[:, 2], jnp.int32),
    )
    m = jax.block_until_ready(m)
    shape = (len(named), len(scales), seeds)
    get = lambda k: np.asarray(m[k]).reshape(shape).mean(axis=2)
    return {
        "policies": list(named),
        "scales": scales.tolist(),
        "normalized_performance": get("normalized_performance").tolist(),
        "availability": get("availability").tolist(),
        "wall_s": time.perf_counter() - start,
        "num_requests": num_requests,
        "seeds": seeds,
    }
