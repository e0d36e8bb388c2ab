"""Temporary files that say who writes them, and the cleanup that removes only those of dead writers.

A temp is named `.tmp-<name>.<pid>@<host>.<random>`: whoever cleans a folder can tell whether its writer is
still alive, so a second run (or a parallel step) never deletes the work in progress of a live one. Plain
standard library, shared by `pipelines/data/files.py` and `s2i_models/checkpoint.py`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

TEMP_PREFIX = ".tmp-"
# A temp whose writer lives on another host (or whose name says no writer: an older version's) is removed only
# once it has not been written to for this long; a live local writer's temp this old is a recycled pid's.
FOREIGN_TEMP_AGE_S = 6 * 3600
LOCAL_TEMP_AGE_S = 24 * 3600

log = logging.getLogger(__name__)


def temp_prefix(name: str) -> str:
    """`.tmp-<name>.<pid>@<host>.`: mkstemp appends a random part (letters, digits, '_': no dot, no '@')."""
    return f"{TEMP_PREFIX}{name}.{os.getpid()}@{socket.gethostname()}."


def temp_owner(temp_name: str) -> tuple[int, str] | None:
    """(pid, host) of the writer a temp's name records, or None for a name without one."""
    if not temp_name.startswith(TEMP_PREFIX) or "@" not in temp_name:
        return None
    left, _, right = temp_name.rpartition("@")
    host, dot, _random = right.rpartition(".")
    _name, dot2, pid = left.rpartition(".")
    if not (dot and dot2 and host and pid.isdigit()):
        return None
    return int(pid), host


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie counts as dead: it writes nothing any more)."""
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
            state = stream.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        return True


def temp_is_stale(temp: Path, now: float | None = None) -> bool:
    """True when no live writer can still be writing `temp` (see `remove_stale_temps`)."""
    try:
        age = (time.time() if now is None else now) - temp.lstat().st_mtime
    except OSError:
        return False  # gone already
    owner = temp_owner(temp.name)
    if owner is None:
        return age > FOREIGN_TEMP_AGE_S
    pid, host = owner
    if host != socket.gethostname():
        return age > FOREIGN_TEMP_AGE_S
    if pid == os.getpid():
        return False
    return not pid_alive(pid) or age > LOCAL_TEMP_AGE_S


def remove_stale_temps(folder: Path, recursive: bool = True) -> int:
    """Delete the `.tmp-*` leftovers of writers that are dead; returns how many.

    A temp of a live process on this host is kept (another run or step is writing it); so is a temp whose
    writer is on another host (a pod on shared storage) or unnamed, until it is `FOREIGN_TEMP_AGE_S` old.
    """
    count = 0
    if folder.is_dir():
        temps = folder.rglob(f"{TEMP_PREFIX}*") if recursive else folder.glob(f"{TEMP_PREFIX}*")
        for temp in list(temps):
            if (temp.is_file() or temp.is_symlink()) and temp_is_stale(temp):
                temp.unlink(missing_ok=True)
                count += 1
    if count:
        log.info("%s: removed %d temporary files of writers that are no longer running", folder, count)
    return count
