"""Successive halving keeps the better members, and the survivors' states are really theirs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.evaluation.halving import halve
from jaxserve.rl import probes
from jaxserve.rl.config import DQNConfig, hparams_with
from jaxserve.rl.dqn import make_learner
from jaxserve.rl.population import make_population_fns, member_keys

CONFIG = DQNConfig(
    hidden=(16,),
    num_envs=8,
    episode_length=2,
    total_env_steps=8 * 2 * 150 * 3,
    episodes_per_chunk=150,
    buffer_size=512,
    batch_size=32,
    learning_starts=32,
    credit_window=2,
)
FAST = {"learning_rate": 3e-3, "target_period": 10}
S0 = jnp.array([1.0, 0.0])


@pytest.fixture(scope="module")
def learner():
    return make_learner(probes.TwoStepChain(), CONFIG)


@pytest.fixture(scope="module")
def fns(learner):
    """Population functions per size, compiled once for the module (sizes 4 and 2)."""
    cache = {}
    return lambda n: (
        cache[n] if n in cache else cache.setdefault(n, make_population_fns(learner, n))
    )


def test_fake_score_keeps_the_best_half_at_each_rung(fns):
    # Scores are a known function of the hyperparameters: the larger epsilon_end, the better.
    ends = [0.05, 0.4, 0.1, 0.3]
    hps = [hparams_with({"epsilon_end": e, **FAST}) for e in ends]
    calls = []

    def score(rows):
        calls.append([r["member"] for r in rows])
        return [ends[r["member"]] for r in rows]

    states, alive, lines, dropped = halve(
        fns, member_keys(0, 4), hps, CONFIG.num_chunks, 1, score, min_members=2
    )
    assert calls == [[0, 1, 2, 3]]  # scored after chunk 1; then min_members = 2 remain
    assert alive == [1, 3]  # epsilon_end 0.4 and 0.3
    assert dropped == {0: 1, 2: 1}
    assert [len([x for x in lines if x["chunk"] == c]) for c in range(3)] == [4, 2, 2]
    assert {x["member"] for x in lines if x["chunk"] == 2} == {1, 3}
    # The survivors' states carry their own hyperparameters (gathered, not shuffled).
    np.testing.assert_allclose(np.asarray(states.hparams.epsilon_end), [0.4, 0.3])
    assert np.asarray(states.num_env_steps).tolist() == [3 * CONFIG.env_steps_per_chunk] * 2


def test_q_value_score_keeps_the_largest_discounts(learner, fns):
    # TwoStepChain: Q(s0) = discount, Q(s1) = 1, so the mean max-Q grows with the discount.
    discounts = [0.2, 0.9, 0.5, 0.7]
    hps = [hparams_with({"discount": d, **FAST}) for d in discounts]
    score = lambda rows: rows.column("q_mean")
    states, alive, _, dropped = halve(
        fns, member_keys(1, 4), hps, CONFIG.num_chunks, 1, score, min_members=2
    )
    assert alive == [1, 3] and dropped == {0: 1, 2: 1}  # discounts 0.9 and 0.7
    q_s0 = [
        float(learner.network.apply(jax.tree.map(lambda x, i=i: x[i], states.params), S0)[0])
        for i in range(2)
    ]
    # The survivors kept training as themselves: Q(s0) = their own discounts.
    np.testing.assert_allclose(q_s0, [0.9, 0.7], atol=0.08)


def test_masked_halving_reports_the_same_survivors(fns):
    # Members never interact, so keeping the dropped ones running (masked, one compiled
    # population) must give the survivors the same training as re-sharding them.
    discounts = [0.2, 0.9, 0.5, 0.7]
    hps = [hparams_with({"discount": d, **FAST}) for d in discounts]
    score = lambda rows: rows.column("q_mean")
    runs = [
        halve(fns, member_keys(1, 4), hps, CONFIG.num_chunks, 1, score, 2, reshard=reshard)
        for reshard in (True, False)
    ]
    (states_a, alive_a, lines_a, dropped_a), (states_b, alive_b, lines_b, dropped_b) = runs
    assert alive_a == alive_b == [1, 3] and dropped_a == dropped_b
    assert [(x["chunk"], x["member"]) for x in lines_a] == [
        (x["chunk"], x["member"]) for x in lines_b
    ]
    for a, b in zip(lines_a, lines_b, strict=True):
        np.testing.assert_allclose(a["q_mean"], b["q_mean"], rtol=1e-5)
    params_a, params_b = jax.tree.leaves(states_a.params), jax.tree.leaves(states_b.params)
    for a, b in zip(params_a, params_b, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_bad_arguments(fns):
    from jaxserve.errors import InputError

    hps = [hparams_with(FAST) for _ in range(4)]
    score = lambda rows: [float(r["member"]) for r in rows]
    with pytest.raises(InputError, match="chunks_per_rung"):
        halve(fns, member_keys(2, 4), hps, 3, 0, score)
    with pytest.raises(InputError, match="non-finite"):
        halve(fns, member_keys(2, 4), hps, 3, 1, lambda rows: [np.nan] * len(rows))
