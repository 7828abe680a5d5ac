"""Flax OPT: config presets, model, HF conversion, checkpoints, generation, scoring, sharding."""

from jaxserve.models.opt.checkpoint import load_opt_checkpoint, save_opt_checkpoint
from jaxserve.models.opt.config import (
    POSITION_OFFSET,
    PRESETS,
    OPTConfig,
    get_preset,
    opt_config_from_hf,
)
from jaxserve.models.opt.convert import convert_state_dict
from jaxserve.models.opt.generate import generate as generate_tokens
from jaxserve.models.opt.generate import generate_padded
from jaxserve.models.opt.hf import load_hf_config, load_hf_model, load_tokenizer
from jaxserve.models.opt.model import OPT, forward, forward_jit, init_cache, init_params
from jaxserve.models.opt.scoring import predict_choices, score_choices
from jaxserve.models.opt.sharding import make_mesh, shard_params

__all__ = [
    "OPT",
    "OPTConfig",
    "POSITION_OFFSET",
    "PRESETS",
    "convert_state_dict",
    "forward",
    "forward_jit",
    "generate_tokens",
    "generate_padded",
    "get_preset",
    "init_cache",
    "init_params",
    "load_hf_config",
    "load_hf_model",
    "load_opt_checkpoint",
    "load_tokenizer",
    "make_mesh",
    "opt_config_from_hf",
    "predict_choices",
    "save_opt_checkpoint",
    "score_choices",
    "shard_params",
]
