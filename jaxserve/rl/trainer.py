"""The training driver: chunks of the jitted scan, checkpoints between them, resume, progress.

`run_training` trains a population (M >= 1) of routers on a scenario. Between chunks it
appends metrics to DIR/metrics.jsonl and writes a checkpoint (DIR/checkpoint.json + orbax
trees `state`, the full learner state for resume, and `policy`, the online Q-network
parameters). Run again with the same arguments and it resumes from the last chunk; since
every chunk is the same compiled function of the same state, the result equals an
uninterrupted run bit for bit (on CPU; tests/rl/test_checkpoint.py). With several processes
(docs/scaling.md) every process runs the same call; process 0 writes the files.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve import checkpoint, multihost
from jaxserve.errors import InputError
from jaxserve.io_utils import write_text_atomic
from jaxserve.rl.config import (
    DQNConfig,
    HParams,
    config_to_json,
    hparams_to_json,
)
from jaxserve.rl.dqn import make_learner
from jaxserve.rl.envs import ServingAdapter
from jaxserve.rl.knob import knob_metadata
from jaxserve.rl.knob import knob_range as knob_range_of
from jaxserve.rl.population import broadcast_hparams, make_population_fns, member_keys
from jaxserve.sim.scenarios import Scenario, scenario_to_toml

ROUTER_KIND = "jaxserve-router"
METRICS_FILE = "metrics.jsonl"


def router_metadata(
    scenario: Scenario,
    config: DQNConfig,
    adapter,
    hparams: HParams,
    seed: int,
    size: int,
    extra: dict,
) -> dict:
    """What a checkpoint needs to be rebuilt and checked without the code that made it."""
    return {
        "kind": ROUTER_KIND,
        "scenario": scenario.name,
        "scenario_toml": scenario_to_toml(scenario),
        "deadline_kind": scenario.deadline_kind,
        "obs_mode": scenario.obs_mode,
        "obs_size": adapter.obs_size,
        "observe_deadline": bool(getattr(adapter, "observe_deadline", False)),
        **knob_metadata(config),
        "num_actions": adapter.num_actions,
        "network": {"type": "mlp", "hidden": list(config.hidden), "activation": "relu"},
        "dqn_config": config_to_json(config),
        "hparams": hparams_to_json(hparams),
        "seed": seed,
        "population_size": size,
        **extra,
    }


def _policy_tree(states):
    return states.params


def chunk_lines(metrics: dict, chunk: int, size: int, wall_s: float) -> list[dict]:
    """One JSON line per member for a finished chunk (episode metrics averaged over the chunk)."""
    host = multihost.host_tree(metrics)
    lines = []
    for m in range(size):
        line = {"chunk": chunk, "member": m, "wall_s": round(wall_s, 3)}
        for name, value in host.items():
            v = value[m]
            if name == "eval_normalized_performance":
                line[name] = v.tolist()
            elif np.issubdtype(v.dtype, np.integer) and v.ndim == 0:  # counters
                line[name] = int(v)
            else:
                line[name] = float(np.mean(v))
        lines.append(line)
    return lines


def _append_jsonl(path: Path, lines: list[dict]) -> None:
    import json

    text = path.read_text() if path.exists() else ""
    write_text_atomic(path, text + "".join(json.dumps(x) + "\n" for x in lines))


def _truncate_jsonl(path: Path, chunks_done: int) -> None:
    """Drop lines of chunks after the checkpoint (a run interrupted after logging them)."""
    import json

    if path.exists() and multihost.is_primary():
        kept = [
            x for x in path.read_text().splitlines() if x and json.loads(x)["chunk"] < chunks_done
        ]
        write_text_atomic(path, "".join(x + "\n" for x in kept))


def _check_resumable(meta: dict, expected: dict, out_dir: Path) -> None:
    import json

    expected = json.loads(json.dumps(expected))  # tuples -> lists, as stored
    for field in (
        "scenario_toml",
        "dqn_config",
        "hparams",
        "seed",
        "population_size",
        "obs_size",
        "network",
        "member_replicas",
    ):
        if meta.get(field) != expected.get(field):
            raise InputError(
                f"--out {out_dir}: holds a run with a different {field}; use a "
                "new directory, or the same arguments to resume"
            )


def load_finetune_params(path: str | Path, scenario: Scenario, config: DQNConfig):
    """Online params of the best member of a router checkpoint, checked against the scenario
    and against the observation `config` trains on (deadline factor, knob)."""
    from jaxserve.rl.policy import load_router_params

    params, meta = load_router_params(path, scenario, hidden=config.hidden)
    observes = {
        "the deadline factor (DQNConfig.deadline_factors)": (
            bool(meta.get("observe_deadline")), bool(config.deadline_factors)
        ),
        "the miss penalty (a knob, --knob-range)": (
            knob_range_of(meta) is not None, bool(config.knob_range)
        ),
    }  # fmt: skip
    for feature, (router, training) in observes.items():
        if router != training:
            raise InputError(
                f"finetune from {path}: the router {'observes' if router else 'does not observe'} "
                f"{feature}; the training {'does' if training else 'does not'}"
            )
    return params


def run_training(
    scenario: Scenario,
    config: DQNConfig,
    out_dir: str | Path | None,
    hparams: HParams | list[HParams] | None = None,
    seed: int = 0,
    population: int = 1,
    finetune_from: str | Path | None = None,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    keep_state: bool = True,
    extra_metadata: dict | None = None,
    on_chunk: Callable[[list[dict]], None] | None = None,
    env_params=None,
) -> dict:
    """Train `population` routers (resuming from `out_dir` if it holds this run); summary dict.

    `out_dir=None` trains in memory (no files, no resume; `train_routers` also returns the
    state). `stop_after_chunks` stops early after that many chunks in this call (for tests:
    an interruption). `keep_state=False` drops the resume state once training has finished.
    `on_chunk(lines)` is called after each chunk (and its checkpoint) with the chunk's
    metrics, one dict per member as in metrics.jsonl. `env_params`: per-member scenario
    params (`SimParams`, leaves (population, ...)), e.g. one placement of the scenario's
    padded replicas each (docs/planner.md); None = the scenario's for every member.
    """
    return train_routers(
        scenario,
        config,
        out_dir,
        hparams,
        seed,
        population,
        finetune_from,
        progress,
        stop_after_chunks,
        keep_state,
        extra_metadata,
        on_chunk,
        env_params,
    )[0]


def train_routers(
    scenario: Scenario,
    config: DQNConfig,
    out_dir: str | Path | None,
    hparams: HParams | list[HParams] | None = None,
    seed: int = 0,
    population: int = 1,
    finetune_from: str | Path | None = None,
    progress: bool = True,
    stop_after_chunks: int | None = None,
    keep_state: bool = True,
    extra_metadata: dict | None = None,
    on_chunk: Callable[[list[dict]], None] | None = None,
    env_params=None,
):
    """`run_training`, returning (summary, final stacked `LearnerState`)."""
    adapter, learner, (init, run_chunk, mesh) = compiled_population(scenario, config, population)
    hp = broadcast_hparams(hparams if hparams is not None else HParams(), population)
    states = init(member_keys(seed, population), hp, env_params)
    if finetune_from is not None:
        states = with_finetune_params(states, finetune_from, scenario, config, mesh)
    if out_dir is None:
        loop = _ChunkLoop(run_chunk, config, population, progress, stop_after_chunks, on_chunk)
        return loop.run(states, 0, lambda *_: None)
    out_dir = Path(out_dir)
    extra = {
        "finetuned_from": str(finetune_from) if finetune_from else None,
        **member_params_metadata(env_params),
        **(extra_metadata or {}),
    }
    meta = router_metadata(scenario, config, adapter, hp, seed, population, extra)
    chunks_done = 0
    if checkpoint.has_tree(out_dir, "state"):
        old = checkpoint.read_metadata(out_dir)
        _check_resumable(old, meta, out_dir)
        states = _restore_state(out_dir, states, mesh)
        chunks_done = int(old["chunks_done"])
        _truncate_jsonl(out_dir / METRICS_FILE, chunks_done)
    elif (out_dir / checkpoint.META_FILE).exists():
        raise InputError(
            f"--out {out_dir}: holds a finished checkpoint without resume state; "
            "use a new directory"
        )
    saver = functools.partial(_save_chunk, out_dir, meta, config.num_chunks, keep_state)
    loop = _ChunkLoop(run_chunk, config, population, progress, stop_after_chunks, on_chunk)
    summary, states = loop.run(states, chunks_done, saver)
    return {"out_dir": str(out_dir), **summary}, states


def member_params_metadata(env_params) -> dict:
    """Checkpoint metadata of per-member env params: each member's active replicas."""
    if env_params is None:
        return {}  # ordinary runs: the metadata (and resume checks) of earlier versions
    replicas = env_params.replicas
    return {"member_replicas": None if replicas is None else np.asarray(replicas).tolist()}


