"""The latency profiler: JSON shape and bad input (no timing assertions)."""

from __future__ import annotations

import json

import pytest

from jaxserve.errors import InputError
from jaxserve.serving import ProfileConfig
from jaxserve.serving.profile import run_profile


def _config(**overrides) -> ProfileConfig:
    base = dict(
        model="tiny",
        prompt_tokens=8,
        gen_tokens=4,
        batch_sizes="1,2",
        repeats=2,
        out=None,
        dtype="float32",
        warmup=1,
    )
    return ProfileConfig(**{**base, **overrides})


def test_profile_writes_json(tmp_path, capsys):
    out = tmp_path / "profiles" / "tiny.json"
    record = run_profile(_config(out=str(out)))
    err = capsys.readouterr().err
    assert "profile: 100%" in err and "6/6" in err  # 2 sizes x (1 compile + 2 repeats)
    on_disk = json.loads(out.read_text())
    assert on_disk == record
    assert on_disk["batch_sizes"] == [1, 2] and on_disk["model"] == "tiny"
    assert {"device", "machine", "prompt_tokens", "gen_tokens", "p10_s", "p90_s"} <= set(on_disk)
    for low, mid, high in zip(
        on_disk["p10_s"], on_disk["latency_s"], on_disk["p90_s"], strict=True
    ):
        assert 0 < low <= mid <= high


def test_profile_forward_only_from_hf_dir(hf_opt):
    _, _, path = hf_opt
    record = run_profile(_config(model=str(path), gen_tokens=0, batch_sizes=[1], repeats=1))
    assert len(record["latency_s"]) == 1 and record["gen_tokens"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        dict(dtype="int4"),
        dict(model="opt-9b"),
        dict(repeats=0),
        dict(batch_sizes="1,x"),
        dict(batch_sizes="0"),
        dict(prompt_tokens=200),
    ],
)
def test_profile_bad_input(overrides, tmp_path):
    out = tmp_path / "p.json"
    with pytest.raises(InputError):
        run_profile(_config(out=str(out), **overrides))
    assert not out.exists()
