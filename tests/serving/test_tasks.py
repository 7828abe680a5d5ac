"""Task sets: the shipped sample, tokenisation, and bad rows (docs/spec.md §8)."""

from __future__ import annotations

import json

import pytest

from jaxserve.errors import InputError
from jaxserve.serving.tasks import (
    BYTE_OFFSET,
    ByteTokenizer,
    TaskSet,
    read_task_rows,
    tokenise_row,
)

TASKS = ("lambada_openai", "piqa", "arc_easy", "sciq")


def test_sample_set_covers_the_paper_tasks():
    rows = read_task_rows()
    assert {r["task"] for r in rows} == set(TASKS)
    task_set = TaskSet(rows, TASKS, ByteTokenizer(), prompt_tokens=32)
    first = task_set.draw(1)
    assert first.task == "piqa" and len(first.tokens) <= 32 and first.choice_tokens
    assert task_set.max_token < 260


def test_prompt_keeps_its_end_and_choice_tokens_are_first_bytes():
    row = {"task": "t", "prompt": "abcdef Answer:", "choices": ["A", " B"], "label": 1}
    p = tokenise_row(row, ByteTokenizer(), prompt_tokens=4, bos_id=2)
    assert p.tokens == tuple(ord(c) + BYTE_OFFSET for c in "wer:")
    assert p.choice_tokens == (ord("A") + BYTE_OFFSET, ord("B") + BYTE_OFFSET)
    assert tokenise_row(row, ByteTokenizer(), 100, 2).tokens[0] == 2  # bos when it fits


def test_draw_cycles_through_a_seeded_order():
    rows = [{"task": "t", "prompt": f"p{i}", "choices": ["A", "B"], "label": 0} for i in range(3)]
    a = [TaskSet(rows, ["t"], ByteTokenizer(), 8, seed=1).draw(0) for _ in range(1)]
    s = TaskSet(rows, ["t"], ByteTokenizer(), 8, seed=1)
    drawn = [s.draw(0).tokens for _ in range(6)]
    assert drawn[:3] == drawn[3:] and len(set(drawn[:3])) == 3 and a[0].tokens == drawn[0]


@pytest.mark.parametrize(
    "row, match",
    [
        ("not json", "not valid JSON"),
        (json.dumps({"task": "t", "prompt": "p", "choices": [], "label": 0}), "choices"),
        (json.dumps({"task": "t", "prompt": "p", "choices": ["A"], "label": 3}), "label"),
        (json.dumps({"task": "", "prompt": "p", "choices": ["A"], "label": 0}), "task"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(row + "\n")
    with pytest.raises(InputError, match=match) as err:
        read_task_rows(path)
    assert "bad.jsonl:1" in str(err.value)


def test_missing_task_and_shared_first_tokens_are_input_errors():
    rows = [{"task": "t", "prompt": "p", "choices": ["Apple", "Avocado"], "label": 0}]
    with pytest.raises(InputError, match="no rows"):
        TaskSet(rows, ["u"], ByteTokenizer(), 8)
    with pytest.raises(InputError, match="first token"):
        TaskSet(rows, ["t"], ByteTokenizer(), 8)
