"""Typed configs of a served run (`ServeConfig`) and of a latency profile (`ProfileConfig`).

Both validate on construction: one InputError line naming the first bad field. The serve
messages name the `jaxserve serve` flag of each field, since the command line is where most
runs are configured. Light on purpose (no simulator import): building a config never starts
the JAX backend, which `cpu_threads` must precede.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jaxserve.errors import InputError
from jaxserve.serving.cpu import CPU_THREADS
from jaxserve.serving.executor import MODES

CLOCKS = ("virtual", "wall")
QUALITY_MODES = ("auto", "table", "measured")
DEFAULT_PROMPT_TOKENS = 32  # the cpu-demo profiles' request length
PROFILE_CALLS = ("forward", "serve")  # plain forward/generate, or the serving batch call


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """One `jaxserve serve` run: scenario, workload, router policy, models and clock."""

    scenario: str = "opt-a100x4"  # built-in scenario name or TOML file
    policy: str = "greedy"  # a baseline name or a router checkpoint directory
    workload: str | None = None  # KIND[:field=value,...]; None: the scenario's
    rate: float | None = None  # arrivals/s; None: the workload's
    seed: int = 0
    num_requests: int = 500
    clock: str = "virtual"  # one of CLOCKS
    models: tuple[str, ...] | None = None  # per scenario model: preset, HF dir or checkpoint
    tasks: str | None = None  # task JSONL file or directory; None: the shipped sample
    tokenizer: str | None = None  # local HF tokenizer directory; None: byte-level
    prompt_tokens: int = DEFAULT_PROMPT_TOKENS
    mode: str = "score"  # one of executor.MODES
    gen_tokens: int = 4  # generated tokens (mode "generate")
    quality: str = "auto"  # one of QUALITY_MODES
    dtype: str = "float32"
    cpu_threads: str = "all"  # one of cpu.CPU_THREADS
    fidelity: bool = False  # also run the simulator and report predicted vs measured
    window_s: float | None = None  # window of windowed metrics; None: 1/20 of the span
    out: str | None = None  # results JSON (and the fidelity figure beside it, .png)
    progress: bool = True  # a progress bar on stderr
    miss_penalty: float | None = None  # overrides the scenario's (reward only); None: keep
    availability_target: float | None = None  # steers a knob router (docs/knob.md)

    def __post_init__(self):
        if self.models is not None:
            object.__setattr__(self, "models", tuple(self.models))
        _check_serve_fields(self)


def _check_serve_fields(config: ServeConfig) -> None:
    """InputError naming the first bad field (by its `jaxserve serve` flag)."""
    c, threads = config, list(CPU_THREADS)
    checks = [
        ("--clock", c.clock, c.clock in CLOCKS, f"one of {list(CLOCKS)}"),
        ("--mode", c.mode, c.mode in MODES, f"one of {list(MODES)}"),
        ("--quality", c.quality, c.quality in QUALITY_MODES, f"one of {list(QUALITY_MODES)}"),
        ("--cpu-threads", c.cpu_threads, c.cpu_threads in threads, f"one of {threads}"),
        ("--num-requests", c.num_requests, _int_at_least(c.num_requests, 1), "an int >= 1"),
        ("--prompt-tokens", c.prompt_tokens, _int_at_least(c.prompt_tokens, 2), "an int >= 2"),
        ("--gen-tokens", c.gen_tokens, _int_at_least(c.gen_tokens, 1), "an int >= 1"),
        (
            "--window-s",
            c.window_s,
            c.window_s is None or c.window_s > 0,
            "a positive number of seconds",
        ),
        (
            "--availability-target",
            c.availability_target,
            c.availability_target is None or 0 < c.availability_target <= 1,
            "None or a number in (0, 1]",
        ),
        (
            "--models",
            c.models,
            c.models is None or all(isinstance(m, str) and m for m in c.models),
            "None or non-empty model sources",
        ),
    ]
    _raise_first(checks, "{field} = {value!r}: expected {expected}")


@dataclasses.dataclass(frozen=True)
class ProfileConfig:
    """One `jaxserve profile` run: a model's median seconds per batch size on this device."""

    model: str  # OPT preset (random weights), HF directory or jaxserve OPT checkpoint
    prompt_tokens: int = 128
    gen_tokens: int = 0  # 0: prompt scoring only
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8)  # or a comma-separated string
    repeats: int = 5  # timed calls per batch size
    warmup: int = 1  # untimed calls per batch size first
    dtype: str = "float32"
    call: str = "forward"  # one of PROFILE_CALLS
    monotone: bool = False  # latency_s as the isotonic fit of the medians (kept as median_s)
    cpu_threads: str = "all"  # one of cpu.CPU_THREADS
    out: str | None = None  # write the profile JSON (scenario format) here
    progress: bool = True  # a progress bar on stderr

    def __post_init__(self):
        object.__setattr__(self, "batch_sizes", _int_tuple(self.batch_sizes, "batch_sizes"))
        check_profile_fields(
            self.prompt_tokens, self.gen_tokens, self.batch_sizes, self.repeats, self.warmup
        )
        if self.call not in PROFILE_CALLS:
            raise InputError(f"profile call={self.call!r}: expected one of {list(PROFILE_CALLS)}")
        if self.cpu_threads not in CPU_THREADS:
            raise InputError(
                f"--cpu-threads = {self.cpu_threads!r}: expected one of {list(CPU_THREADS)}"
            )


def check_profile_fields(
    prompt_tokens: int, gen_tokens: int, batch_sizes: Sequence[int], repeats: int, warmup: int
) -> None:
    """InputError naming the first bad profiling argument (the model-independent ones)."""
    checks = [
        ("prompt_tokens", prompt_tokens, _int_at_least(prompt_tokens, 1), "an int >= 1"),
        ("gen_tokens", gen_tokens, _int_at_least(gen_tokens, 0), "an int >= 0"),
        ("repeats", repeats, _int_at_least(repeats, 1), "an int >= 1"),
        ("warmup", warmup, _int_at_least(warmup, 0), "an int >= 0"),
        (
            "batch_sizes",
            list(batch_sizes),
            len(batch_sizes) > 0 and all(_int_at_least(b, 1) for b in batch_sizes),
            "positive ints",
        ),
    ]
    _raise_first(checks, "profile {field}={value!r}: expected {expected}")


def _int_at_least(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _int_tuple(value, field: str) -> tuple[int, ...]:
    if isinstance(value, str):
        value = value.split(",")
    try:
        return tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{field}={value!r}: expected comma-separated ints") from None


def _raise_first(checks: list, message: str) -> None:
    for field, value, ok, expected in checks:
        if not ok:
            raise InputError(message.format(field=field, value=value, expected=expected))
