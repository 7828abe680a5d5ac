"""Hugging Face OPT state dict -> Flax params, by a key table with shape assertions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxserve.errors import InputError
from jaxserve.models.opt.config import POSITION_OFFSET, OPTConfig

Path = tuple[str, ...]
Converter = Callable[[np.ndarray, OPTConfig], np.ndarray]
PREFIXES = ("model.decoder.", "decoder.")  # OPTForCausalLM and bare OPTModel checkpoints
TIED_HEAD_KEY = "lm_head.weight"
LAYER_KEY = re.compile(r"layers\.(\d+)\.(.+)")


def _check(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if tuple(array.shape) != shape:
        raise InputError(f"checkpoint tensor {name} shape={tuple(array.shape)}: expected {shape}")


# One converter per tensor kind: (source shape from config, transform to the Flax layout).
def _heads_in(w: np.ndarray, c: OPTConfig) -> np.ndarray:  # (N*H, D) -> (D, N, H)
    return w.T.reshape(c.model_dim, c.num_heads, c.head_dim)


def _heads_bias(b: np.ndarray, c: OPTConfig) -> np.ndarray:  # (N*H,) -> (N, H)
    return b.reshape(c.num_heads, c.head_dim)


def _heads_out(w: np.ndarray, c: OPTConfig) -> np.ndarray:  # (D, N*H) -> (N, H, D)
    return w.T.reshape(c.num_heads, c.head_dim, c.model_dim)


def _transpose(w: np.ndarray, c: OPTConfig) -> np.ndarray:  # torch Linear (out, in) -> (in, out)
    return w.T


def _same(w: np.ndarray, c: OPTConfig) -> np.ndarray:
    return w


Rule = tuple[Path, Callable[[OPTConfig], tuple[int, ...]], Converter]
D = lambda c: (c.model_dim,)
DD = lambda c: (c.model_dim, c.model_dim)
LAYER_RULES: dict[str, Rule] = {
    **{
        f"self_attn.{p}.weight": (("self_attn", p, "kernel"), DD, _heads_in)
        for p in ("q_proj", "k_proj", "v_proj")
    },
    **{
        f"self_attn.{p}.bias": (("self_attn", p, "bias"), D, _heads_bias)
        for p in ("q_proj", "k_proj", "v_proj")
    },
    "self_attn.out_proj.weight": (("self_attn", "out_proj", "kernel"), DD, _heads_out),
    "self_attn.out_proj.bias": (("self_attn", "out_proj", "bias"), D, _same),
    "self_attn_layer_norm.weight": (("self_attn_layer_norm", "scale"), D, _same),
    "self_attn_layer_norm.bias": (("self_attn_layer_norm", "bias"), D, _same),
    "fc1.weight": (("fc1", "kernel"), lambda c: (c.mlp_dim, c.model_dim), _transpose),
    "fc1.bias": (("fc1", "bias"), lambda c: (c.mlp_dim,), _same),
    "fc2.weight": (("fc2", "kernel"), lambda c: (c.model_dim, c.mlp_dim), _transpose),
    "fc2.bias": (("fc2", "bias"), D, _same),
    "final_layer_norm.weight": (("final_layer_norm", "scale"), D, _same),
    "final_layer_norm.bias": (("final_layer_norm", "bias"), D, _same),
}
GLOBAL_RULES: dict[str, Rule] = {
    "embed_tokens.weight": (("embed_tokens",), lambda c: (c.vocab_size, c.embed_dim), _same),
    "embed_positions.weight": (
        ("embed_positions",),
        lambda c: (c.max_positions + POSITION_OFFSET, c.model_dim),
        _same,
    ),
    "final_layer_norm.weight": (("final_layer_norm", "scale"), D, _same),
    "final_layer_norm.bias": (("final_layer_norm", "bias"), D, _same),
    "project_in.weight": (
        ("project_in", "kernel"),
        lambda c: (c.model_dim, c.embed_dim),
        _transpose,
    ),
    "project_out.weight": (
        ("project_out", "kernel"),
        lambda c: (c.embed_dim, c.model_dim),
        _transpose,
    ),
}


def _rule_for(key: str, config: OPTConfig) -> tuple[Path, Rule]:
    """The target path and rule of one source key; InputError if it maps to nothing."""
    suffix = next((key[len(p) :] for p in PREFIXES if key.startswith(p)), None)
    match = LAYER_KEY.fullmatch(suffix or "")
    if match and int(match.group(1)) < config.num_layers and match.group(2) in LAYER_RULES:
        rule = LAYER_RULES[match.group(2)]
        return (f"layers_{int(match.group(1))}", *rule[0]), rule
    if suffix in GLOBAL_RULES and _global_expected(suffix, config):
        rule = GLOBAL_RULES[suffix]
        return rule[0], rule
    raise InputError(f"checkpoint tensor {key}: unmapped, expected an OPT key for {config.name}")


def _global_expected(suffix: str, config: OPTConfig) -> bool:
    if suffix.startswith("final_layer_norm"):
        return config.final_layer_norm
    if suffix.startswith("project_"):
        return config.projects_embeddings
    return True


def expected_paths(config: OPTConfig) -> set[Path]:
    """Every parameter path a config needs."""
    paths = {rule[0] for key, rule in GLOBAL_RULES.items() if _global_expected(key, config)}
    for i in range(config.num_layers):
        paths |= {(f"layers_{i}", *rule[0]) for rule in LAYER_RULES.values()}
    return paths


def convert_state_dict(state: Mapping[str, np.ndarray], config: OPTConfig) -> dict[str, Any]:
    """HF tensors (name -> array) to Flax params {'params': ...} in config's dtype."""
    flat: dict[Path, np.ndarray] = {}
    sources: dict[Path, str] = {}
    for key, array in state.items():
        if key == TIED_HEAD_KEY:
            continue  # checked against the embedding below
        path, (_, source_shape, convert) = _rule_for(key, config)
        if path in flat:
            raise InputError(f"checkpoint tensor {key}: duplicates {sources[path]}, expected one")
        _check(key, array, source_shape(config))
        flat[path], sources[path] = convert(np.asarray(array), config), key
    missing = sorted(".".join(p) for p in expected_paths(config) - set(flat))
    if missing:
        raise InputError(f"checkpoint tensors for {missing[:5]}: missing, expected all present")
    _check_tied_head(state, flat[("embed_tokens",)], config)
    return {"params": _unflatten(flat, config.jnp_dtype)}


def _check_tied_head(state: Mapping[str, np.ndarray], embed: np.ndarray, c: OPTConfig) -> None:
    """OPT ties its LM head to the token embedding; a different stored head is an error."""
    if TIED_HEAD_KEY not in state:
        return
    head = np.asarray(state[TIED_HEAD_KEY])
    _check(TIED_HEAD_KEY, head, (c.vocab_size, c.embed_dim))
    if not np.array_equal(head, embed):
        raise InputError(
            f"checkpoint tensor {TIED_HEAD_KEY}: differs from the token "
            "embedding, expected a tied head"
        )


def _unflatten(flat: dict[Path, np.ndarray], dtype: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, array in flat.items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = jnp.asarray(np.asarray(array, np.float32), dtype)
    return tree
