"""Checkpoint files: written atomically, read back with `weights_only=True`.

A checkpoint holds only what `torch.load(weights_only=True)` accepts: tensors, state dicts, and plain
dicts / lists / str / int / float / bool / None (no Paths, no numpy scalars, no objects).

A save's temp names its writer (`s2i_models/tempfiles.py`, the scheme `pipelines/data/files.py` uses too),
so `remove_stale_temps` deletes only the temps of dead writers and never a checkpoint that another live run
is saving.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from s2i_models import tempfiles


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def save_atomic(obj: Any, path: Path | str) -> None:
    """torch.save to a temp name in the same folder, fsync, then os.replace: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=tempfiles.temp_prefix(path.name), dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    finally:
        if os.path.exists(temp_name):
            os.unlink(temp_name)


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict:
    """torch.load(weights_only=True); a missing or damaged file raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, wrong format, or objects weights_only refuses
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {error}). It is damaged or not a "
            f"checkpoint: delete it (for a training folder, delete the folder to start over)."
        ) from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(checkpoint).__name__}, expected a dict")
    return checkpoint


def remove_stale_temps(folder: Path | str) -> int:
    """Delete the `.tmp-*` files that killed saves left in `folder` (not below it); returns how many. Only
    temps whose writer is dead go (`s2i_models.tempfiles`): a live run's save in progress stays."""
    return tempfiles.remove_stale_temps(Path(folder), recursive=False)
