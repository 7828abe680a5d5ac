"""Package data: the small generated task sample set (`tasks-sample.jsonl`, see sample.py)."""
