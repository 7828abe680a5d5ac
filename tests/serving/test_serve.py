"""`jaxserve serve` end to end on cpu-demo-s: conservation, outcomes, fidelity, bad input."""

from __future__ import annotations

import json
import threading

import pytest
from serving_helpers import serve_config

from jaxserve.cli import main
from jaxserve.serving.serve import serve

OUTCOMES = ("num_on_time", "num_late", "num_dropped", "num_rejected", "num_unfinished")


def _check_conserved(result, num_requests):
    assert result["num_arrived"] == num_requests
    assert sum(result[k] for k in OUTCOMES) == num_requests and result["conserved"]
    assert result["num_unfinished"] == 0  # every request has an outcome
    assert all(o >= 0 for o in result["requests"]["outcome"])


def test_overloaded_virtual_run_gives_every_request_an_outcome(scenario_toml, tmp_path):
    out = tmp_path / "run" / "serve.json"
    result = serve(
        serve_config(scenario_toml, rate=3000.0, num_requests=150, fidelity=True, out=str(out))
    )
    _check_conserved(result, 150)
    assert result["num_rejected"] > 0  # overload: full queues reject, nothing is lost
    assert json.loads(out.read_text())["num_arrived"] == 150
    assert sorted(p.name for p in out.parent.iterdir()) == ["serve.json", "serve.png"]
    assert {"availability", "latency_p50_s"} <= set(result["fidelity"])
    assert result["router_decision_us"]["num_decisions"] == 150
    assert result["quality_source"] == "table"


def test_measured_quality_uses_the_answers(scenario_toml):
    result = serve(serve_config(scenario_toml, rate=50.0, num_requests=20, quality="measured"))
    _check_conserved(result, 20)
    utility = result["requests"]["utility"]
    assert set(utility) <= {0.0, 1.0}  # hard deadlines, no penalty: correct on time = 1
    correct = [
        c
        for c, o in zip(result["requests"]["correct"], result["requests"]["outcome"], strict=True)
        if o == 0
    ]
    assert sum(utility) == sum(correct)


def test_wall_clock_run_is_conserved(scenario_toml):
    result = serve(serve_config(scenario_toml, clock="wall", rate=100.0, num_requests=40))
    _check_conserved(result, 40)
    assert result["clock"] == "wall"


def test_stop_event_writes_partial_results(scenario_toml, tmp_path):
    """Stopped mid-run after exactly 50 arrivals (an event, not a timer: load-independent)."""
    stop, arrived = threading.Event(), []
    out = tmp_path / "partial.json"
    args = serve_config(scenario_toml, rate=2000.0, num_requests=100_000, out=str(out))

    def stop_after_50(n):
        arrived.append(n)
        if len(arrived) == 50:
            stop.set()

    result = serve(args, stop=stop, on_arrival=stop_after_50)
    assert result["interrupted"] and result["num_arrived"] == 50
    assert result["conserved"]
    assert json.loads(out.read_text())["interrupted"]


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--clock", "sundial"], "--clock"),
        (["--models", "cpu-demo-s"], "--models"),
        (["--prompt-tokens", "1"], "--prompt-tokens"),
        (["--tasks", "/nonexistent.jsonl"], "tasks"),
        (["--policy", "static:9"], "policy"),
        (["--rate", "-1"], "--rate"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(scenario_toml, capsys, argv, field):
    assert (
        main(
            ["serve", "--scenario", str(scenario_toml), "--models", "cpu-demo-s,cpu-demo-s", *argv]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and field in err and err.startswith("jaxserve: error:")


def test_tokens_beyond_the_model_vocabulary_are_an_input_error(scenario_toml, tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    rows = [
        {"task": t, "prompt": "café? Answer:", "choices": ["A", "B"], "label": 0}
        for t in ("piqa", "sciq")
    ]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (
        main(
            [
                "serve",
                "--scenario",
                str(scenario_toml),
                "--models",
                "tiny,tiny",
                "--tasks",
                str(tasks),
            ]
        )
        == 2
    )
    assert "vocab_size 128" in capsys.readouterr().err
