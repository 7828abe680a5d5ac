"""OPT model configuration: a frozen dataclass, presets and the Hugging Face edge mapping.

opt_config_from_hf / opt_config_to_hf are the only places Hugging Face field names appear.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import jax.numpy as jnp

from jaxserve.errors import InputError

POSITION_OFFSET = 2  # OPT's learned position table starts with two unused rows.
LAYER_NORM_EPSILON = 1e-5
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
OPT_VOCAB_SIZE = 50272
OPT_MAX_POSITIONS = 2048


@dataclasses.dataclass(frozen=True)
class OPTConfig:
    """Static shape and layout of one OPT model (hashable, so usable as a jit static arg)."""

    name: str
    num_layers: int
    model_dim: int  # D: residual stream width.
    num_heads: int  # N
    mlp_dim: int  # F
    embed_dim: int  # E: width of token embeddings and of the tied LM head.
    vocab_size: int = OPT_VOCAB_SIZE  # V
    max_positions: int = OPT_MAX_POSITIONS
    pre_layer_norm: bool = True  # False: the 350m post-LN layout.
    final_layer_norm: bool = True  # Only ever present together with pre_layer_norm.
    dtype: str = "float32"  # Parameters and compute.
    pad_id: int = 1
    bos_id: int = 2
    eos_id: int = 2

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        for field in (
            "num_layers",
            "model_dim",
            "num_heads",
            "mlp_dim",
            "embed_dim",
            "vocab_size",
            "max_positions",
        ):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise InputError(f"OPT config field {field}={value!r}: expected a positive int")
        if self.model_dim % self.num_heads:
            raise InputError(
                f"OPT config field num_heads={self.num_heads}: expected a divisor of "
                f"model_dim={self.model_dim}"
            )
        if self.final_layer_norm and not self.pre_layer_norm:
            raise InputError(
                "OPT config field final_layer_norm=True: expected False for post-LN models"
            )

    @property
    def head_dim(self) -> int:
        """H: width of one attention head."""
        return self.model_dim // self.num_heads

    @property
    def projects_embeddings(self) -> bool:
        """True when embeddings are projected in/out of the residual width (opt-350m)."""
        return self.embed_dim != self.model_dim

    @property
    def jnp_dtype(self) -> Any:
        """The jax dtype of parameters and compute."""
        return DTYPES[self.dtype]

    def num_params(self) -> int:
        """Parameter count (tied LM head counted once)."""
        d, e, f = self.model_dim, self.embed_dim, self.mlp_dim
        per_layer = 4 * (d * d + d) + 2 * d * f + f + d + 4 * d
        projections = 2 * d * e if self.projects_embeddings else 0
        final = 2 * d if self.final_layer_norm else 0
        positions = (self.max_positions + POSITION_OFFSET) * d
        return self.vocab_size * e + positions + projections + final + self.num_layers * per_layer


def check_dtype(dtype: str) -> str:
    """Return dtype if supported, else raise InputError."""
    if dtype not in DTYPES:
        raise InputError(f"dtype={dtype!r}: expected one of {sorted(DTYPES)}")
    return dtype


def _preset(name: str, layers: int, dim: int, heads: int, **kw: Any) -> OPTConfig:
    return OPTConfig(
        name=name,
        num_layers=layers,
        model_dim=dim,
        num_heads=heads,
        mlp_dim=4 * dim,
        embed_dim=kw.pop("embed_dim", dim),
        **kw,
    )


CPU_DEMO_VOCAB_SIZE = 512
CPU_DEMO_MAX_POSITIONS = 256
# (name, layers, model_dim, heads): about 0.5M, 3.3M and 11M parameters.
CPU_DEMO_SHAPES = (
    ("cpu-demo-s", 2, 128, 4),
    ("cpu-demo-m", 4, 256, 4),
    ("cpu-demo-l", 6, 384, 6),
)

PRESETS: dict[str, OPTConfig] = {
    c.name: c
    for c in (
        _preset("opt-125m", 12, 768, 12),
        _preset(
            "opt-350m", 24, 1024, 16, embed_dim=512, pre_layer_norm=False, final_layer_norm=False
        ),
        _preset("opt-1.3b", 24, 2048, 32),
        _preset("opt-2.7b", 32, 2560, 32),
        _preset("opt-6.7b", 32, 4096, 32),
        _preset("opt-13b", 40, 5120, 40),
        _preset("opt-30b", 48, 7168, 56),
        _preset("opt-66b", 64, 9216, 72),
        # cpu-demo (docs/spec.md §6): OPT-architecture models sized for a 2-core CPU, with a
        # 512-token
        # byte-level vocabulary (jaxserve/serving/tasks.py) so the LM head does not dominate.
        *(
            OPTConfig(
                name=name,
                num_layers=layers,
                model_dim=dim,
                num_heads=heads,
                mlp_dim=4 * dim,
                embed_dim=dim,
                vocab_size=CPU_DEMO_VOCAB_SIZE,
                max_positions=CPU_DEMO_MAX_POSITIONS,
            )
            for name, layers, dim, heads in CPU_DEMO_SHAPES
        ),
        # Tiny test doubles: same code paths, seconds to compile on a CPU.
        OPTConfig(
            name="tiny",
            num_layers=2,
            model_dim=32,
            num_heads=4,
            mlp_dim=64,
            embed_dim=32,
            vocab_size=128,
            max_positions=128,
        ),
        OPTConfig(
            name="tiny-350m",
            num_layers=2,
            model_dim=32,
            num_heads=4,
            mlp_dim=64,
            embed_dim=16,
            vocab_size=128,
            max_positions=128,
            pre_layer_norm=False,
            final_layer_norm=False,
        ),
    )
}


def get_preset(name: str, dtype: str | None = None) -> OPTConfig:
    """The preset called name ('opt-125m', …, 'tiny'), optionally in another dtype."""
    if name not in PRESETS:
        raise InputError(f"model={name!r}: expected one of {sorted(PRESETS)} or an HF directory")
    config = PRESETS[name]
    return config if dtype is None else dataclasses.replace(config, dtype=check_dtype(dtype))


def opt_config_from_hf(hf: dict[str, Any], name: str = "hf", dtype: str = "float32") -> OPTConfig:
    """Map a Hugging Face OPT config.json dict to OPTConfig (the only place HF names appear)."""
    if hf.get("model_type") != "opt":
        raise InputError(f"config.json model_type={hf.get('model_type')!r}: expected 'opt'")
    unsupported = {
        "activation_function": "relu",
        "enable_bias": True,
        "layer_norm_elementwise_affine": True,
        "tie_word_embeddings": True,
    }
    for field, expected in unsupported.items():
        if hf.get(field, expected) != expected:
            raise InputError(f"config.json {field}={hf[field]!r}: expected {expected!r}")
    try:
        hidden = hf["hidden_size"]
        pre_ln = bool(hf.get("do_layer_norm_before", True))
        return OPTConfig(
            name=name,
            num_layers=hf["num_hidden_layers"],
            model_dim=hidden,
            num_heads=hf["num_attention_heads"],
            mlp_dim=hf["ffn_dim"],
            embed_dim=hf.get("word_embed_proj_dim") or hidden,
            vocab_size=hf["vocab_size"],
            max_positions=hf["max_position_embeddings"],
            pre_layer_norm=pre_ln,
            final_layer_norm=pre_ln and not hf.get("_remove_final_layer_norm", False),
            dtype=dtype,
            pad_id=_token_id(hf, "pad_token_id", 1),
            bos_id=_token_id(hf, "bos_token_id", 2),
            eos_id=_token_id(hf, "eos_token_id", 2),
        )
    except KeyError as err:
        raise InputError(f"config.json field {err.args[0]!r}: missing, expected an int") from None


def opt_config_to_hf(config: OPTConfig) -> dict[str, Any]:
    """The inverse edge mapping: an HF OPT config dict (for building reference models)."""
    return {
        "model_type": "opt",
        "num_hidden_layers": config.num_layers,
        "hidden_size": config.model_dim,
        "num_attention_heads": config.num_heads,
        "ffn_dim": config.mlp_dim,
        "word_embed_proj_dim": config.embed_dim,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.max_positions,
        "do_layer_norm_before": config.pre_layer_norm,
        "_remove_final_layer_norm": config.pre_layer_norm and not config.final_layer_norm,
        "pad_token_id": config.pad_id,
        "bos_token_id": config.bos_id,
        "eos_token_id": config.eos_id,
        "dropout": 0.0,
        "attention_dropout": 0.0,
    }


def _token_id(hf: dict[str, Any], field: str, default: int) -> int:
    value = hf.get(field)
    if isinstance(value, list):
        value = value[0] if value else None
    return default if value is None else int(value)


def config_to_json(config: OPTConfig) -> str:
    """Serialise config to JSON."""
    return json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True)


def config_from_json(text: str) -> OPTConfig:
    """Parse config JSON written by config_to_json, with clear errors."""
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"OPT config JSON: not valid JSON ({err.msg}), expected an object"
        ) from None
    known = {f.name for f in dataclasses.fields(OPTConfig)}
    if not isinstance(fields, dict) or set(fields) - known:
        extra = sorted(set(fields) - known) if isinstance(fields, dict) else fields
        raise InputError(f"OPT config JSON fields {extra!r}: expected only {sorted(known)}")
    try:
        return OPTConfig(**fields)
    except TypeError as err:
        raise InputError(f"OPT config JSON: {err}; expected all of {sorted(known)}") from None
