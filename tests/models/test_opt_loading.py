"""Loading HF directories (safetensors, sharded, .bin), orbax checkpoints and bad input."""

from __future__ import annotations

import json
import shutil
import sys

import jax
import numpy as np
import pytest
import torch
from opt_truth import build_hf_model, save_tiny_tokenizer

from jaxserve.errors import InputError
from jaxserve.models.opt import generate as gen
from jaxserve.models.opt.checkpoint import load_opt_checkpoint, save_opt_checkpoint
from jaxserve.models.opt.config import check_dtype, get_preset, opt_config_from_hf
from jaxserve.models.opt.convert import convert_state_dict
from jaxserve.models.opt.hf import load_hf_model, load_tokenizer, read_hf_state_dict


def _assert_same_params(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _save_bin(model, path):
    model.config.save_pretrained(path)
    torch.save(model.state_dict(), path / "pytorch_model.bin")  # includes the tied lm_head
    return path


def test_safetensors_sharded_and_bin_give_same_params(opt_loaded, tmp_path):
    _, model, _, config, params = opt_loaded
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    _, sharded_params = load_hf_model(sharded)
    _, bin_params = load_hf_model(_save_bin(model, tmp_path / "bin"))
    _assert_same_params(params, sharded_params)
    _assert_same_params(params, bin_params)


def test_orbax_checkpoint_round_trip(opt_loaded, tmp_path):
    _, _, _, config, params = opt_loaded
    save_opt_checkpoint(tmp_path / "ckpt", config, params)
    restored_config, restored = load_opt_checkpoint(tmp_path / "ckpt")
    assert restored_config == config
    _assert_same_params(params, restored)
    with pytest.raises(InputError, match="exists"):
        save_opt_checkpoint(tmp_path / "ckpt", config, params)


def test_tokenizer_from_local_directory(opt_loaded, tmp_path):
    _, _, _, config, params = opt_loaded
    tokenizer = load_tokenizer(save_tiny_tokenizer(tmp_path))
    ids = tokenizer("a cat sat").input_ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a cat sat"
    assert gen.generate(params, config, [ids], 4).shape == (1, 4)


@pytest.fixture
def hf_dir(tmp_path):
    """A fresh saved tiny HF model the test may damage."""
    build_hf_model(seed=5).save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, **changes}))


def test_missing_directory_and_files(hf_dir, tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_hf_model(tmp_path / "nowhere")
    (hf_dir / "model.safetensors").unlink()
    with pytest.raises(InputError, match="no weights"):
        load_hf_model(hf_dir)
    (hf_dir / "config.json").unlink()
    with pytest.raises(InputError, match="config.json"):
        load_hf_model(hf_dir)


def test_config_that_is_not_opt(hf_dir):
    _edit_config(hf_dir, model_type="gpt2")
    with pytest.raises(InputError, match="model_type='gpt2'"):
        load_hf_model(hf_dir)


def test_shape_mismatch_names_the_tensor(hf_dir):
    _edit_config(hf_dir, ffn_dim=48)
    with pytest.raises(InputError, match=r"fc1\.(weight|bias) shape=\(64.*expected \(48"):
        load_hf_model(hf_dir)


def test_corrupt_safetensors(hf_dir):
    (hf_dir / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(InputError, match="safetensors"):
        load_hf_model(hf_dir)


def test_missing_shard(opt_loaded, tmp_path):
    _, model, _, _, _ = opt_loaded
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    next(tmp_path.glob("model-00002-*.safetensors")).unlink()
    with pytest.raises(InputError, match="shard"):
        load_hf_model(tmp_path)


def test_missing_duplicated_and_unmapped_keys(opt_loaded):
    _, model, path, config, _ = opt_loaded
    state = read_hf_state_dict(path)
    key = next(k for k in state if k.endswith("layers.0.fc2.bias"))
    with pytest.raises(InputError, match="missing"):
        convert_state_dict({k: v for k, v in state.items() if k != key}, config)
    with pytest.raises(InputError, match="duplicates"):
        convert_state_dict({**state, key.replace("model.decoder.", "decoder."): state[key]}, config)
    with pytest.raises(InputError, match="unmapped"):
        convert_state_dict({**state, "model.decoder.layers.9.fc2.bias": state[key]}, config)
    with pytest.raises(InputError, match="tied head"):
        head = np.zeros((config.vocab_size, config.embed_dim), np.float32)
        convert_state_dict({**state, "lm_head.weight": head}, config)


def test_unsupported_dtype_and_unknown_preset():
    with pytest.raises(InputError, match="dtype='int8'"):
        check_dtype("int8")
    with pytest.raises(InputError, match="model='opt-7b'"):
        get_preset("opt-7b")
    with pytest.raises(InputError, match="activation_function"):
        opt_config_from_hf({"model_type": "opt", "activation_function": "gelu"})


def test_bad_checkpoint_directory(opt_loaded, tmp_path):
    _, _, _, config, params = opt_loaded
    with pytest.raises(InputError):
        load_opt_checkpoint(tmp_path)
    save_opt_checkpoint(tmp_path / "ckpt", config, params)
    shutil.rmtree(tmp_path / "ckpt" / "params")
    (tmp_path / "ckpt" / "params").mkdir()
    with pytest.raises(InputError, match="unreadable"):
        load_opt_checkpoint(tmp_path / "ckpt")


def test_presets_cover_public_sizes():
    sizes = {
        "125m": 125e6,
        "350m": 331e6,
        "1.3b": 1.3e9,
        "2.7b": 2.7e9,
        "6.7b": 6.7e9,
        "13b": 13e9,
        "30b": 30e9,
        "66b": 66e9,
    }
    for size, count in sizes.items():
        assert abs(get_preset(f"opt-{size}").num_params() / count - 1) < 0.05, size


def test_bin_without_torch_names_the_extra(tmp_path, monkeypatch):
    """torch is an extra: a .bin checkpoint without it is one line naming `jaxserve[torch]`."""
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(InputError, match=r"pip install 'jaxserve\[torch\]'") as info:
        read_hf_state_dict(tmp_path)
    assert "\n" not in str(info.value)
