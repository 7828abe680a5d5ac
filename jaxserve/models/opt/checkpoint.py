"""Self-describing OPT checkpoints: an orbax params directory plus the config as JSON."""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from typing import Any

import orbax.checkpoint as ocp

from jaxserve.errors import InputError
from jaxserve.models.opt.config import OPTConfig, config_from_json, config_to_json
from jaxserve.models.opt.model import abstract_params

PARAMS_DIR = "params"
CONFIG_FILE = "opt_config.json"


def _checkpointer() -> ocp.Checkpointer:
    return ocp.Checkpointer(ocp.StandardCheckpointHandler())


def save_opt_checkpoint(
    path: str | pathlib.Path, config: OPTConfig, params: Any, overwrite: bool = False
) -> pathlib.Path:
    """Write <path>/params (orbax) and <path>/opt_config.json; atomic via a temporary dir."""
    target = pathlib.Path(path).absolute()
    if target.exists() and not overwrite:
        raise InputError(f"checkpoint directory {str(target)!r}: exists, expected a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _checkpointer().save(staging / PARAMS_DIR, args=ocp.args.StandardSave(params))
        (staging / CONFIG_FILE).write_text(config_to_json(config))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_opt_checkpoint(path: str | pathlib.Path) -> tuple[OPTConfig, Any]:
    """(config, params) from a directory written by save_opt_checkpoint."""
    source = pathlib.Path(path).absolute()
    config_file, params_dir = source / CONFIG_FILE, source / PARAMS_DIR
    if not config_file.is_file() or not params_dir.is_dir():
        raise InputError(
            f"checkpoint directory {str(path)!r}: expected {CONFIG_FILE} and "
            f"{PARAMS_DIR}/ written by save_opt_checkpoint"
        )
    config = config_from_json(config_file.read_text())
    abstract = abstract_params(config)
    try:
        params = _checkpointer().restore(params_dir, args=ocp.args.StandardRestore(abstract))
    except Exception as err:  # orbax/tensorstore raise many types for damaged data
        raise InputError(
            f"checkpoint directory {str(path)!r}: unreadable or not matching "
            f"{config.name} ({type(err).__name__}), expected an intact checkpoint"
        ) from None
    return config, params
