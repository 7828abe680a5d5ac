"""Self-describing, atomic orbax checkpoints of pytrees (learned routers, learner state).

A checkpoint is a directory holding one orbax tree per name (e.g. `policy`, `state`) inside
a numbered step folder, and `checkpoint.json` beside them: the caller's metadata (scenario,
observation size, network config, ...) plus, per tree, the leaves' shapes, dtypes and a
SHA-256 of their bytes. Layout:

    DIR/checkpoint.json            <- written last, atomically: the commit point
    DIR/step_000003/policy/        <- orbax (OCDBT) tree, leaves keyed "000000", "000001", ...
    DIR/step_000003/state/

A step folder is written under a temporary name and renamed into place, then
checkpoint.json is replaced atomically, then older step folders are removed; a crash at
any point leaves the previous checkpoint readable. PRNG keys are stored as key data
(uint32) and re-wrapped on restore. Trees are saved as flat lists of leaves and rebuilt
with the caller's template, so every shape and dtype is checked (docs/spec.md §8: a checkpoint for
another model, or a corrupted one, is an InputError, never a traceback).

Several processes (`jax.distributed`, docs/scaling.md): every process gathers the trees to
its host (arrays split over processes are gathered), process 0 alone writes, and all wait
for it before `save_checkpoint` returns; every process restores on its own, so the
directory must be on storage that every process can read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import jax
import numpy as np

from jaxserve import multihost
from jaxserve.errors import InputError
from jaxserve.io_utils import write_json_atomic
from jaxserve.keys import is_key_array

FORMAT = "jaxserve-checkpoint/1"
META_FILE = "checkpoint.json"
_KEY_MARK = "prng_key"


def _quiet_orbax() -> None:
    logging.getLogger("absl").setLevel(logging.ERROR)


def to_host_leaves(tree) -> tuple[list[np.ndarray], list[str]]:
    """Leaves as numpy arrays (keys as key data) and their kinds ("array" | "prng_key")."""
    leaves, kinds = [], []
    for leaf in jax.tree.leaves(tree):
        if is_key_array(leaf):
            leaves.append(multihost.host_array(jax.random.key_data(leaf)))
            kinds.append(_KEY_MARK)
        else:
            leaves.append(multihost.host_array(leaf))
            kinds.append("array")
    return leaves, kinds


def tree_digest(leaves: list[np.ndarray]) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes."""
    h = hashlib.sha256()
    for leaf in leaves:
        h.update(f"{leaf.dtype.str}{leaf.shape}".encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def _describe(leaves, kinds) -> dict:
    return {
        "num_leaves": len(leaves),
        "shapes": [list(x.shape) for x in leaves],
        "dtypes": [x.dtype.str for x in leaves],
        "kinds": kinds,
        "sha256": tree_digest(leaves),
    }


def save_checkpoint(directory: str | Path, step: int, trees: dict, metadata: dict) -> Path:
    """Save named pytrees as step `step` of `directory`, atomically; returns the step folder.

    Several processes: every process calls it with the same trees; process 0 writes.
    """
    directory = Path(directory).absolute()  # orbax requires absolute paths
    host = {tree_name: to_host_leaves(tree) for tree_name, tree in trees.items()}
    final = directory / f"step_{step:06d}"
    if multihost.is_primary():
        _write_step(directory, final.name, step, host, metadata)
    multihost.barrier(f"jaxserve checkpoint step {step}")  # the others wait for the files
    return final


def _write_step(directory: Path, name: str, step: int, host: dict, metadata: dict) -> None:
    """Write the step folder (under a temporary name, then renamed), then checkpoint.json."""
    _quiet_orbax()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    described = {}
    with _checkpointer() as checkpointer:  # closed: no background work left over
        for tree_name, (leaves, kinds) in host.items():
            checkpointer.save(tmp / tree_name, {f"{i:06d}": x for i, x in enumerate(leaves)})
            described[tree_name] = _describe(leaves, kinds)
    final = directory / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    write_json_atomic(
        directory / META_FILE,
        {"format": FORMAT, "step": step, "path": name, "trees": described, **metadata},
    )
    for old in directory.glob("step_*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def _checkpointer():
    """An orbax checkpointer for this process alone.

    With several processes orbax would otherwise wait at its barriers for all of them, but
    only process 0 writes and each process restores on its own, from host arrays.
    """
    import orbax.checkpoint as ocp

    if not multihost.is_multiprocess():
        return ocp.PyTreeCheckpointer()
    me = jax.process_index()
    options = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    handler = ocp.PyTreeCheckpointHandler(multiprocessing_options=options)
    return ocp.Checkpointer(handler, multiprocessing_options=options)


def read_metadata(directory: str | Path) -> dict:
    """The checkpoint's JSON; InputError if the directory is not a readable checkpoint."""
    path = Path(directory) / META_FILE
    if not Path(directory).is_dir():
        raise InputError(f"checkpoint {directory}: not a directory")
    if not path.is_file():
        raise InputError(
            f"checkpoint {directory}: no {META_FILE} (not a jaxserve checkpoint, "
            "or one whose writing never finished)"
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"checkpoint {path}: corrupted JSON ({err.__class__.__name__})") from None
    found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
    if found != FORMAT:
        raise InputError(f"checkpoint {path}: format = {found!r}: expected {FORMAT!r}")
    return meta


def update_metadata(directory: str | Path, changes: dict) -> dict:
    """Add or replace top-level metadata entries of a checkpoint (atomically); the new JSON."""
    meta = {**read_metadata(directory), **changes}
    if multihost.is_primary():
        write_json_atomic(Path(directory) / META_FILE, meta)
    return meta


def has_tree(directory: str | Path, tree_name: str) -> bool:
    """Whether the checkpoint's latest step holds `tree_name`."""
    try:
        return tree_name in read_metadata(directory)["trees"]
    except (InputError, KeyError):
        return False


def restore_tree(directory: str | Path, tree_name: str, template):
    """Restore `tree_name` into the structure of `template` (arrays or ShapeDtypeStructs).

    Every leaf's shape and dtype must match the template and the bytes must match the
    recorded SHA-256; otherwise InputError with one line naming what differs.
    """
    _quiet_orbax()
    meta = read_metadata(directory)
    info = meta.get("trees", {}).get(tree_name)
    where = f"checkpoint {directory}"
    if info is None:
        raise InputError(
            f"{where}: has no {tree_name!r} tree; it holds {sorted(meta.get('trees', {}))}"
        )
    expected, treedef = _template_leaves(template)
    if info["num_leaves"] != len(expected):
        raise InputError(
            f"{where}: {tree_name} has {info['num_leaves']} arrays; expected "
            f"{len(expected)} (a different network or learner configuration)"
        )
    for i, ((shape, dtype), got_shape, got_dtype) in enumerate(
        zip(expected, info["shapes"], info["dtypes"], strict=True)
    ):
        if list(shape) != list(got_shape) or np.dtype(dtype).str != got_dtype:
            raise InputError(
                f"{where}: {tree_name} array {i} has shape {tuple(got_shape)} "
                f"{np.dtype(got_dtype).name}; expected {tuple(shape)} "
                f"{np.dtype(dtype).name}"
            )
    try:
        # Closed even when the restore fails, so orbax leaves no callbacks behind.
        with _checkpointer() as checkpointer:
            restored = checkpointer.restore(Path(directory).absolute() / meta["path"] / tree_name)
        leaves = [np.asarray(restored[f"{i:06d}"]) for i in range(len(expected))]
    except Exception as err:  # orbax/tensorstore raise many kinds on damaged files
        raise InputError(
            f"{where}: {tree_name} is unreadable or truncated ({err.__class__.__name__})"
        ) from None
    if tree_digest(leaves) != info["sha256"]:
        raise InputError(
            f"{where}: {tree_name} is corrupted (SHA-256 of its arrays differs "
            "from the one recorded when it was written)"
        )
    out = [
        jax.random.wrap_key_data(x) if kind == _KEY_MARK else x
        for x, kind in zip(leaves, info["kinds"], strict=True)
    ]
    return jax.tree.unflatten(treedef, out)


def _template_leaves(template):
    """[(shape, host dtype)] of a template's leaves (keys as their key data) and its treedef."""
    leaves, treedef = jax.tree.flatten(template)
    out = []
    for leaf in leaves:
        if is_key_array(leaf):
            data = jax.eval_shape(jax.random.key_data, leaf)
            out.append((data.shape, data.dtype))
        else:
            out.append((tuple(leaf.shape), np.dtype(leaf.dtype)))
    return out, treedef
