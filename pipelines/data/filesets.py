"""Multi-file outputs swapped in one step: each version of a file set is written into a fresh folder
`<asset folder>/sets/<name>/`, and the asset's manifest (written last, by one atomic rename) names the set that
is current. A reader that reads the manifest once holds one consistent set from start to end, however many
times the writer runs meanwhile.

Old sets go only when no reader can hold them: the current set and the one before it are always kept (a
reader that read the manifest just before the switch still finds its files), and an older set is kept too
while a reader holds a shared flock on its `.readers` file (`reading_set`); sets that no manifest ever named
(a writer killed half-way) are removed by the next writer, which holds the asset's writer lock.

For readers that still glob `<asset folder>/<name>` (the layout before sets), `link_current` points a
symlink of that name at the current set's file (each switched by a rename); such a reader gets one file's
consistency, not the set's: read `current_set` instead.

Standard library only.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipelines.data.artifact_manifest import read_manifest
from pipelines.data.files import temp_prefix

SETS = "sets"
READERS = ".readers"

Log = Callable[[str], object]


def sets_root(folder: Path) -> Path:
    return Path(folder) / SETS


def current_set(folder: Path) -> Path | None:
    """The set the folder's manifest names (absolute), or None (no manifest, or one from before sets)."""
    manifest = read_manifest(Path(folder))
    name = manifest.data.get("set") if manifest is not None else None
    return Path(folder) / name if isinstance(name, str) and name else None


def previous_set(folder: Path) -> Path | None:
    manifest = read_manifest(Path(folder))
    name = manifest.data.get("previous_set") if manifest is not None else None
    return Path(folder) / name if isinstance(name, str) and name else None


def new_set(folder: Path, name: str) -> Path:
    """A fresh, empty set folder `sets/<name>` (or `sets/<name>.<n>` when that one exists). The caller holds
    the asset's writer lock; sets no manifest names are pruned first, so a killed writer's half set goes."""
    root = sets_root(folder)
    root.mkdir(parents=True, exist_ok=True)
    prune_sets(folder)
    candidate, count = root / name, 1
    while candidate.exists():
        candidate = root / f"{name}.{count}"
        count += 1
    candidate.mkdir()
    (candidate / READERS).touch(mode=0o644)
    return candidate


def manifest_fields(folder: Path, set_dir: Path) -> dict[str, str | None]:
    """What to add to the manifest that switches to `set_dir`: `set`, and `previous_set` (kept one more round)."""
    previous = current_set(folder)
    return {
        "set": str(set_dir.relative_to(folder)),
        "previous_set": str(previous.relative_to(folder))
        if previous is not None and previous.is_dir()
        else None,
    }


def _in_use(set_dir: Path) -> bool:
    """True when a reader holds a shared lock on the set (so an exclusive one cannot be taken)."""
    path = set_dir / READERS
    if not path.is_file():
        return False
    try:  # read-write: over NFS an exclusive flock is a POSIX write lock, which needs it
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:  # not ours to lock (another user's reader file): keep the set
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def prune_sets(folder: Path, log: Log | None = None) -> list[Path]:
    """Remove every set but the current and the previous one and those a reader holds; returns those removed.
    Only the asset's writer (holding its lock) calls this."""
    keep = {p.resolve() for p in (current_set(folder), previous_set(folder)) if p is not None}
    removed = []
    root = sets_root(folder)
    if not root.is_dir():
        return removed
    for candidate in sorted(root.iterdir()):
        if not candidate.is_dir() or candidate.resolve() in keep or _in_use(candidate):
            continue
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    if removed and log is not None:
        log(
            f"{Path(folder).name}: removed {len(removed)} old file set(s): {', '.join(p.name for p in removed)}"
        )
    return removed


def link_current(folder: Path, set_dir: Path, files: Sequence[Path], pattern: str) -> None:
    """Point `<folder>/<name>` at `set_dir/<name>` for each of `files` (a relative symlink, switched by a
    rename), and remove the top-level entries matching `pattern` that the new set does not have."""
    folder = Path(folder)
    names = {path.name for path in files}
    for path in files:
        link = folder / path.name
        temp = folder / f"{temp_prefix(path.name)}link"
        temp.unlink(missing_ok=True)
        os.symlink(os.path.relpath(path, folder), temp)
        os.replace(temp, link)
    for stale in folder.glob(pattern):
        if stale.name not in names and (stale.is_symlink() or stale.is_file()):
            stale.unlink(missing_ok=True)


@contextmanager
def reading_set(folder: Path) -> Iterator[Path | None]:
    """The current set, held for reading until the block ends: no writer removes it meanwhile, even two
    switches later. Yields None for a folder without sets (nothing to hold)."""
    for _attempt in range(10):
        set_dir = current_set(folder)
        if set_dir is None:
            yield None
            return
        try:
            fd = os.open(set_dir / READERS, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # pruned between reading the manifest and opening: read it again
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if not (set_dir / READERS).is_file():  # pruned before the lock was taken
                continue
            yield set_dir
            return
        finally:
            os.close(fd)
    raise RuntimeError(f"{folder}: its current file set kept changing while this reader opened it")
