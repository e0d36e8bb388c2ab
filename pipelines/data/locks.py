"""One writer per artifact: an exclusive `flock` on `<asset folder>/.lock`, held by an open descriptor.

Every way of running an asset (the UI, `dagster asset materialize`, schedules, sensors, the k8s step pods that
mount the same data volume) goes through `pipelines.assets.common.reuse`, which takes this lock before it
decides to recompute; a second writer of the same folder then fails at once (or waits, `S2I_LOCK_WAIT_S`) with
who holds it: "gan_512 is being written by run <id> since <time> (pid <pid> on <host>)".

The lock is the flock, not a file's existence: the kernel drops it when the holder's descriptor closes, so a
killed run (SIGKILL, the OOM killer, a lost pod) leaves nothing to clean up, and `.lock` itself is never
deleted (deleting it would let two writers lock two different files). The JSON inside names the holder for
the message; it is informative only. Forked children (DataLoader workers, process pools) close their copies
of the descriptor, so an orphan cannot keep a dead step's lock.

Storage. flock excludes processes on one machine on any local file system. Across machines it needs a
shared file system that passes locks to its server: NFSv4 / 4.1 (Linux's NFS client turns flock into a
whole-file POSIX lock that the server arbitrates: EFS, Azure Files over NFS 4.1, the NFS CSI driver with
`nfsvers=4.x`), NFSv3 only with the lock protocol running (lockd/statd; Filestore has it), never with the
`nolock` or `local_lock=flock|all` mount options, which keep locks on the node, and CephFS. Object-store FUSE mounts
(s3fs, gcsfuse) and SMB/CIFS mounts are not relied on. When a node dies its NFS locks go when the server's
lease expires (NFSv4: about 90 s). Because the NFS lock is per process and a process drops it by closing any
descriptor of the file, a holder never opens its `.lock` a second time (`read_holder` is for the others), and
this module keeps at most one descriptor per folder and process.

Standard library only (no Dagster, DESIGN §1); `pipelines.assets.common` turns `ArtifactBusy` into a
Dagster `Failure`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = ".lock"
WAIT_ENV = "S2I_LOCK_WAIT_S"

Log = Callable[[str], object]


class ArtifactBusy(RuntimeError):
    """Another live process holds the folder's writer lock (and the caller did not wait, or waited enough)."""

    def __init__(self, message: str, holder: dict) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass
class WriterLock:
    """The writer lock of one asset folder, held by this process until `release()` or its end."""

    folder: Path
    holder: dict
    _fd: int | None = field(repr=False)
    _pid: int = field(repr=False)

    @property
    def held(self) -> bool:
        return self._fd is not None and self._pid == os.getpid()

    def release(self) -> None:
        """Drop the lock (closing the descriptor drops the flock). Idempotent; a no-op in a forked child."""
        with _registry_lock:
            fd, self._fd = self._fd, None
            if _held.get(self.folder) is self:
                del _held[self.folder]
            if fd is not None:
                _held_fds.discard(fd)
        if fd is not None and self._pid == os.getpid():
            os.close(fd)

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# Locks this process holds, by folder (resolved): at most one descriptor per folder (see NFS above).
_held: dict[Path, WriterLock] = {}
_held_fds: set[int] = set()
_registry_lock = threading.Lock()


