"""Small file helpers: atomic writes (temp name in the same folder, then rename), checksums, and the cleanup
of temps that killed writers left behind.

A temp is named `.tmp-<name>.<pid>@<host>.<random>`: whoever cleans a folder can tell whether its writer is
still alive, so a second run (or a parallel step) never deletes the work in progress of a live one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

# The temp-file scheme lives in s2i_models (torch-free; it cannot import pipelines); re-exported here.
from s2i_models.tempfiles import (  # noqa: F401
    FOREIGN_TEMP_AGE_S,
    LOCAL_TEMP_AGE_S,
    TEMP_PREFIX,
    pid_alive,
    remove_stale_temps,
    temp_is_stale,
    temp_owner,
    temp_prefix,
)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path`, on failure delete it.

    A reader never sees a half-written file, and a killed run leaves only a `.tmp-*` file that no later
    run trusts.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=temp_prefix(path.name), dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    with atomic_output(path) as temp, open(temp, "wb") as stream:
        yield stream


def write_json_atomic(path: Path, data: Any) -> None:
    with atomic_open(path) as stream:
        stream.write((json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def write_parquet_atomic(path: Path, table: Any) -> None:
    """Write a pandas DataFrame as parquet, reproducibly (no pandas index, fixed compression)."""
    with atomic_output(path) as temp:
        table.to_parquet(temp, index=False, compression="zstd")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()
