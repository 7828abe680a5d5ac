"""Independent truth for OPT tests: tiny random transformers OPT models and helpers."""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from transformers import OPTConfig as HFOPTConfig
from transformers import OPTForCausalLM

TINY_HF = dict(
    vocab_size=128,
    hidden_size=32,
    num_hidden_layers=2,
    ffn_dim=64,
    num_attention_heads=4,
    max_position_embeddings=128,
    dropout=0.0,
    attention_dropout=0.0,
    pad_token_id=1,
    bos_token_id=2,
    eos_token_id=2,
)
LAYOUTS = {
    "pre_ln": dict(do_layer_norm_before=True),
    "post_ln_350m": dict(do_layer_norm_before=False, word_embed_proj_dim=16),
}


def build_hf_model(seed: int = 0, **overrides) -> OPTForCausalLM:
    """A random tiny OPTForCausalLM with every weight (biases, norms too) perturbed."""
    torch.manual_seed(seed)
    config = HFOPTConfig(**{**TINY_HF, **overrides})
    config._attn_implementation = "eager"
    model = OPTForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            base = 1.0 if name.endswith("layer_norm.weight") else 0.0
            param.copy_(base + 0.15 * torch.randn_like(param))
    return model


def save_hf_model(model: OPTForCausalLM, path: pathlib.Path, **kwargs) -> pathlib.Path:
    """save_pretrained into path (kwargs e.g. safe_serialization, max_shard_size)."""
    model.save_pretrained(path, **kwargs)
    return path


def torch_logits(model: OPTForCausalLM, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """PyTorch logits (B, T, V) as numpy."""
    with torch.no_grad():
        out = model(input_ids=torch.as_tensor(tokens), attention_mask=torch.as_tensor(mask))
    return out.logits.float().numpy()


def random_batch(seed: int, batch: int, length: int, lengths: list[int], left: bool):
    """Random tokens (B,T) >= 3 and a 0/1 mask with given real lengths, padded left or right."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(3, TINY_HF["vocab_size"], (batch, length))
    mask = np.zeros((batch, length), np.int64)
    for row, n in enumerate(lengths):
        if left:
            mask[row, length - n :] = 1
        else:
            mask[row, :n] = 1
    tokens = np.where(mask == 1, tokens, TINY_HF["pad_token_id"])
    return tokens.astype(np.int64), mask


def save_tiny_tokenizer(path: pathlib.Path) -> pathlib.Path:
    """A byte-level BPE (GPT-2 / OPT style) tokenizer with a 124-token vocabulary, no merges."""
    import json

    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import GPT2Tokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in ["\u0120", *sorted(ByteLevel.alphabet())[:119]]:  # \u0120 is the space
        vocab.setdefault(char, len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = GPT2Tokenizer(
        str(path / "vocab.json"),
        str(path / "merges.txt"),
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    tokenizer.save_pretrained(path)
    return path
