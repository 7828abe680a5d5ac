"""Queueing theory check: M/D/1 mean sojourn time vs Pollaczek-Khinchine (STYLE: tests).

One model, one replica, max_batch 1, constant service time D, Poisson arrivals at rate
rho / D, deadlines far beyond any sojourn (hard, 1e6 s; drop_expired off) and a queue deep
enough that rejection is practically impossible (asserted to be zero). Then the mean time
from arrival to completion is W = D + rho * D / (2 * (1 - rho)).

How many requests (sampling error of the mean sojourn, heavy-traffic estimate): the
workload of an M/D/1 queue is close to a reflected Brownian motion with drift -(1 - rho)/D
and variance rate rho * D per unit time; the time average of such an RBM over a span T has
variance sigma^6 / (2 mu^4 T) (Abate & Whitt 1987, asymptotic variance 1/2 for the canonical
RBM), i.e. D^2 * rho^3 / (2 (1 - rho)^4 * T / D). With N requests, T = N D / rho:
* rho = 0.5: var = 1.0 D^2 * 0.5 / N -> N = 200,000 gives a standard error of 0.0016 D,
  0.1% of W = 1.5 D: the 1% tolerance is ~10 standard errors.
* rho = 0.9: var = 3645 D^2 * 0.9 / N -> 1% of W = 5.5 D needs N ~ 1e7 for a 3-sigma
  margin. 64 independent lanes (vmap) x 200,000 = 12.8 M requests give a standard error
  of 0.016 D = 0.29% of W (1% = 3.4 standard errors). Measured with seed 1: lane-to-lane
  standard error 0.34% of W, mean 0.24% above W (~5 min on 2 busy CPU cores: slow).
The empty start biases the mean down by about W_q x (relaxation time ~ rho D/(1-rho)^2) per
episode, < 0.05% at these lengths, so no warm-up is discarded.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxserve.sim.env import ServingEnv
from jaxserve.sim.reference import simulate
from jaxserve.sim.types import LATE, ON_TIME, REJECTED, Arrivals, SimConfig, SimParams

SERVICE_S = 1.0
QUEUE_CAPACITY = 128  # P(queue > 128) ~ exp(-0.2 * 128) at rho = 0.9: never reached

MD1_CONFIG = SimConfig(
    num_tasks=1,
    max_batch=(1,),
    replicas=(1,),
    queue_capacity=(QUEUE_CAPACITY,),
    batching="max",
    deadline_kind="hard",
    drop_expired=False,
    allow_reject=False,
)
MD1_PARAMS = SimParams(
    quality=jnp.ones((1, 1)),
    latency_s=jnp.full((1, 1), SERVICE_S),
    deadline_s=jnp.full((1,), 1e6),
    grace_s=jnp.ones(1),
    max_wait_s=jnp.zeros(1),
    miss_penalty=jnp.float32(0.0),
    noise_sigma=jnp.float32(0.0),
    reference_rate=jnp.float32(1.0),
    rate_window_s=jnp.float32(1.0),
)


def pollaczek_khinchine_sojourn_s(rho: float, service_s: float = SERVICE_S) -> float:
    """Mean time in system of M/D/1: service plus mean wait rho D / (2 (1 - rho))."""
    return service_s + rho * service_s / (2.0 * (1.0 - rho))


def make_md1_run(num_requests: int, rho: float):
    """jit(vmap)-able episode: Poisson arrivals, always route to model 0.

    Returns per-step sums of completed requests' sojourn times (float32, summed in float64
    later) and the final counters.
    """
    env = ServingEnv(MD1_CONFIG)

    def run(key):
        key_gaps, key_reset, key_steps = jax.random.split(key, 3)
        gap_s = jax.random.exponential(key_gaps, (num_requests,)) * (SERVICE_S / rho)
        arrivals = Arrivals(
            gap_s=gap_s, task=jnp.zeros(num_requests, jnp.int32), valid=jnp.ones(num_requests, bool)
        )
        _, state = env.reset(key_reset, MD1_PARAMS, arrivals)

        def one_step(state, i):
            # fold_in rather than scanning over split keys: the latter trips the key-reuse
            # checker under vmap (JAX 0.10.2 false positive).
            _, state, _, _, info = env.step(
                jax.random.fold_in(key_steps, i), state, jnp.int32(0), MD1_PARAMS
            )
            records = info["records"]
            completed = records.mask & ((records.outcome == ON_TIME) | (records.outcome == LATE))
            return state, jnp.sum(jnp.where(completed, records.latency_s, 0.0))

        state, sojourn_s = jax.lax.scan(one_step, state, jnp.arange(num_requests))
        return sojourn_s, state.counters

    return jax.jit(jax.vmap(run))


def md1_mean_sojourn_jax(rho: float, num_requests: int, num_runs: int, seed: int) -> float:
    sojourn_s, counters = make_md1_run(num_requests, rho)(
        jax.random.split(jax.random.key(seed), num_runs)
    )
    num_outcome = np.asarray(counters.num_outcome)
    assert np.all(num_outcome[:, REJECTED] == 0)
    assert np.all(num_outcome[:, ON_TIME] == num_requests)  # nobody missed a 1e6 s deadline
    return float(np.asarray(sojourn_s, dtype=np.float64).sum() / (num_requests * num_runs))


def test_md1_jax_matches_pollaczek_khinchine_at_half_load():
    mean_s = md1_mean_sojourn_jax(rho=0.5, num_requests=50_000, num_runs=4, seed=0)
    assert mean_s == pytest.approx(pollaczek_khinchine_sojourn_s(0.5), rel=0.01)


@pytest.mark.slow
def test_md1_jax_matches_pollaczek_khinchine_at_heavy_load():
    mean_s = md1_mean_sojourn_jax(rho=0.9, num_requests=200_000, num_runs=64, seed=1)
    assert mean_s == pytest.approx(pollaczek_khinchine_sojourn_s(0.9), rel=0.01)


def test_md1_reference_matches_pollaczek_khinchine_at_half_load():
    """The reference alone, 50,000 requests (standard error ~0.2% of W; see module doc)."""
    rho, num_requests = 0.5, 50_000
    rng = np.random.default_rng(7)
    gap_s = rng.exponential(SERVICE_S / rho, num_requests).astype(np.float32)
    result = simulate(
        MD1_CONFIG,
        MD1_PARAMS,
        np.cumsum(gap_s.astype(np.float64)),
        np.zeros(num_requests, int),
        np.zeros(num_requests, int),
    )
    assert np.all(result.outcome == ON_TIME)
    assert result.latency_s.mean() == pytest.approx(pollaczek_khinchine_sojourn_s(rho), rel=0.01)
