"""Progress bars: silent until the first unit of work (so bad input stays one line)."""

from __future__ import annotations

import pytest

from jaxserve.progress import progress_bar


def test_nothing_is_printed_before_the_first_update(capsys):
    with pytest.raises(ValueError):
        with progress_bar(10, "work", "step"):
            raise ValueError("bad input found while validating")
    assert capsys.readouterr().err == ""


def test_updates_show_count_and_disabled_bars_stay_silent(capsys):
    with progress_bar(3, "work", "step") as bar:
        for _ in range(3):
            bar.update(1)
    err = capsys.readouterr().err
    assert "work: 100%" in err and "3/3" in err
    with progress_bar(3, "quiet", "step", enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""