def with_finetune_params(states, path: str | Path, scenario: Scenario, config: DQNConfig, mesh):
    """Every member's online and target parameters replaced by a router checkpoint's."""
    from jaxserve.rl.population import shard_population

    params = load_finetune_params(path, scenario, config)
    population = jax.tree.leaves(states.params)[0].shape[0]
    stack = lambda: shard_population(
        jax.tree.map(lambda x: jnp.array(jnp.broadcast_to(x, (population,) + x.shape)), params),
        mesh,
    )
    # Two separate buffers: run_chunk donates its input, and one buffer cannot be donated twice.
    return states.replace(params=stack(), target_params=stack())


@functools.lru_cache(maxsize=4)
def compiled_population(scenario: Scenario, config: DQNConfig, population: int):
    """Adapter, learner and jitted population functions, reused by runs of the same setup."""
    adapter = ServingAdapter(scenario, config)
    learner = make_learner(adapter, config)
    return adapter, learner, make_population_fns(learner, population)


def _restore_state(out_dir: Path, template, mesh):
    from jaxserve.rl.population import shard_population

    restored = checkpoint.restore_tree(out_dir, "state", template)
    return shard_population(jax.tree.map(jnp.asarray, restored), mesh)


def _save_chunk(out_dir, meta, total, keep_state, chunks_done, lines, states) -> None:
    """metrics.jsonl lines and the checkpoint after a chunk (its barrier covers both files)."""
    if multihost.is_primary():
        _append_jsonl(out_dir / METRICS_FILE, lines)
    finished = chunks_done == total
    eval_mean = [x["eval_mean"] for x in lines]
    state = states if keep_state or not finished else None
    write_router(out_dir, meta, _policy_tree(states), chunks_done, total, eval_mean, state)