def _close_in_child() -> None:
    """A forked child must not keep its parent's locks alive after the parent dies."""
    for fd in list(_held_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


def wait_seconds_from_env() -> float:
    """`S2I_LOCK_WAIT_S`: how long a second writer waits for the lock (default 0: fail at once)."""
    raw = os.environ.get(WAIT_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ValueError(f"{WAIT_ENV}={raw!r} is not a number of seconds (0 or more)")
    return value


def lock_path(folder: Path) -> Path:
    return Path(folder) / LOCK_NAME


def held_lock(folder: Path) -> WriterLock | None:
    """The lock this process holds on `folder`, if any."""
    lock = _held.get(Path(folder).resolve())
    return lock if lock is not None and lock.held else None


def release_lock(folder: Path) -> bool:
    """Release this process's lock on `folder`; False when it held none."""
    lock = held_lock(folder)
    if lock is None:
        return False
    lock.release()
    return True


def release_all(keep: Path | None = None) -> list[Path]:
    """Release every lock this process holds (but `keep`'s); returns their folders."""
    keep = Path(keep).resolve() if keep is not None else None
    released = []
    for folder, lock in list(_held.items()):
        if folder != keep:
            lock.release()
            released.append(folder)
    return released


def read_holder(folder: Path) -> dict:
    """Who holds (or last held) `folder`'s lock, from the JSON in the lock file; {} when unreadable."""
    try:
        text = lock_path(folder).read_text()
        record = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def describe(asset: str, holder: dict) -> str:
    """`gan_512 is being written by run <id> since <time> (pid <pid> on <host>)`."""
    run = holder.get("run_id") or "(not a Dagster run)"
    since = holder.get("since") or "an unknown time"
    where = f" (pid {holder.get('pid', '?')} on {holder.get('host', '?')})"
    return f"{asset} is being written by run {run} since {since}{where}"


def busy_message(asset: str, holder: dict, waited: float = 0.0) -> str:
    waited_text = f" (waited {waited:.0f} s)" if waited >= 1 else ""
    return (
        f"{describe(asset, holder)}{waited_text}. Only one run at a time may write `{asset}`: let that run finish "
        f"(a later run reuses what it writes) or cancel it, then run this again. Set {WAIT_ENV}=<seconds> to "
        f"wait for the lock instead of failing."
    )


def _open_locked(path: Path) -> int | None:
    """An open descriptor holding `path`'s exclusive flock, or None when another open file holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return None
        raise
    return fd


def _holder_record(asset: str, run_id: str | None, step: str | None) -> dict:
    return {
        "asset": asset,
        "run_id": run_id,
        "step": step,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


def _write_holder(fd: int, record: dict) -> None:
    payload = (json.dumps(record, sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, payload, 0)


def try_lock(folder: Path, *, run_id: str | None = None, step: str | None = None) -> WriterLock | None:
    """Take `folder`'s writer lock if no other process holds it; None when one does.

    A lock this process already holds is given up and taken again for the new holder: a process runs one
    step at a time (Dagster's in-process executor runs steps one after another), so a lock still held from an
    earlier step of this process belongs to a step that has ended without releasing it (it failed).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    previous = _held.get(key)
    if previous is not None:
        previous.release()
    record = _holder_record(folder.name, run_id, step)
    with _registry_lock:
        fd = _open_locked(lock_path(folder))
        if fd is None:
            return None
        _held_fds.add(fd)
        _write_holder(fd, record)
        lock = WriterLock(key, record, fd, os.getpid())
        _held[key] = lock
        return lock


def acquire(
    folder: Path,
    *,
    run_id: str | None = None,
    step: str | None = None,
    wait_s: float = 0.0,
    poll_s: float = 1.0,
    log: Log | None = None,
    log_every_s: float = 60.0,
) -> WriterLock:
    """Take `folder`'s writer lock, waiting up to `wait_s` seconds; raises `ArtifactBusy` naming the holder."""
    folder = Path(folder)
    started = time.monotonic()
    last_logged: float | None = None
    while True:
        lock = try_lock(folder, run_id=run_id, step=step)
        if lock is not None:
            if last_logged is not None and log is not None:
                log(f"{folder.name}: writer lock taken after waiting {time.monotonic() - started:.0f} s")
            return lock
        waited = time.monotonic() - started
        holder = read_holder(folder)
        if waited >= wait_s:
            raise ArtifactBusy(busy_message(folder.name, holder, waited), holder)
        if log is not None and (last_logged is None or time.monotonic() - last_logged >= log_every_s):
            log(f"waiting for the writer lock: {describe(folder.name, holder)}")
            last_logged = time.monotonic()
        time.sleep(min(poll_s, max(0.01, wait_s - waited)))
