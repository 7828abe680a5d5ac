"""The verdict rule of docs/results.md, on hand-computed cases, and the renderer."""

from __future__ import annotations

import pytest

from jaxserve.research import report as R


@pytest.mark.parametrize(
    ("measured", "paper", "expected"),
    [
        (4.1, 4.1, "reproduced"),
        (3.1, 4.0, "reproduced"),  # 3.1 >= 0.75 x 4.0 = 3.0
        (2.9, 4.0, "falls short"),  # below 3.0
        (5.0, 4.0, "reproduced"),  # 5.0 <= 1.25 x 4.0 = 5.0, the edge is inside
        (5.1, 4.0, "exceeds"),
        (9.2, 2.3, "exceeds"),  # 4x the paper: no longer counts as reproduced
        (2.48, 10.0, "falls short"),
    ],
)
def test_verdict_within_25_percent(measured, paper, expected):
    assert R.verdict(measured, paper) == expected


def test_verdict_uses_the_interval_when_given():
    # The point estimate is 40 % off, but the interval covers the paper's value.
    assert R.verdict(2.4, 4.0, interval=(1.5, 4.2)) == "reproduced"
    assert R.verdict(4.0, 4.0, interval=(4.2, 5.0)) == "exceeds"  # paper below the interval
    assert R.verdict(4.0, 4.0, interval=(3.0, 3.9)) == "falls short"


def test_verdict_without_a_measurement():
    assert R.verdict(None, 4.1) == R.NOT_COMPARABLE


def test_settings_verdict_names_each_outcome():
    assert R.settings_verdict({"a": 4.0, "b": 4.2}, 4.1) == "reproduced"
    assert R.settings_verdict({"a": 1.0, "b": 1.2}, 4.1) == "falls short in all 2 settings"
    text = R.settings_verdict({"a": 1.0, "b": 4.0, "c": 9.0}, 4.1)
    assert text == "reproduced in: b; exceeds in: c; falls short in: a (of 3 settings)"


def test_render_results_modes_sections_and_discussion():
    result = {
        "name": "01_x",
        "title": "X",
        "mode": "quick",
        "config": {"n": 1},
        "wall_s": 60.0,
        "claims": [R.claim("c", "4.1x", "4.0x", "how", R.verdict(4.0, 4.1))],
        "markdown": "body",
        "figures": [],
        "data": {"v": 2},
    }
    text = R.render_results([result], {"01_x": lambda d: f"para {d['v']}"}, "closing")
    assert "`jaxserve reproduce --quick`" in text and "**quick**" in text
    assert "| c | 4.1x | 4.0x | how | reproduced |" in text
    assert "## 01. X" in text and "*Mode quick; config: `{'n': 1}`" in text
    assert text.index("para 2") < text.index("closing")


def test_an_unbounded_interval_is_inconclusive_unless_it_starts_above():
    assert R.verdict(1.0, 4.1, (0.0, None)) == R.INCONCLUSIVE
    assert R.verdict(1.0, 4.1, (0.0, float("inf"))) == R.INCONCLUSIVE
    assert R.verdict(9.0, 4.1, (5.0, None)) == R.EXCEEDS
