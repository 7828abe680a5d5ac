"""Package data: the tables and traces jaxserve ships, each with its source and licence.

| folder | what | licence |
|---|---|---|
| `quality/` | OPT zero-shot accuracy (EleutherAI lm-eval via EleutherAI/pythia) | Apache-2.0 |
| `latency/` | Llama-2-7B linear-layer GPU timings (derived from microsoft/vidur) | MIT |
| `traces/` | Azure LLM inference 2023, Azure Functions 2019/2021 samples | CC-BY 4.0 |
| `tasks-sample.jsonl` | a small generated task set for `serve` (see sample.py) | this project |

Each folder's README.md gives the source, licence, attribution and checksums.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from jaxserve.errors import InputError

# Built-in traces by name: (file under data/, trace_format). docs/workloads.md lists them.
BUILTIN_TRACES = {
    "azure_llm_2023_code": (
        "traces/azure_llm_inference_2023/AzureLLMInferenceTrace_code.csv",
        "timestamps",
    ),
    "azure_llm_2023_conv": (
        "traces/azure_llm_inference_2023/AzureLLMInferenceTrace_conv.csv",
        "timestamps",
    ),
    "azure_functions_2019_100": (
        "traces/azure_functions_2019_invitro_sample/100/invocations.csv",
        "maf2019",
    ),
    "azure_functions_2019_500": (
        "traces/azure_functions_2019_invitro_sample/500/invocations.csv",
        "maf2019",
    ),
    "azure_functions_2021_200": (
        "traces/azure_functions_2021_invitro_sample/Azure2021_200.csv",
        "azure2021",
    ),
}


def data_path(relative: str) -> Path:
    """Path of a shipped data file, e.g. `data_path("quality/opt_lm_eval_zero_shot.csv")`."""
    path = Path(str(importlib.resources.files(__name__).joinpath(relative)))
    if not path.exists():
        raise InputError(f"package data {relative!r}: missing from this jaxserve install")
    return path


def builtin_trace(name: str) -> tuple[Path, str]:
    """(path, trace_format) of a built-in trace; InputError naming the choices otherwise."""
    if name not in BUILTIN_TRACES:
        raise InputError(f"trace name = {name!r}: expected one of {sorted(BUILTIN_TRACES)}")
    relative, trace_format = BUILTIN_TRACES[name]
    return data_path(relative), trace_format
