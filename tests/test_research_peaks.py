"""Workloads with a stated peak (jaxserve/research/peaks.py) and router populations trained
like a shipped router (jaxserve/research/runs.py), against independent truths."""

import math
from pathlib import Path

import jax
import numpy as np

from jaxserve.research import peaks
from jaxserve.research.runs import shipped_training
from jaxserve.rl.config import DQNConfig
from jaxserve.sim.workloads import WorkloadSpec, make_workload, mean_rate

REPO = Path(__file__).resolve().parents[1]


def test_moving_peak_by_hand():
    # Rates 10, 40, 10 for 2 s each. W = 2: the middle segment, 40. W = 4: [1, 5] holds
    # 10 + 80 + 10 = 100 expected arrivals, 25/s. W longer than the schedule: its mean, 20.
    spec = WorkloadSpec(kind="piecewise", schedule=((2.0, 10.0), (2.0, 40.0), (2.0, 10.0)))
    assert peaks.stated_peak(spec, 2.0) == 40.0
    assert math.isclose(peaks.stated_peak(spec, 4.0), 25.0)
    assert math.isclose(peaks.stated_peak(spec, 60.0), 20.0)
    assert math.isclose(peaks.peak_to_mean(spec, 2.0), 2.0)


def test_unpredictable_family_peak_and_peak_to_mean():
    spec = peaks.unpredictable_peak_spec(450.0)
    assert peaks.stated_peak(spec, 10.0) == 450.0
    # Log-uniform over [p/30, p]: mean p (1 - 1/30) / ln 30, so peak / mean = 30 ln 30 / 29.
    assert math.isclose(peaks.peak_to_mean(spec, 10.0), 30 * math.log(30) / 29, rel_tol=1e-9)
    spiked = WorkloadSpec(kind="unpredictable", min_rate=1, max_rate=100, spike_prob=0.1,
                          spike_mult=3.0)  # fmt: skip
    assert peaks.stated_peak(spiked, 10.0) == 300.0
    realised = peaks.realised_peaks(spec, 5000, range(3), 10.0)
    assert all(0 < r <= 450.0 * (1 + 1e-6) for r in realised)
    assert len(set(realised)) > 1  # each episode draws its own segments


def test_maf_family_reaches_its_stated_peak_in_the_arrivals():
    counts = peaks.maf_window_counts(6)
    assert counts[peaks.MAF_LEAD_MINUTES] == counts.max()  # the busiest minute, 2 minutes in
    spec = peaks.maf_peak_spec(500.0, counts)
    assert math.isclose(peaks.stated_peak(spec, peaks.MAF_BIN_S), 500.0)
    n = peaks.maf_pass_requests(spec)
    assert math.isclose(n, counts.sum() * 500.0 / counts.max() * peaks.MAF_BIN_S, abs_tol=1)
    assert math.isclose(mean_rate(spec), n / (6 * peaks.MAF_BIN_S), rel_tol=1e-3)
    params, generate = make_workload(spec, num_tasks=4, num_arrivals=n)
    arrivals = jax.jit(generate)(jax.random.key(0), params)
    t = np.cumsum(np.asarray(arrivals.gap_s, np.float64))
    busiest = np.sum((t >= 2 * peaks.MAF_BIN_S) & (t < 3 * peaks.MAF_BIN_S))
    expected = 500.0 * peaks.MAF_BIN_S  # Poisson: sd sqrt(1000) ~ 32
    assert abs(busiest - expected) < 5 * math.sqrt(expected)


def test_shipped_training_reads_the_checkpoint_config():
    scenario, dqn, hparams, parent = shipped_training(REPO / "checkpoints/opt-a100x4-hard")
    assert scenario.name == "opt-a100x4" and scenario.replicas == (1, 1, 2)
    assert dqn == DQNConfig()  # trained with every default (checkpoints/README.md)
    assert hparams == {} and parent is None
    _, _, tuned, parent = shipped_training(REPO / "checkpoints/opt-a100x4-soft")
    assert tuned == {"epsilon_start": 0.1} and parent is not None  # fine-tuned from hard
