"""Measure a Flax OPT model's batch-latency profile on this device.

See docs/spec.md §6 (cpu-demo) and §7.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.models.opt.config import OPTConfig, get_preset
from jaxserve.models.opt.generate import Sampling, generate_padded
from jaxserve.models.opt.model import forward_jit, init_params
from jaxserve.progress import no_progress, progress_bar
from jaxserve.serving.config import PROFILE_CALLS, ProfileConfig, check_profile_fields
from jaxserve.timing import describe_machine, interleaved_runs, timed_runs

PROFILE_SEED = 0


def make_serve_call(
    config: OPTConfig, params: Any, batch: int, prompt_tokens: int, gen_tokens: int
) -> Callable[[], Any]:
    """The `jaxserve serve` batch call itself (executor.ModelRunner.run), packing included."""
    from jaxserve.serving.executor import ModelRunner, random_prompt

    mode = "generate" if gen_tokens > 0 else "score"
    runner = ModelRunner(config, params, prompt_tokens, mode, gen_tokens)
    prompts = [random_prompt(config, prompt_tokens, PROFILE_SEED + i) for i in range(batch)]
    return lambda: runner.execute(prompts)


def make_batch_call(
    config: OPTConfig,
    params: Any,
    batch: int,
    prompt_tokens: int,
    gen_tokens: int,
    call: str = "forward",
) -> Callable[[], Any]:
    """A call serving one batch: a forward pass (gen_tokens == 0) or greedy generation.

    call = "serve" times the serving engine's own batch call instead (jaxserve/serving).
    """
    if call == "serve":
        return make_serve_call(config, params, batch, prompt_tokens, gen_tokens)
    rng = np.random.default_rng(PROFILE_SEED)
    tokens = jnp.asarray(rng.integers(3, config.vocab_size, (batch, prompt_tokens)), jnp.int32)
    mask = jnp.ones_like(tokens)
    if gen_tokens == 0:
        return lambda: forward_jit(params, config, tokens, mask)
    temperature = jnp.float32(1.0)  # unused by greedy decoding
    # A fresh key per call: greedy decoding ignores it, and reusing one trips key-reuse checks.
    return lambda: generate_padded(
        params,
        tokens,
        mask,
        jax.random.key(PROFILE_SEED),
        temperature,
        config=config,
        max_new_tokens=gen_tokens,
        sampling=Sampling(),
    )


def isotonic(values: Sequence[float]) -> list[float]:
    """Least-squares non-decreasing fit (pool adjacent violators): a noisy profile made
    valid for scenarios (latency non-decreasing in batch size) with the least change."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, c1), (m2, c2) = blocks.pop(-2), blocks.pop(-1)
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    return [m for m, c in blocks for _ in range(int(c))]


def check_profile_args(
    config: OPTConfig,
    prompt_tokens: int,
    gen_tokens: int,
    batch_sizes: Sequence[int],
    repeats: int,
    warmup: int,
) -> None:
    """InputError naming the first bad profiling argument."""
    check_profile_fields(prompt_tokens, gen_tokens, batch_sizes, repeats, warmup)
    if prompt_tokens + gen_tokens > config.max_positions:
        raise InputError(
            f"profile prompt_tokens + gen_tokens={prompt_tokens + gen_tokens!r}: "
            f"expected <= max_positions {config.max_positions}"
        )


def profile_model(
    opt_config: OPTConfig,
    params: Any,
    prompt_tokens: int,
    gen_tokens: int,
    batch_sizes: Sequence[int],
    repeats: int = 5,
    warmup: int = 1,
    call: str = "forward",
    on_call: Callable[[int], None] = no_progress,
) -> dict:
    """Median and p10/p90 seconds to serve one batch of each size (prompt + gen_tokens greedy).

    `on_call(1)` after each compile and each timed call: len(batch_sizes) * (1 + repeats).
    """
    check_profile_args(opt_config, prompt_tokens, gen_tokens, batch_sizes, repeats, warmup)
    if call not in PROFILE_CALLS:
        raise InputError(f"profile call={call!r}: expected one of {list(PROFILE_CALLS)}")
    calls, first_call = [], []
    for batch in batch_sizes:
        fn = make_batch_call(opt_config, params, batch, prompt_tokens, gen_tokens, call)
        start = time.perf_counter()
        jax.block_until_ready(fn())  # compiles; reported, never mixed into the timings
        first_call.append(time.perf_counter() - start)
        timed_runs(fn, 0, max(warmup - 1, 0))
        calls.append(fn)
        on_call(1)
    seconds = interleaved_runs(calls, repeats, on_call)  # (repeats, sizes)
    latency = [float(x) for x in np.median(seconds, axis=0)]
    p10 = [float(x) for x in np.percentile(seconds, 10, axis=0)]
    p90 = [float(x) for x in np.percentile(seconds, 90, axis=0)]
    return {
        "model": opt_config.name,
        "dtype": opt_config.dtype,
        "prompt_tokens": prompt_tokens,
        "gen_tokens": gen_tokens,
        "call": call,
        "batch_sizes": [int(b) for b in batch_sizes],
        "repeats": repeats,
        "warmup": warmup,
        "latency_s": latency,
        "p10_s": p10,
        "p90_s": p90,
        "first_call_s": first_call,
    }


def write_profile(path: str | pathlib.Path, profile: dict, model: str | None = None) -> dict:
    """Write profile plus device/machine description as JSON, atomically; return the record."""
    machine = describe_machine()
    record = {
        "model": model or profile["model"],
        "device": machine["device"],
        "machine": machine,
        **{k: v for k, v in profile.items() if k != "model"},
    }
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return record


def load_model(name_or_path: str, dtype: str = "float32") -> tuple[OPTConfig, Any]:
    """A preset with random weights, an HF directory, or a jaxserve OPT checkpoint."""
    from jaxserve.models.opt.checkpoint import CONFIG_FILE, load_opt_checkpoint
    from jaxserve.models.opt.hf import load_hf_model

    path = pathlib.Path(name_or_path)
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        config, params = load_opt_checkpoint(path)
        if config.dtype != dtype:
            raise InputError(f"dtype={dtype!r}: checkpoint {name_or_path!r} holds {config.dtype}")
        return config, params
    if path.is_dir():
        return load_hf_model(path, dtype=dtype)
    config = get_preset(name_or_path, dtype)
    return config, init_params(config, jax.random.key(PROFILE_SEED))


def run_profile(config: ProfileConfig) -> dict:
    """`jaxserve profile`: load the model, time it, return the record (written to config.out)."""
    from jaxserve.serving.cpu import configure_cpu_threads

    cpu_threads = configure_cpu_threads(config.cpu_threads)
    opt_config, params = load_model(config.model, config.dtype)
    total = len(config.batch_sizes) * (1 + config.repeats)
    with progress_bar(total, "profile", "call", config.progress) as bar:
        profile = profile_model(
            opt_config,
            params,
            config.prompt_tokens,
            config.gen_tokens,
            config.batch_sizes,
            config.repeats,
            config.warmup,
            config.call,
            bar.update,
        )
    profile["cpu_threads"] = cpu_threads
    if config.monotone:
        profile["median_s"] = profile["latency_s"]
        profile["latency_s"] = isotonic(profile["latency_s"])
    if config.out:
        return write_profile(config.out, profile, model=str(config.model))
    return {
        "model": str(config.model),
        "device": describe_machine()["device"],
        "machine": describe_machine(),
        **{k: v for k, v in profile.items() if k != "model"},
    }