def write_router(out_dir, meta, policy, chunks_done, total, eval_mean, state=None) -> None:
    """A router checkpoint: Q-network params stacked over members (+ resume state) and meta."""
    trees = {"policy": policy}
    if state is not None:
        trees["state"] = state
    checkpoint.save_checkpoint(
        out_dir,
        chunks_done,
        trees,
        {
            **meta,
            "chunks_done": chunks_done,
            "num_chunks": total,
            "best_member": int(np.argmax(eval_mean)),
            "eval_mean": list(eval_mean),
            "finished": chunks_done == total,
        },
    )


@dataclasses.dataclass
class _ChunkLoop:
    """Run chunks with a progress bar; after each, `save(...)` then the `on_chunk` hook."""

    run_chunk: Callable
    config: DQNConfig
    size: int
    progress: bool
    stop_after_chunks: int | None
    on_chunk: Callable[[list[dict]], None] | None

    def run(self, states, chunks_done: int, save: Callable):
        from tqdm import tqdm

        total, per_chunk = self.config.num_chunks, self.config.env_steps_per_chunk * self.size
        bar = tqdm(
            total=total * per_chunk,
            initial=chunks_done * per_chunk,
            unit="step",
            unit_scale=True,
            disable=not self.progress or not multihost.is_primary(),
            desc=f"train x{self.size}",
            smoothing=0.3,
        )
        start, last, ran = time.perf_counter(), {}, 0
        while chunks_done < total and (
            self.stop_after_chunks is None or ran < self.stop_after_chunks
        ):
            t0 = time.perf_counter()
            states, metrics = self.run_chunk(states)
            jax.block_until_ready(states)
            wall_s = time.perf_counter() - t0
            lines = chunk_lines(metrics, chunks_done, self.size, wall_s)
            chunks_done, ran = chunks_done + 1, ran + 1
            save(chunks_done, lines, states)
            if self.on_chunk is not None:
                self.on_chunk(lines)
            eval_mean = [x["eval_mean"] for x in lines]
            best = int(np.argmax(eval_mean))
            last = {"chunk_wall_s": wall_s, "eval_mean": eval_mean, "best_member": best}
            bar.update(per_chunk)
            bar.set_postfix(eval=f"{eval_mean[best]:.3f}", steps_per_s=f"{per_chunk / wall_s:.0f}")
        bar.close()
        summary = {
            "chunks_done": chunks_done,
            "num_chunks": total,
            "wall_s": time.perf_counter() - start,
            "env_steps": chunks_done * per_chunk,
            **last,
        }
        return summary, states


def final_state(out_dir: str | Path, scenario: Scenario, config: DQNConfig, population: int = 1):
    """The stacked learner state stored in a run directory (tests compare runs with it)."""
    adapter = ServingAdapter(scenario, config)
    learner = make_learner(adapter, config)
    hp = broadcast_hparams(HParams(), population)
    template = jax.eval_shape(jax.vmap(learner.init), member_keys(0, population), hp)
    return checkpoint.restore_tree(out_dir, "state", template)


__all__ = [
    "chunk_lines",
    "compiled_population",
    "final_state",
    "router_metadata",
    "run_training",
    "train_routers",
    "write_router",
]
