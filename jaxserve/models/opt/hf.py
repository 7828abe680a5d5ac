"""Read a local Hugging Face OPT directory: config.json plus safetensors or .bin weights."""

from __future__ import annotations

import json
import pathlib
import struct
from typing import Any

import ml_dtypes
import numpy as np

from jaxserve.errors import InputError
from jaxserve.models.opt.config import OPTConfig, opt_config_from_hf
from jaxserve.models.opt.convert import convert_state_dict

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
SAFETENSORS_DTYPES = {
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "F64": np.float64,
    "I64": np.int64,
    "I32": np.int32,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def _directory(path: str | pathlib.Path) -> pathlib.Path:
    directory = pathlib.Path(path)
    if not directory.is_dir():
        raise InputError(f"model directory {str(path)!r}: not found, expected an HF model dir")
    return directory


def load_hf_config(path: str | pathlib.Path, dtype: str = "float32") -> OPTConfig:
    """OPTConfig from <path>/config.json."""
    config_file = _directory(path) / "config.json"
    if not config_file.is_file():
        raise InputError(f"model file {str(config_file)!r}: missing, expected an HF config.json")
    try:
        hf = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"model file {str(config_file)!r}: not JSON, expected a config") from None
    if not isinstance(hf, dict):
        raise InputError(f"model file {str(config_file)!r}: expected a JSON object")
    return opt_config_from_hf(hf, name=pathlib.Path(path).name, dtype=dtype)


def read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
    """All tensors of one .safetensors file as numpy arrays (memory-mapped; no torch)."""
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        data = np.memmap(path, np.uint8, mode="r", offset=8 + header_len)
        return {
            name: _tensor(data, info) for name, info in header.items() if name != "__metadata__"
        }
    except (OSError, ValueError, KeyError, struct.error) as err:
        raise InputError(
            f"weights file {str(path)!r}: unreadable ({err}), expected a valid safetensors file"
        ) from None


def _tensor(data: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    start, end = info["data_offsets"]
    dtype = np.dtype(SAFETENSORS_DTYPES[info["dtype"]])
    shape = tuple(info["shape"])
    if end - start != dtype.itemsize * int(np.prod(shape)) or end > data.size:
        raise ValueError(f"tensor byte range {start}:{end} does not fit shape {shape}")
    return data[start:end].view(dtype).reshape(shape)


def import_torch(purpose: str):
    """The torch module, or InputError naming the extra that installs it."""
    try:
        import torch
    except ImportError:
        raise InputError(
            f"{purpose} needs PyTorch, which jaxserve does not install by default: "
            "pip install 'jaxserve[torch]' (on a CPU-only host pin the CPU build, torch==2.13.0)"
        ) from None
    return torch


def read_torch_bin(path: pathlib.Path) -> dict[str, np.ndarray]:
    """All tensors of one pytorch_model.bin (needs torch; weights_only unpickling)."""
    torch = import_torch(f"weights file {str(path)!r} (a PyTorch .bin)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt pickles
        raise InputError(
            f"weights file {str(path)!r}: unreadable ({type(err).__name__}), "
            "expected a torch state dict"
        ) from None
    return {k: _torch_to_numpy(v) for k, v in state.items()}


def _torch_to_numpy(tensor: Any) -> np.ndarray:
    import torch

    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy().astype(ml_dtypes.bfloat16)
    return tensor.numpy()


def _read_index(directory: pathlib.Path, index_name: str, reader) -> dict[str, np.ndarray]:
    index_file = directory / index_name
    try:
        weight_map = json.loads(index_file.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError(
            f"model file {str(index_file)!r}: expected JSON with a weight_map"
        ) from None
    state: dict[str, np.ndarray] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = directory / shard
        if not shard_path.is_file():
            raise InputError(f"weights shard {str(shard_path)!r}: missing, listed in {index_name}")
        for name, array in reader(shard_path).items():
            if name in state:
                raise InputError(f"checkpoint tensor {name}: in two shards, expected one")
            state[name] = array
    unlisted = sorted(set(weight_map) - set(state))
    if unlisted:
        raise InputError(f"checkpoint tensors {unlisted[:5]}: listed in {index_name}, missing")
    return state


def read_hf_state_dict(path: str | pathlib.Path) -> dict[str, np.ndarray]:
    """Tensors of an HF directory: safetensors, sharded safetensors, then (sharded) .bin."""
    directory = _directory(path)
    if (directory / SAFETENSORS).is_file():
        return read_safetensors(directory / SAFETENSORS)
    if (directory / SAFETENSORS_INDEX).is_file():
        return _read_index(directory, SAFETENSORS_INDEX, read_safetensors)
    if (directory / TORCH_BIN).is_file():
        return read_torch_bin(directory / TORCH_BIN)
    if (directory / TORCH_BIN_INDEX).is_file():
        return _read_index(directory, TORCH_BIN_INDEX, read_torch_bin)
    raise InputError(
        f"model directory {str(path)!r}: no weights, expected one of "
        f"{[SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_BIN_INDEX]}"
    )


def load_hf_model(path: str | pathlib.Path, dtype: str = "float32") -> tuple[OPTConfig, Any]:
    """(config, params) converted from a local HF OPT directory."""
    config = load_hf_config(path, dtype)
    return config, convert_state_dict(read_hf_state_dict(path), config)


def load_tokenizer(path: str | pathlib.Path):
    """The HF tokenizer saved in a local directory (never downloads)."""
    from transformers import AutoTokenizer

    directory = _directory(path)
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as err:
        raise InputError(
            f"tokenizer in {str(directory)!r}: unloadable ({err}), expected tokenizer files"
        ) from None
