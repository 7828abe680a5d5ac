"""Generates `tasks-sample.jsonl`: a small synthetic, labelled task set for tests and the demo.

The rows are templated (arithmetic, comparisons, word completion), NOT the real benchmarks:
they only give `jaxserve serve` real prompts with the scenario's task names. Point
`--tasks` at real benchmark JSONL files for measured accuracy.
Run `python -m jaxserve.data.sample` to regenerate (deterministic).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from jaxserve.io_utils import write_text_atomic

OUT = Path(__file__).resolve().parent / "tasks-sample.jsonl"
ROWS_PER_TASK = 40
LETTERS = "ABCD"
WORDS = ("river", "garden", "window", "candle", "market", "winter", "silver", "forest")
GOALS = (
    ("boil water", "put the pot on the stove", "put the pot in the freezer"),
    ("dry wet hands", "use a towel", "use a wet sponge"),
    ("light a dark room", "switch on the lamp", "close the curtains"),
    ("keep bread fresh", "seal it in a bag", "leave it in the rain"),
)


def _lettered(question: str, options: list[str]) -> str:
    lines = [f"{LETTERS[j]}) {o}" for j, o in enumerate(options)]
    return f"Question: {question}\n" + "\n".join(lines) + "\nAnswer:"


def _arc(rng: random.Random) -> dict:
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    options = [a + b + d for d in rng.sample([-2, -1, 0, 1, 2, 3], 4)]
    if a + b not in options:
        options[rng.randrange(4)] = a + b
    return {
        "task": "arc_easy",
        "prompt": _lettered(f"What is {a} + {b}?", [str(o) for o in options]),
        "choices": list(LETTERS),
        "label": options.index(a + b),
    }


def _sciq(rng: random.Random) -> dict:
    values = rng.sample(range(1, 99), 4)
    return {
        "task": "sciq",
        "prompt": _lettered("Which number is largest?", [str(v) for v in values]),
        "choices": list(LETTERS),
        "label": values.index(max(values)),
    }


def _piqa(rng: random.Random) -> dict:
    goal, good, bad = rng.choice(GOALS)
    label = rng.randrange(2)
    options = [good, bad] if label == 0 else [bad, good]
    return {
        "task": "piqa",
        "prompt": _lettered(f"How do you {goal}?", options),
        "choices": ["A", "B"],
        "label": label,
    }


def _lambada(rng: random.Random) -> dict:
    word = rng.choice(WORDS)
    text = f"She walked to the {word} and back. The next day, she walked to the"
    return {"task": "lambada_openai", "prompt": text, "choices": [word], "label": 0}


def make_rows(seed: int = 0) -> list[dict]:
    """ROWS_PER_TASK rows for each of lambada_openai, piqa, arc_easy and sciq."""
    rng = random.Random(seed)
    return [make(rng) for make in (_lambada, _piqa, _arc, _sciq) for _ in range(ROWS_PER_TASK)]


def main() -> None:
    """Write the sample JSONL next to this module."""
    write_text_atomic(OUT, "".join(json.dumps(row) + "\n" for row in make_rows()))


if __name__ == "__main__":
    main()
