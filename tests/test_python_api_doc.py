"""docs/python-api.md: every ```python block runs, in order, in one namespace."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_doc_has_the_sections():
    text = DOC.read_text()
    for heading in (
        "## Build an environment",
        "## Run a sweep",
        "## Train a population over a grid",
        "## Random search",
        "## Successive halving",
        "## Evaluate checkpoints and members",
        "## Load results",
    ):
        assert heading in text, heading


def test_every_python_block_runs(tmp_path, monkeypatch):
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)  # the snippets write sweep.csv, runs/, chunks.csv here
    namespace = {"__name__": "python_api_doc"}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)
    assert (tmp_path / "runs" / "grid" / "members.csv").is_file()
