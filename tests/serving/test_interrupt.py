"""Ctrl-C: SIGINT to a running `jaxserve serve` stops it cleanly with partial results."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

from serving_helpers import REPO_ROOT

SERVED = re.compile(r"\| *[1-9][0-9]*/1000000 ")  # the bar after >= 1 routed request


def _wait_for_served_requests(stream) -> bool:
    """Read the progress bar (carriage-return updates) until it counts a routed request."""
    text = ""
    while char := stream.read(1):
        text = (text + char)[-200:]
        if SERVED.search(text):
            return True
    return False  # the process ended first


def test_sigint_writes_partial_results_atomically(scenario_toml, tmp_path):
    out = tmp_path / "out" / "serve.json"
    cmd = [
        sys.executable,
        "-m",
        "jaxserve.cli",
        "serve",
        "--scenario",
        str(scenario_toml),
        "--models",
        "cpu-demo-s,cpu-demo-s",
        "--prompt-tokens",
        "16",
        "--rate",
        "2000",
        "--num-requests",
        "1000000",
        "--out",
        str(out),
        "--json",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = proc.stderr.readline()  # "jaxserve serve: N requests, ... warm-up" = clock started
    assert "warm-up" in line, line + proc.stderr.read()
    seen = _wait_for_served_requests(proc.stderr)  # an event, not a sleep: load-independent
    assert seen, "the progress bar never showed a served request"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    result = json.loads(out.read_text())
    assert result["interrupted"] and result["conserved"]
    assert 0 < result["num_arrived"] < 1_000_000
    assert json.loads(stdout)["num_arrived"] == result["num_arrived"]
    assert [p.name for p in out.parent.iterdir()] == ["serve.json"]  # no temporary left
