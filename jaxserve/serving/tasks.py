"""Task sets for `jaxserve serve`: labelled multiple-choice prompts from local JSONL files.

One JSON object per line: `{"task": "piqa", "prompt": "...", "choices": ["A", "B"],
"label": 0}`. A request is answered by *first-token scoring*: one forward pass over the
prompt, then the log-probability at the last prompt position of each choice's first token
(exact for letter-labelled prompts, MMLU-style). With a single choice the answer counts as
correct when it is the greedy next token (LAMBADA's convention).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxserve.errors import InputError

SAMPLE_TASKS = Path(__file__).resolve().parents[1] / "data" / "tasks-sample.jsonl"
BYTE_OFFSET = 4  # ids 0..3 are OPT's specials (pad 1, bos/eos 2); byte v -> v + 4
BYTE_VOCAB_SIZE = 256 + BYTE_OFFSET


class ByteTokenizer:
    """Dependency-free tokenizer: UTF-8 bytes shifted past OPT's special ids."""

    name = "bytes"
    vocab_size = BYTE_VOCAB_SIZE

    def encode(self, text: str) -> list[int]:
        """Token ids of text (no special tokens)."""
        return [b + BYTE_OFFSET for b in text.encode("utf-8")]

    def choice_token(self, choice: str) -> int:
        """The scored token of an answer choice: its first non-space byte."""
        return self.encode(choice.strip() or " ")[0]


class HFTokenizer:
    """A local Hugging Face tokenizer (e.g. the OPT GPT-2 BPE), never downloaded."""

    def __init__(self, path: str | Path):
        from jaxserve.models.opt.hf import load_tokenizer

        self.name = str(path)
        self._tok = load_tokenizer(path)
        self.vocab_size = len(self._tok)

    def encode(self, text: str) -> list[int]:
        """Token ids of text (no special tokens)."""
        return list(self._tok.encode(text, add_special_tokens=False))

    def choice_token(self, choice: str) -> int:
        """First token of ' choice' (the continuation after 'Answer:')."""
        return self.encode(" " + choice.strip())[0]


def make_tokenizer(path: str | None):
    """The HF tokenizer in `path`, or the byte tokenizer when path is None."""
    return ByteTokenizer() if path is None else HFTokenizer(path)


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One tokenised request: prompt ids, scored choice tokens, gold label."""

    task: str
    tokens: tuple[int, ...]  # bos + prompt, truncated from the left to the prompt length
    choice_tokens: tuple[int, ...]
    label: int


def _fail_row(where: str, what: str, value, expected: str):
    raise InputError(f"{where}: {what} = {value!r}: expected {expected}")


def _parse_row(where: str, line: str) -> dict:
    """One JSONL row, validated."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{where}: not valid JSON ({err.msg}); expected one object per line"
        ) from None
    if not isinstance(row, dict):
        _fail_row(where, "row", row, "a JSON object")
    for key in ("task", "prompt"):
        if not isinstance(row.get(key), str) or not row[key]:
            _fail_row(where, key, row.get(key), "a non-empty string")
    choices = row.get("choices")
    if (
        not isinstance(choices, list)
        or not choices
        or not all(isinstance(c, str) and c.strip() for c in choices)
    ):
        _fail_row(where, "choices", choices, "a non-empty list of non-empty strings")
    label = row.get("label")
    if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(choices):
        _fail_row(where, "label", label, f"an integer in [0, {len(choices)})")
    return row


def _task_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            _fail_row(str(path), "task directory", str(path), "at least one *.jsonl file")
        return files
    if not path.is_file():
        _fail_row(str(path), "tasks", str(path), "a JSONL file or a directory of them")
    return [path]


def read_task_rows(path: str | Path | None = None) -> list[dict]:
    """Every validated row of a JSONL file or directory (default: the shipped sample set)."""
    rows = []
    for file in _task_files(Path(path) if path is not None else SAMPLE_TASKS):
        for number, line in enumerate(file.read_text().splitlines(), 1):
            if line.strip():
                rows.append(_parse_row(f"{file}:{number}", line))
    if not rows:
        _fail_row(str(path), "tasks", str(path), "at least one row")
    return rows


def tokenise_row(row: dict, tokenizer, prompt_tokens: int, bos_id: int) -> Prompt:
    """Tokenise one row; the prompt keeps its last `prompt_tokens` ids (bos first if it fits)."""
    ids = [bos_id] + tokenizer.encode(row["prompt"])
    choice_tokens = tuple(tokenizer.choice_token(c) for c in row["choices"])
    if len(set(choice_tokens)) != len(choice_tokens):
        raise InputError(
            f"task {row['task']!r} row {row['prompt'][:40]!r}: choices "
            f"{row['choices']} share a first token; expected distinct first tokens"
        )
    return Prompt(
        task=row["task"],
        tokens=tuple(ids[-prompt_tokens:]),
        choice_tokens=choice_tokens,
        label=int(row["label"]),
    )


class TaskSet:
    """Tokenised prompts per scenario task; `draw(task)` cycles through a seeded order."""

    def __init__(
        self,
        rows: Sequence[dict],
        task_names: Sequence[str],
        tokenizer,
        prompt_tokens: int,
        bos_id: int = 2,
        seed: int = 0,
    ):
        by_task = {name: [] for name in task_names}
        for row in rows:
            if row["task"] in by_task:
                by_task[row["task"]].append(tokenise_row(row, tokenizer, prompt_tokens, bos_id))
        missing = [name for name, items in by_task.items() if not items]
        if missing:
            found = sorted({row["task"] for row in rows})
            raise InputError(
                f"tasks {missing}: no rows in the task set (it has {found}); "
                "expected rows for every scenario task"
            )
        rng = np.random.default_rng(seed)
        self._prompts = [by_task[name] for name in task_names]
        self._order = [rng.permutation(len(items)) for items in self._prompts]
        self._next = [0] * len(task_names)
        self.max_token = max(
            max(p.tokens + p.choice_tokens) for items in self._prompts for p in items
        )

    def draw(self, task: int) -> Prompt:
        """The next prompt of scenario task index `task`."""
        order = self._order[task]
        prompt = self._prompts[task][order[self._next[task] % len(order)]]
        self._next[task] += 1
        return prompt
