"""Train a population of routers from typed configs; members and per-chunk history as records.

`train(TrainConfig(...))` runs in memory (no files) unless `out_dir` is given, in which case
it checkpoints and resumes exactly like `jaxserve train --out` and writes `members.csv`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

from jaxserve import multihost
from jaxserve.errors import InputError
from jaxserve.evaluation.records import Records, flatten_row
from jaxserve.evaluation.search import SearchSpace, check_searchable, typed_point
from jaxserve.evaluation.sweep import resolve_scenario
from jaxserve.rl.config import HPARAM_NAMES, DQNConfig, HParams, hparams_with
from jaxserve.rl.knob import reward_hparams
from jaxserve.sim.scenarios import Scenario

MEMBERS_FILE = "members.csv"
ChunkCallback = Callable[[Records], None]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A population: every point of `search` x `seeds` replicates, all with `dqn`'s shapes.

    `hparams`: overrides shared by every member (HParams field names); the search points
    override them in turn. Member m's PRNG key is the m-th split of `seed`.
    """

    scenario: str | Scenario = "opt-a100x4"
    dqn: DQNConfig = DQNConfig()
    hparams: Mapping[str, float] = dataclasses.field(default_factory=dict)
    search: SearchSpace = SearchSpace()
    seeds: int = 1
    seed: int = 0
    finetune_from: str | Path | None = None

    def __post_init__(self):
        for name in self.hparams:
            check_searchable(name)
        if isinstance(self.seeds, bool) or not (isinstance(self.seeds, int) and self.seeds >= 1):
            raise InputError(f"TrainConfig.seeds = {self.seeds!r}: expected an integer >= 1")

    def member_overrides(self) -> list[dict]:
        """Hyperparameter overrides of every member: search points, each `seeds` times."""
        return [point for point in self.search_points() for _ in range(self.seeds)]

    def search_points(self) -> list[dict]:
        """The shared overrides updated by each point of the search space."""
        penalty = resolve_scenario(self.scenario).miss_penalty
        base = {**reward_hparams(self.dqn, penalty), **self.hparams}  # the reward's defaults first
        return [typed_point({**base, **p}) for p in self.search.points()]

    def member_table(self) -> list[dict]:
        """member, search point, replicate and every hyperparameter value, per member."""
        defaults = HParams()
        rows = []
        for m, overrides in enumerate(self.member_overrides()):
            hparams_with(overrides)  # InputError on an unknown name or a bad value
            hp = {name: overrides.get(name, getattr(defaults, name)) for name in HPARAM_NAMES}
            rows.append({"member": m, "point": m // self.seeds, "replicate": m % self.seeds, **hp})
        return rows


@dataclasses.dataclass
class TrainResult:
    """What a population run returns.

    members: one row per member (hyperparameters, seed, last chunk's metrics).
    history: one row per chunk and member. params: online Q-network parameters stacked
    over `trained_members` (every member, or the survivors of successive halving).
    """

    members: Records
    history: Records
    params: Any
    trained_members: tuple[int, ...]
    scenario: Scenario
    config: DQNConfig
    summary: dict

    def policy(self, member: int):
        """The greedy policy of a member still holding parameters (pure, jit-able)."""
        from jaxserve.rl.policy import config_policy

        if member not in self.trained_members:
            raise InputError(f"member {member}: no parameters (kept: {list(self.trained_members)})")
        i = self.trained_members.index(member)
        params = jax.tree.map(lambda x: x[i], self.params)
        return config_policy(self.scenario.sim_config().num_actions, self.config, params)


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    on_chunk: ChunkCallback | None = None,
    progress: bool = False,
    keep_state: bool = True,
) -> TrainResult:
    """Train every member in one vmapped population; in memory unless `out_dir` is given.

    `on_chunk(rows)` is called once per chunk with that chunk's history rows.
    """
    from jaxserve.rl.trainer import METRICS_FILE, train_routers

    scenario = resolve_scenario(config.scenario)
    searched = bool(config.search.grid or config.search.ranges)
    table = config.member_table()
    hps = [hparams_with(o) for o in config.member_overrides()]
    labels = eval_labels(config.dqn)
    seen = []

    def collect(lines: list[dict]) -> None:
        seen.extend(lines)
        if on_chunk is not None:
            on_chunk(history_rows(lines, table, labels, config.seed))

    summary, states = train_routers(
        scenario,
        config.dqn,
        out_dir,
        hps if len(hps) > 1 else hps[0],
        config.seed,
        len(hps),
        config.finetune_from,
        progress=progress,
        keep_state=keep_state,
        extra_metadata={"search_grid": config.search_points() if searched else None},
        on_chunk=collect,
    )
    if out_dir is not None:  # a resumed run: the chunks before this call are on disk
        path = Path(out_dir) / METRICS_FILE
        seen = [json.loads(x) for x in path.read_text().splitlines() if x]
    history = history_rows(seen, table, labels, config.seed)
    members = member_rows(table, history, config.seed)
    if out_dir is not None and multihost.is_primary():
        members.to_csv(Path(out_dir) / MEMBERS_FILE)
    params = multihost.host_tree(states.params)
    return TrainResult(
        members, history, params, tuple(range(len(hps))), scenario, config.dqn, summary
    )


def eval_labels(config: DQNConfig) -> dict:
    """Column suffixes of the per-rate evaluation metric: the rate factors, e.g. `0.5x`."""
    return {"eval_normalized_performance": [f"{f:g}x" for f in config.eval_rate_factors]}


def history_rows(lines: Sequence[dict], table: list[dict], labels: dict, seed: int) -> Records:
    """metrics.jsonl lines -> rows with the member's hyperparameters, seed and flat metrics."""
    return Records(
        flatten_row({**table[line["member"]], "seed": seed, **line}, labels) for line in lines
    )


def member_rows(
    table: list[dict], history: Records, seed: int, dropped_after: Mapping | None = None
) -> Records:
    """One row per member: its hyperparameters, seed, chunks trained, last chunk's metrics."""
    rows = []
    for entry in table:
        mine = history.where(member=entry["member"])
        last = dict(mine[-1]) if mine else {}
        for key in ("chunk", "wall_s", "seed", *entry):
            last.pop(key, None)
        row = {**entry, "seed": seed, "chunks_trained": len(mine), **last}
        if dropped_after is not None:
            row["dropped_after_chunk"] = dropped_after.get(entry["member"])
        rows.append(row)
    return Records(rows)
