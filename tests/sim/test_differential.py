"""JAX simulator vs the plain-Python reference, request by request (docs/spec.md §3.9).

204 randomised scenarios: 12 static configs, 17 random episodes each. The configs cover
every combination of batching (max, deadline) x deadlines (hard, soft linear, soft
exponential) x drop_expired (on, off), with random shapes (1-6 models — 1 and 6 both
present — max_batch 1-16, replicas 1-3, capacity 1-20, tasks 1-4) and reject on/off.
Each episode draws latency tables, deadlines, grace, quality, max_wait (on/off),
miss_penalty, 20-200 Poisson-ish arrivals (some simultaneous) and random actions.
Compilation dominates the cost (~5-10 s per config on 2 busy cores, the run itself
~0.1 s), so the episodes of one config are padded to 200 arrivals and run in one
jit(vmap) call.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.sim.env import ServingEnv
from jaxserve.sim.reference import ReferenceResult, simulate
from jaxserve.sim.rollout import ledger_rollout, run_actions
from jaxserve.sim.types import LATE, ON_TIME, OUTCOME_NAMES
from jaxserve.testing.toy import (
    TOY_GAPS_S,
    absolute_times_s,
    arrivals_from_gaps,
    random_config,
    random_scenario,
    toy_scenario,
)

EPISODES_PER_CONFIG = 17
MAX_ARRIVALS = 200
# (batching, deadline_kind, decay, drop_expired): every combination that matters.
CONFIG_OPTIONS = [
    (batching, kind, decay, drop)
    for batching in ("max", "deadline")
    for kind, decay in (("hard", "linear"), ("soft", "linear"), ("soft", "exponential"))
    for drop in (True, False)
]
NUM_CONFIGS = len(CONFIG_OPTIONS)


def differential_config(index: int, rng: np.random.Generator):
    """Config `index`: its option combination, random shapes; models 1 and 6 guaranteed."""
    batching, kind, decay, drop = CONFIG_OPTIONS[index]
    num_models = {0: 1, 1: 6}.get(index)
    return random_config(
        rng,
        num_models=num_models,
        batching=batching,
        deadline_kind=kind,
        decay=decay,
        drop_expired=drop,
        allow_reject=bool(index % 3 != 2),
    )


def make_batched_run(env: ServingEnv):
    """jit(vmap) of what `run_actions` does: replay fixed actions, return the ledger.

    The key is shared (not vmapped): with noise_sigma = 0 it is unused, and a vmapped scan
    over a batched key array trips jax_debug_key_reuse in JAX 0.10.2 (a false positive).
    """

    def run_one(key, params, arrivals, actions):
        policy = lambda key, obs, state, params: actions[state.step]
        return ledger_rollout(env, policy, key, params, arrivals)

    return jax.jit(jax.vmap(run_one, in_axes=(None, 0, 0, 0)))


def _first_mismatch(name: str, jax_values, ref_values, close) -> str | None:
    bad = np.flatnonzero(~close)
    if bad.size == 0:
        return None
    i = bad[0]
    return (
        f"{name}: {bad.size} mismatches, first at decision {i}: jax {jax_values[i]!r} vs "
        f"reference {ref_values[i]!r}"
    )


def assert_agree(ledger: dict, ref: ReferenceResult, arrival_s: np.ndarray, where: str) -> None:
    """Request-by-request agreement of a (sliced) JAX ledger with the reference."""
    n = len(arrival_s)
    completed = (ref.outcome == ON_TIME) | (ref.outcome == LATE)
    jax_completion_s = np.where(completed, arrival_s + ledger["latency_s"][:n], 0.0)
    ref_completion_s = np.where(completed, ref.completion_s, 0.0)
    checks = [
        ("outcome", ledger["outcome"][:n], ref.outcome, ledger["outcome"][:n] == ref.outcome),
        ("model", ledger["model"][:n], ref.model, ledger["model"][:n] == ref.model),
        (
            "resolve_step",
            ledger["resolve_step"][:n],
            ref.resolve_step,
            ledger["resolve_step"][:n] == ref.resolve_step,
        ),
        (
            "completion_s",
            jax_completion_s,
            ref_completion_s,
            np.isclose(jax_completion_s, ref_completion_s, rtol=1e-6, atol=0.0),
        ),
        (
            "utility",
            ledger["utility"][:n],
            ref.utility,
            np.isclose(ledger["utility"][:n], ref.utility, rtol=0.0, atol=1e-5),
        ),
        (
            "rewards",
            ledger["rewards"][:n],
            ref.rewards,
            np.isclose(ledger["rewards"][:n], ref.rewards, rtol=0.0, atol=1e-4),
        ),
    ]
    problems = [p for p in (_first_mismatch(*c) for c in checks) if p is not None]
    assert not problems, f"{where}:\n  " + "\n  ".join(problems)
    # Padding after the last arrival changes nothing.
    assert np.all(ledger["rewards"][n:] == 0), where


def test_toy_jax_matches_hand_computed():
    """The JAX simulator on the hand-worked toy, through the public `run_actions`."""
    config, params, arrival_s, tasks, actions, expected = toy_scenario()
    ledger = run_actions(
        ServingEnv(config),
        params,
        arrivals_from_gaps(TOY_GAPS_S, tasks),
        actions,
        jax.random.key(0),
    )
    for name in ("outcome", "model", "utility", "latency_s", "resolve_step", "rewards"):
        np.testing.assert_allclose(ledger[name], expected[name], rtol=0, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(
        ledger["counters"].num_outcome, np.bincount(expected["outcome"], minlength=4)
    )


@pytest.mark.parametrize("config_seed", range(NUM_CONFIGS))
def test_jax_matches_reference(config_seed):
    rng = np.random.default_rng(20_000 + config_seed)
    config = differential_config(config_seed, rng)
    episodes = [
        random_scenario(rng, config, max_arrivals=MAX_ARRIVALS) for _ in range(EPISODES_PER_CONFIG)
    ]
    arrivals = [arrivals_from_gaps(e.gap_s, e.task, num_padded=MAX_ARRIVALS) for e in episodes]
    actions = [np.pad(e.action, (0, MAX_ARRIVALS - len(e.action))) for e in episodes]
    stack = lambda *xs: jax.tree.map(lambda *leaves: jnp.stack(leaves), *xs)
    ledgers = make_batched_run(ServingEnv(config))(
        jax.random.key(config_seed),
        stack(*[e.params for e in episodes]),
        stack(*arrivals),
        jnp.asarray(actions),
    )
    ledgers = jax.tree.map(np.asarray, ledgers)

    for j, episode in enumerate(episodes):
        arrival_s = absolute_times_s(episode.gap_s)
        ref = simulate(config, episode.params, arrival_s, episode.task, episode.action)
        ledger = {name: value[j] for name, value in ledgers.items() if name != "counters"}
        assert_agree(ledger, ref, arrival_s, f"config {config_seed} {config}, episode {j}")
        counts = ledgers["counters"].num_outcome[j]
        np.testing.assert_array_equal(counts, ref.num_outcome(), err_msg=str(OUTCOME_NAMES))
        np.testing.assert_allclose(
            ledgers["counters"].sum_utility[j], ref.utility.sum(), rtol=1e-5, atol=1e-4
        )


def test_differential_configs_cover_every_option():
    """The config sample exercises every code path the differential test claims to cover."""
    configs = [
        differential_config(i, np.random.default_rng(20_000 + i)) for i in range(NUM_CONFIGS)
    ]
    for field, values in [
        ("batching", {"max", "deadline"}),
        ("deadline_kind", {"hard", "soft"}),
        ("decay", {"linear", "exponential"}),
        ("drop_expired", {True, False}),
        ("allow_reject", {True, False}),
    ]:
        assert {getattr(c, field) for c in configs} == values, field
    assert {c.num_models for c in configs} >= {1, 6}
    assert max(c.pad_batch for c in configs) >= 12 and min(min(c.max_batch) for c in configs) < 4
