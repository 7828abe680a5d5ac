"""Search spaces: grid x random draws, ranges respected, log-uniform where asked, bad input."""

import math

import numpy as np
import pytest

from jaxserve.errors import InputError
from jaxserve.evaluation import LogUniform, SearchSpace, TrainConfig, Uniform, parse_search


def test_random_draws_stay_in_range_and_log_uniform_is_log_uniform():
    space = SearchSpace(
        ranges={"learning_rate": LogUniform(1e-5, 1e-1), "discount": Uniform(0.8, 0.99)},
        num_samples=4000,
        seed=3,
    )
    points = space.points()
    assert len(points) == 4000
    lr = np.array([p["learning_rate"] for p in points])
    discount = np.array([p["discount"] for p in points])
    assert lr.min() >= 1e-5 and lr.max() <= 1e-1
    assert discount.min() >= 0.8 and discount.max() <= 0.99
    # Log-uniform over 4 decades: a quarter of the draws per decade (a uniform draw would put
    # 90 % in the top decade). Binomial(4000, 0.25) sd = 27, so +-120 is > 4 sd.
    decades = np.histogram(np.log10(lr), bins=[-5, -4, -3, -2, -1])[0]
    assert np.all(np.abs(decades - 1000) < 120), decades
    # Uniform: the mean of the draws is the midpoint (sd of the mean 0.00087).
    assert abs(discount.mean() - 0.895) < 0.004
    halves = np.histogram(discount, bins=[0.8, 0.895, 0.99])[0]
    assert np.all(np.abs(halves - 2000) < 130), halves


def test_same_seed_same_draws_other_seed_other_draws():
    make = lambda seed: SearchSpace(
        ranges={"learning_rate": LogUniform(1e-4, 1e-2)}, num_samples=5, seed=seed
    ).points()
    assert make(0) == make(0)
    assert make(0) != make(1)


def test_grid_crossed_with_samples_and_seeds():
    space = parse_search("discount=0.9/0.97;learning_rate=loguniform:1e-4:1e-2", num_samples=3)
    assert space.grid == {"discount": [0.9, 0.97]}
    assert space.ranges == {"learning_rate": LogUniform(1e-4, 1e-2)}
    config = TrainConfig(hparams={"target_period": 100.0}, search=space, seeds=2)
    members = config.member_overrides()
    assert len(members) == 2 * 3 * 2
    assert [m["discount"] for m in members[:6]] == [0.9] * 6
    # Each random point is shared by both grid values and repeated for each seed.
    lrs = [m["learning_rate"] for m in members]
    assert lrs[0] == lrs[1] and lrs[0] != lrs[2] and lrs[:6] == lrs[6:]
    assert all(m["target_period"] == 100 and isinstance(m["target_period"], int) for m in members)
    table = config.member_table()
    assert [r["point"] for r in table] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [r["replicate"] for r in table[:4]] == [0, 1, 0, 1]
    assert table[0]["epsilon_end"] == 0.02  # defaults filled in for unsearched fields


def test_integer_field_is_rounded():
    space = SearchSpace(ranges={"target_period": LogUniform(10, 1000)}, num_samples=50)
    periods = [p["target_period"] for p in space.points()]
    assert all(isinstance(p, int) and 10 <= p <= 1000 for p in periods)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("hidden=64/128", "decides shapes"),
        ("buffer_size=1024/2048", "decides shapes"),
        ("gamma=0.9/0.99", "unknown"),
        ("discount=0.9/x", "numbers separated by '/'"),
        ("learning_rate=loguniform:0:1e-2", "0 < low"),
        ("learning_rate=loguniform:1e-2", "LO:HI"),
        ("discount=uniform:0.9:1.5", "discount"),
        ("discount", "NAME=V1/V2"),
    ],
)
def test_bad_search_text_is_input_error(text, needle):
    with pytest.raises(InputError, match=needle):
        parse_search(text, num_samples=2)


def test_no_search_is_one_point():
    assert parse_search("").points() == [{}]
    assert math.isclose(
        SearchSpace(grid={"discount": [0.5]}).points()[0]["discount"], 0.5, rel_tol=0
    )
