"""Successive halving: train a population chunk by chunk, dropping the worse half at each rung.

Survivors are re-sharded into a smaller population between chunks (`select_members`), so
a dropped member costs nothing afterwards; each new population size compiles once. The
alternative, masking dropped members inside the same compiled call, saves no compute:
under `vmap` every member runs every step whatever its mask (docs/python-api.md has the
measurement).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import jax
import numpy as np

from jaxserve.errors import InputError
from jaxserve.evaluation.records import Records
from jaxserve.evaluation.sweep import resolve_scenario
from jaxserve.evaluation.train import (
    ChunkCallback,
    TrainConfig,
    TrainResult,
    eval_labels,
    history_rows,
    member_rows,
)
from jaxserve.rl.config import HParams, hparams_with, stack_hparams
from jaxserve.rl.population import member_keys, select_members

Score = str | Callable[[Records], Sequence[float]]


def successive_halving(
    config: TrainConfig,
    chunks_per_rung: int = 1,
    score: Score = "eval_mean",
    min_members: int = 1,
    on_chunk: ChunkCallback | None = None,
    reshard: bool = True,
) -> TrainResult:
    """Train `config`'s population in memory; after every `chunks_per_rung` chunks keep the
    better half (by `score`: a history column, higher is better, or a function of the rung's
    rows returning one score per row) until `min_members` remain; then train those to the end.
    `reshard=False`: dropped members keep running, masked (no recompilation; no saving).
    """
    from jaxserve.rl.trainer import compiled_population, with_finetune_params

    scenario = resolve_scenario(config.scenario)
    table = config.member_table()
    size = len(table)

    def make_fns(n: int):
        return compiled_population(scenario, config.dqn, n)[2]

    def prepare(states, mesh):
        if config.finetune_from is None:
            return states
        return with_finetune_params(states, config.finetune_from, scenario, config.dqn, mesh)

    labels = eval_labels(config.dqn)
    to_rows = lambda lines: history_rows(lines, table, labels, config.seed)
    hps = [hparams_with(o) for o in config.member_overrides()]
    states, alive, lines, dropped = halve(
        make_fns,
        member_keys(config.seed, size),
        hps,
        config.dqn.num_chunks,
        chunks_per_rung,
        _scorer(score),
        min_members,
        to_rows,
        on_chunk,
        prepare,
        reshard,
    )
    history = to_rows(lines)
    members = member_rows(table, history, config.seed, dropped)
    params = jax.tree.map(np.asarray, states.params)
    summary = {"chunks_done": config.dqn.num_chunks, "survivors": list(alive)}
    return TrainResult(members, history, params, tuple(alive), scenario, config.dqn, summary)


def halve(
    make_fns: Callable,
    keys: jax.Array,
    hparams: list[HParams],
    num_chunks: int,
    chunks_per_rung: int,
    score: Callable[[Records], Sequence[float]],
    min_members: int = 1,
    to_rows: Callable[[list[dict]], Records] = Records,
    on_chunk: ChunkCallback | None = None,
    prepare: Callable = lambda states, mesh: states,
    reshard: bool = True,
):
    """The halving loop over any learner: `make_fns(n) -> (init, run_chunk, mesh)` of a
    population of n. Returns (final states of the survivors, surviving member ids, metrics
    lines of every chunk with original member ids, {member: chunks trained before its drop}).

    `reshard=False` keeps the dropped members in the compiled population (masked: they
    still run, nothing recompiles) and only stops reporting them.
    """
    from jaxserve.rl.trainer import chunk_lines

    if chunks_per_rung < 1 or min_members < 1:
        raise InputError(
            f"successive halving: chunks_per_rung = {chunks_per_rung}, min_members = "
            f"{min_members}: expected integers >= 1"
        )
    init, run_chunk, mesh = make_fns(len(hparams))
    states = prepare(init(keys, stack_hparams(hparams)), mesh)
    alive, lines, dropped = list(range(len(hparams))), [], {}
    slots = list(alive)  # where each surviving member sits in `states`
    for chunk in range(num_chunks):
        start = time.perf_counter()
        states, metrics = run_chunk(states)
        jax.block_until_ready(states)
        size = states.num_env_steps.shape[0]
        every = chunk_lines(metrics, chunk, size, time.perf_counter() - start)
        chunk_metrics = [{**every[s], "member": m} for s, m in zip(slots, alive, strict=True)]
        lines.extend(chunk_metrics)
        rows = to_rows(chunk_metrics)
        if on_chunk is not None:
            on_chunk(rows)
        rung_end = (chunk + 1) % chunks_per_rung == 0 and chunk + 1 < num_chunks
        if rung_end and len(alive) > min_members:
            keep = _better_half(np.asarray(score(rows), np.float64), min_members)
            dropped.update({m: chunk + 1 for i, m in enumerate(alive) if i not in keep})
            alive, slots = [alive[i] for i in keep], [slots[i] for i in keep]
            if reshard:
                _, run_chunk, mesh = make_fns(len(alive))
                states, slots = select_members(states, slots, mesh), list(range(len(alive)))
    if slots != list(range(size)):
        states = jax.tree.map(lambda x: x[np.asarray(slots)], states)
    return states, alive, lines, dropped


def _better_half(scores: np.ndarray, min_members: int) -> list[int]:
    """Positions of the best max(min_members, n // 2) scores, in their original order."""
    if not np.all(np.isfinite(scores)):
        raise InputError(f"successive halving: non-finite scores {scores.tolist()}")
    count = max(min_members, len(scores) // 2)
    order = np.argsort(-scores, kind="stable")
    return sorted(order[:count].tolist())


def _scorer(score: Score) -> Callable[[Records], Sequence[float]]:
    if callable(score):
        return score

    def column(rows: Records) -> list:
        if score not in rows.columns:
            raise InputError(f"successive halving: score {score!r}: expected one of {rows.columns}")
        return rows.column(score)

    return column
