"""Flax OPT vs transformers' PyTorch OPT on CPU, same weights, same run (docs/spec.md §9).

Measures forward latency for batch 1x128 and 8x128 tokens and greedy-generation tokens/s for
batch 8, with OPT-125M-shaped random weights, float32.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxserve.models.opt.config import get_preset, opt_config_to_hf
from jaxserve.models.opt.convert import convert_state_dict
from jaxserve.models.opt.generate import Sampling, generate_padded
from jaxserve.models.opt.hf import import_torch
from jaxserve.models.opt.model import forward_jit
from jaxserve.timing import describe_machine, timed_runs

BENCH_MODEL = "opt-125m"
FORWARD_SHAPES = ((1, 128), (8, 128))  # (batch, tokens)
GENERATE_BATCH = 8
GENERATE_PROMPT = 32


@dataclasses.dataclass(frozen=True)
class BenchPlan:
    """How long to measure: quick for CI smoke runs, full for reported numbers."""

    repeats: int
    new_tokens: int


PLANS = {True: BenchPlan(repeats=3, new_tokens=16), False: BenchPlan(repeats=10, new_tokens=64)}


def _torch_model(config):
    """A random-weight OPTForCausalLM in eval mode (eager attention) for config."""
    import torch
    from transformers import OPTConfig as HFOPTConfig
    from transformers import OPTForCausalLM

    torch.manual_seed(0)
    hf_config = HFOPTConfig(**opt_config_to_hf(config))
    hf_config._attn_implementation = "eager"
    return OPTForCausalLM(hf_config).eval()


def _torch_calls(model, tokens: np.ndarray, new_tokens: int):
    import torch

    ids = torch.as_tensor(tokens, dtype=torch.long)
    mask = torch.ones_like(ids)

    def forward():
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).logits

    def generate():
        with torch.no_grad():
            return model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                pad_token_id=1,
            )

    return forward, generate


def _jax_calls(params, config, tokens: np.ndarray, new_tokens: int):
    tokens = jnp.asarray(tokens, jnp.int32)
    mask = jnp.ones_like(tokens)
    forward = lambda: forward_jit(params, config, tokens, mask)
    generate = lambda: generate_padded(
        params,
        tokens,
        mask,
        jax.random.key(0),
        jnp.float32(1.0),
        config=config,
        max_new_tokens=new_tokens,
        sampling=Sampling(),
    )
    return forward, generate


def _paired_medians(jax_fn, torch_fn, repeats: int) -> tuple[float, float]:
    """Median seconds of each, timed alternately so load drift on a shared host hits both."""
    jax_s, torch_s = [], []
    for fn in (jax_fn, torch_fn):
        timed_runs(fn, repeats=0, warmup=1)
    for _ in range(repeats):
        jax_s.extend(timed_runs(jax_fn, repeats=1, warmup=0))
        torch_s.extend(timed_runs(torch_fn, repeats=1, warmup=0))
    return float(np.median(jax_s)), float(np.median(torch_s))


def bench_opt(quick: bool = True) -> dict[str, Any]:
    """Forward latency (s) and greedy tokens/s, jaxserve vs PyTorch eager, one process."""
    torch = import_torch("jaxserve bench --sections opt (Flax vs PyTorch)")

    plan, config = PLANS[bool(quick)], get_preset(BENCH_MODEL)
    model = _torch_model(config)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    params = convert_state_dict(state, config)  # same weights on both sides
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {
        "model": BENCH_MODEL,
        "dtype": "float32",
        "quick": bool(quick),
        "repeats": plan.repeats,
        "torch_threads": torch.get_num_threads(),
        "machine": describe_machine(),
        "load_avg_1m_before": os.getloadavg()[0],
    }
    for batch, length in FORWARD_SHAPES:
        tokens = rng.integers(3, config.vocab_size, (batch, length))
        jax_forward, _ = _jax_calls(params, config, tokens, plan.new_tokens)
        torch_forward, _ = _torch_calls(model, tokens, plan.new_tokens)
        name = f"forward_{batch}x{length}"
        results[f"{name}_jax_s"], results[f"{name}_torch_s"] = _paired_medians(
            jax_forward, torch_forward, plan.repeats
        )
        results[f"{name}_speedup"] = results[f"{name}_torch_s"] / results[f"{name}_jax_s"]
    tokens = rng.integers(3, config.vocab_size, (GENERATE_BATCH, GENERATE_PROMPT))
    _, jax_generate = _jax_calls(params, config, tokens, plan.new_tokens)
    _, torch_generate = _torch_calls(model, tokens, plan.new_tokens)
    generated = GENERATE_BATCH * plan.new_tokens
    name = f"generate_b{GENERATE_BATCH}_p{GENERATE_PROMPT}_n{plan.new_tokens}"
    jax_s, torch_s = _paired_medians(jax_generate, torch_generate, plan.repeats)
    results[f"{name}_jax_tok_s"] = generated / jax_s
    results[f"{name}_torch_tok_s"] = generated / torch_s
    results[f"{name}_speedup"] = results[f"{name}_jax_tok_s"] / results[f"{name}_torch_tok_s"]
    results["load_avg_1m_after"] = os.getloadavg()[0]  # context: the host is shared
    return results


if __name__ == "__main__":
    import json
    import sys

    start = time.perf_counter()
    print(json.dumps(bench_opt(quick="--full" not in sys.argv), indent=2))
    print(f"bench wall {time.perf_counter() - start:.1f}s", file=sys.stderr)
