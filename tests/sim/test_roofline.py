"""Roofline latency model: shape, calibration fit, profiles (docs/latency-model.md)."""

import pytest

from jaxserve.data import data_path
from jaxserve.errors import InputError
from jaxserve.sim import roofline

UNIT_HW = roofline.Hardware(
    "unit", hbm_bytes_per_s=1.0, peak_flops=1.0, memory_bytes=1e30, calibration_column="a100_ms"
)


def test_step_time_by_hand():
    eff = roofline.Efficiency(overhead_per_layer_s=0.5, mem_efficiency=0.5, compute_efficiency=0.25)
    # overhead 2 layers × 0.5 = 1; memory 3 / 0.5 = 6; compute 1 / 0.25 = 4 → 1 + 6.
    assert roofline.step_time_s(roofline.StepCost(3.0, 1.0, 2), UNIT_HW, eff) == 7.0
    # compute 2 / 0.25 = 8 now dominates → 1 + 8.
    assert roofline.step_time_s(roofline.StepCost(3.0, 2.0, 2), UNIT_HW, eff) == 9.0


def test_opt_param_counts_match_hugging_face():
    # Parameter counts of the facebook/opt-* checkpoints.
    assert roofline.opt_num_params(roofline.OPT_DIMS["opt-125m"]) == 125_239_296
    assert roofline.opt_num_params(roofline.OPT_DIMS["opt-6.7b"]) == 6_658_473_984


def test_roofline_flat_then_linear():
    """Memory-bound (flat) at few tokens, compute-bound (linear) at many."""
    hw, eff = roofline.A100_80GB, roofline.calibrate("a100").efficiency
    dims = roofline.OPT_DIMS["opt-6.7b"]
    step = lambda n: roofline.step_time_s(roofline.opt_scoring_cost(dims, n, 1), hw, eff)
    assert step(32) == pytest.approx(step(1), rel=0.01)
    assert step(4096) - step(2048) == pytest.approx(2 * (step(2048) - step(1024)), rel=0.01)
    assert step(4096) / step(2048) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("hardware, max_rms, max_abs", [("a100", 0.06, 0.12), ("h100", 0.10, 0.25)])
def test_calibration_fit_error(hardware, max_rms, max_abs):
    cal = roofline.calibrate(hardware)
    for n, m, p, e in zip(cal.tokens, cal.measured_s, cal.predicted_s, cal.rel_error, strict=True):
        print(
            f"{hardware} {n:5d} tokens: measured {m * 1e3:7.2f} ms, model {p * 1e3:7.2f} ms, "
            f"{e:+.1%}"
        )
    assert len(cal.tokens) == 9
    assert cal.rms_rel_error < max_rms
    assert max(abs(e) for e in cal.rel_error) < max_abs
    eff = cal.efficiency
    assert eff.overhead_per_layer_s > 0 and 0 < eff.mem_efficiency <= 1
    assert 0.3 < eff.compute_efficiency <= 1


@pytest.mark.parametrize("model", list(roofline.OPT_DIMS)[:-1])
def test_profiles_positive_non_decreasing(model):
    lat = roofline.latency_profile(model, 32)
    assert len(lat) == 32 and lat[0] > 0
    assert all(b >= a for a, b in zip(lat, lat[1:], strict=False))


def test_bigger_models_are_slower():
    first = [roofline.latency_profile(m, 1)[0] for m in list(roofline.OPT_DIMS)[:-1]]
    assert first == sorted(first)


def test_model_too_big_for_gpu_is_an_input_error():
    with pytest.raises(InputError, match="opt-66b.*a100"):
        roofline.latency_profile("opt-66b", 8, "a100")
    assert len(roofline.latency_profile("opt-66b", 8, "h200")) == 8


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: roofline.latency_profile("gpt-2", 4), "model = 'gpt-2'"),
        (lambda: roofline.latency_profile("opt-125m", 4, "tpu"), "hardware = 'tpu'"),
        (lambda: roofline.latency_profile("opt-125m", 0), "max_batch"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_missing_package_data():
    with pytest.raises(InputError, match="missing from this jaxserve install"):
        data_path("latency/nowhere.csv")


def test_calibration_reads_the_shipped_timings():
    """The shipped CSV's first rows (jaxserve/data/latency/): 1 token 9.28 ms, 8 tokens 9.06."""
    tokens, seconds = roofline.read_latency_csv("a100_ms")
    assert list(tokens[:2]) == [1, 8]
    assert seconds[:2] == pytest.approx([9.28e-3, 9.06e-3])


def test_round_up():
    assert roofline.round_up(0.0567, 0.01) == 0.06
    assert roofline.round_up(0.06, 0.01) == 0.06
