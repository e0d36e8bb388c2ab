"""Checkpoint files: written atomically, read back with `weights_only=True`.

A checkpoint holds only what `torch.load(weights_only=True)` accepts: tensors, state dicts, and plain
dicts / lists / str / int / float / bool / None (no Paths, no numpy scalars, no objects).

A save's temp is named `.tmp-<name>.<pid>@<host>.<random>` (the same scheme as `pipelines/data/files.py`; this
package imports nothing from `pipelines`), so `remove_stale_temps` deletes only the temps of dead writers and
never a checkpoint that another live run is saving.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read."""


def save_atomic(obj: Any, path: Path | str) -> None:
    """torch.save to a temp name in the same folder, fsync, then os.replace: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=_temp_prefix(path.name), dir=path.parent)
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


# A temp whose writer is on another host, or whose name names none, is removed once this old (seconds since its
# last write); a live local writer's temp this old belongs to a recycled pid.
FOREIGN_TEMP_AGE_S = 6 * 3600
LOCAL_TEMP_AGE_S = 24 * 3600


def _temp_prefix(name: str) -> str:
    return f".tmp-{name}.{os.getpid()}@{socket.gethostname()}."


def _temp_owner(temp_name: str) -> tuple[int, str] | None:
    """(pid, host) from `.tmp-<name>.<pid>@<host>.<random>`, or None."""
    if not temp_name.startswith(".tmp-") or "@" not in temp_name:
        return None
    left, _, right = temp_name.rpartition("@")
    host, dot, _random = right.rpartition(".")
    _name, dot2, pid = left.rpartition(".")
    if not (dot and dot2 and host and pid.isdigit()):
        return None
    return int(pid), host


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            return stream.read().rsplit(b")", 1)[1].split()[0] != b"Z"  # a zombie writes no more
    except (OSError, IndexError):
        return True


def _temp_is_stale(temp: Path) -> bool:
    try:
        age = time.time() - temp.stat().st_mtime
    except OSError:
        return False
    owner = _temp_owner(temp.name)
    if owner is None or owner[1] != socket.gethostname():
        return age > FOREIGN_TEMP_AGE_S
    pid = owner[0]
    if pid == os.getpid():
        return False
    return not _pid_alive(pid) or age > LOCAL_TEMP_AGE_S


def remove_stale_temps(folder: Path) -> int:
    """Delete the `.tmp-*` files that killed saves left in `folder`; returns how many.

    Only temps whose writer is dead go: a temp of a live process on this host is another run's save in
    progress; one from another host (shared storage) or without an owner in its name goes once it is
    `FOREIGN_TEMP_AGE_S` old.
    """
    count = 0
    if folder.is_dir():
        for temp in list(folder.glob(".tmp-*")):
            if temp.is_file() and _temp_is_stale(temp):
                temp.unlink(missing_ok=True)
                count += 1
    return count
