"""One-second segments of every clip: extraction fanned out over processes, cached per clip.

Each clip's frames and log-mels go to `<cache_dir>/<clip_id>.npz` (or `<clip_id>.skip.json` with the reason
it yields nothing). A cache entry records the source file's size and mtime; a run interrupted at clip
9,000 of 14,000 resumes there, and a re-run with the same settings recomputes nothing.

Every entry read is validated: an `.npz` must unzip with matching CRCs and hold frames (K, S, S, 3) uint8
and finite mels (K, 100, 128) float16 with its stamp; a `.skip.json` must parse to a record with a reason. A
damaged one is logged with its path, moved aside as `<name>.bad` and rebuilt: by extraction (`process_clip`),
or, for a reader such as the `shards` asset, by the `rebuild` callable it passes to `iter_segments`.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.files import atomic_open, remove_stale_temps, write_json_atomic
from pipelines.data.progress import Progress

logger = logging.getLogger(__name__)

SEGMENT_COLUMNS = ["clip_id", "class_name", "segment", "source"]
MEL_SHAPE = (100, 128)  # (time, mel) per second
SKIPPED_COLUMNS = ["clip_id", "class_name", "source", "reason", "detail"]


@dataclass(frozen=True)
class ClipJob:
    clip_id: str
    class_name: str
    path: str
    source: str


@dataclass(frozen=True)
class ClipOutcome:
    clip_id: str
    segments: int  # 0 when skipped
    reason: str  # "" when usable
    detail: str
    cached: bool
    repaired: str = ""  # a damaged cache entry found and moved aside (its path and what was wrong), or ""


def _stamp(path: str) -> dict:
    try:
        stat = os.stat(path)
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    except OSError:
        return {"size": -1, "mtime_ns": -1}


def cache_file(cache_dir: Path, clip_id: str) -> Path:
    return cache_dir / f"{clip_id}.npz"


def _skip_file(cache_dir: Path, clip_id: str) -> Path:
    return cache_dir / f"{clip_id}.skip.json"


class DamagedCacheEntry(ValueError):
    """A cache entry exists but cannot be used; it has been moved aside (`moved_to`) when the caller asked."""

    def __init__(self, path: Path, problem: str, moved_to: Path | None = None) -> None:
        where = f"; moved aside to {moved_to.name}" if moved_to is not None else ""
        super().__init__(f"damaged segment cache entry {path}: {problem}{where}")
        self.path, self.problem, self.moved_to = path, problem, moved_to


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def quarantine(path: Path, identity: tuple[int, int, int] | None, problem: str) -> Path | None:
    """Move a damaged entry aside as `<name>.bad`, unless it changed since it was read (another process
    rebuilt it meanwhile); returns the new path, or None when nothing was moved."""
    if identity is None or _identity(path) != identity:
        return None
    target = path.with_name(path.name + ".bad")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    logger.warning("%s: %s; moved aside to %s, it will be rebuilt", path, problem, target.name)
    return target


def _load_entry(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(frames, mels, stamp) of a cache entry, validated; FileNotFoundError or DamagedCacheEntry (not moved)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            frames, mels, stamp = data["frames"], data["mels"], str(data["stamp"])
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise DamagedCacheEntry(path, f"{type(error).__name__}: {error}") from error
    problem = None
    if (
        frames.ndim != 4
        or frames.dtype != np.uint8
        or frames.shape[3] != 3
        or frames.shape[1] != frames.shape[2]
    ):
        problem = f"frames {frames.dtype}{frames.shape}, expected uint8 (K, S, S, 3)"
    elif mels.dtype != np.float16 or mels.shape[1:] != MEL_SHAPE:
        problem = f"mels {mels.dtype}{mels.shape}, expected float16 (K, {MEL_SHAPE[0]}, {MEL_SHAPE[1]})"
    elif len(frames) != len(mels) or len(frames) == 0:
        problem = f"{len(frames)} frames and {len(mels)} mels"
    elif not np.isfinite(mels).all():
        problem = "mels hold NaN or inf"
    if problem is not None:
        raise DamagedCacheEntry(path, problem)
    return frames, mels, stamp


def cached_stamp(path: Path) -> str | None:
    """The stamp of the valid cache entry at `path`, or None when it is missing or damaged (to be rewritten)."""
    try:
        return _load_entry(path)[2]
    except (FileNotFoundError, DamagedCacheEntry):
        return None


def read_cached(cache_dir: Path, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames (K, 96, 96, 3) uint8, mels (K, 100, 128) float16) of one clip.

    A damaged entry is moved aside (`<clip_id>.npz.bad`, logged) and DamagedCacheEntry raised: rebuild it
    (`iter_segments(..., rebuild=...)`, or materialize `segments` again). A missing one: FileNotFoundError.
    """
    path = cache_file(cache_dir, clip_id)
    identity = _identity(path)
    try:
        frames, mels, _stamp = _load_entry(path)
    except DamagedCacheEntry as error:
        raise DamagedCacheEntry(path, error.problem, quarantine(path, identity, error.problem)) from error
    return frames, mels


def _read_skip(path: Path) -> dict | None:
    """A `.skip.json` record, validated; None (after moving it aside) when damaged, or when there is none."""
    identity = _identity(path)
    if identity is None:
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or not isinstance(record.get("reason"), str):
            raise ValueError("not a record with a reason")
        return record
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        quarantine(path, identity, f"{type(error).__name__}: {error}")
        raise DamagedCacheEntry(path, f"{type(error).__name__}: {error}") from error


def _cached_outcome(job: ClipJob, cache_dir: Path, stamp: dict) -> tuple[ClipOutcome | None, str]:
    """(the outcome recorded in the cache for `job` when its stamp matches, else None; what was damaged).
    A damaged entry is moved aside (`.bad`) and described in the second item, so the caller re-extracts."""
    repaired = []
    skip = _skip_file(cache_dir, job.clip_id)
    try:
        record = _read_skip(skip)
    except DamagedCacheEntry as error:
        record = None
        repaired.append(f"{error} (moved aside to {skip.name}.bad)")
    if record is not None and record.get("stamp") == stamp:
        return ClipOutcome(job.clip_id, 0, record["reason"], record.get("detail", ""), True), ""
    path = cache_file(cache_dir, job.clip_id)
    identity = _identity(path)
    if identity is not None:
        try:
            frames, _mels, cached_stamp = _load_entry(path)
            if json.loads(cached_stamp) == stamp:
                return ClipOutcome(job.clip_id, int(frames.shape[0]), "", "", True), ""
        except FileNotFoundError:
            pass
        except (DamagedCacheEntry, ValueError) as error:
            problem = error.problem if isinstance(error, DamagedCacheEntry) else f"unreadable stamp ({error})"
            quarantine(path, identity, problem)
            repaired.append(f"damaged segment cache entry {path}: {problem} (moved aside to {path.name}.bad)")
    return None, "; ".join(repaired)


def process_clip(job: ClipJob, cache_dir: Path, frame_size: int, sample_rate: int) -> ClipOutcome:
    """Extract one clip into the cache (or reuse the cache; a damaged entry is moved aside and rebuilt, and
    said in `repaired`). Runs in a worker process."""
    stamp = _stamp(job.path)
    cached, repaired = _cached_outcome(job, cache_dir, stamp)
    if cached is not None:
        return cached
    outcome = _extract(job, cache_dir, frame_size, sample_rate, stamp)
    return ClipOutcome(outcome.clip_id, outcome.segments, outcome.reason, outcome.detail, False, repaired)


def _extract(job: ClipJob, cache_dir: Path, frame_size: int, sample_rate: int, stamp: dict) -> ClipOutcome:
    from pipelines.media.extract import ClipError, extract_clip
    from pipelines.media.logmel import log_mel

    try:
        media = extract_clip(job.path, frame_size=frame_size, sample_rate=sample_rate)
    except ClipError as error:
        write_json_atomic(
            _skip_file(cache_dir, job.clip_id),
            {"reason": error.reason, "detail": error.detail, "stamp": stamp},
        )
        return ClipOutcome(job.clip_id, 0, error.reason, error.detail, False)
    mels = log_mel(media.audio, sample_rate=sample_rate).astype(np.float16)
    if not np.isfinite(mels).all():
        reason, detail = "unreadable", "the log-mel spectrogram has NaN or inf values"
        write_json_atomic(
            _skip_file(cache_dir, job.clip_id), {"reason": reason, "detail": detail, "stamp": stamp}
        )
        return ClipOutcome(job.clip_id, 0, reason, detail, False)
    with atomic_open(cache_file(cache_dir, job.clip_id)) as stream:
        np.savez(stream, frames=media.frames, mels=mels, stamp=np.array(json.dumps(stamp)))
    _skip_file(cache_dir, job.clip_id).unlink(missing_ok=True)
    return ClipOutcome(job.clip_id, int(media.frames.shape[0]), "", "", False)


def _init_worker() -> None:
    # One worker per core: keep torch and ffmpeg from each spawning a thread per core as well.
    import torch

    torch.set_num_threads(1)


def extract_segments(
    jobs: Sequence[ClipJob],
    cache_dir: Path,
    *,
    workers: int,
    frame_size: int = 96,
    sample_rate: int = 16000,
    log: Callable[[str], object] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Extract every clip (cached). Returns (segments table, skipped-clips table, counts)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(cache_dir)
    progress = Progress(len(jobs), "extracting segments", log=log, unit="clips")
    outcomes: dict[str, ClipOutcome] = {}
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            outcomes[job.clip_id] = process_clip(job, cache_dir, frame_size, sample_rate)
            progress.advance()
    else:
        # spawn, not fork: the parent may hold threads (Dagster, torch) that a fork would copy mid-flight.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = {
                pool.submit(process_clip, job, cache_dir, frame_size, sample_rate): job for job in jobs
            }
            for future in as_completed(futures):
                outcome = future.result()
                outcomes[outcome.clip_id] = outcome
                progress.advance()
    for outcome in outcomes.values():
        if outcome.repaired:
            (log or logger.warning)(f"{outcome.repaired}; rebuilt it")

    segment_rows, skipped_rows = [], []
    for job in jobs:
        outcome = outcomes[job.clip_id]
        if outcome.segments:
            segment_rows.extend((job.clip_id, job.class_name, k, job.source) for k in range(outcome.segments))
        else:
            skipped_rows.append((job.clip_id, job.class_name, job.source, outcome.reason, outcome.detail))
    segments = pd.DataFrame(segment_rows, columns=SEGMENT_COLUMNS).astype({"segment": "int32"})
    skipped = pd.DataFrame(skipped_rows, columns=SKIPPED_COLUMNS)
    counts = {
        "clips": len(jobs),
        "clips_used": len(jobs) - len(skipped_rows),
        "clips_skipped": len(skipped_rows),
        "clips_from_cache": sum(o.cached for o in outcomes.values()),
        "cache_entries_rebuilt": sum(bool(o.repaired) for o in outcomes.values()),
        "segments": len(segments),
    }
    return segments, skipped, counts


def iter_segments(
    table: pd.DataFrame,
    cache_dir: Path,
    rebuild: Callable[[str], object] | None = None,
    log: Callable[[str], object] | None = None,
):
    """Yield (row, frame, mel) for the rows of `table` (`clip_id`, `segment`, ...) in its order.

    Reads each clip's cache once per run of consecutive rows of that clip: keep a clip's rows together. A
    damaged entry is moved aside; with `rebuild` (clip_id -> writes its entry again) a damaged or missing one
    is rebuilt and read again, without it DamagedCacheEntry / FileNotFoundError say which file.
    """
    current_id, frames, mels = None, None, None
    for row in table.itertuples(index=False):
        if row.clip_id != current_id:
            current_id = row.clip_id
            try:
                frames, mels = read_cached(cache_dir, current_id)
            except (DamagedCacheEntry, FileNotFoundError) as error:
                if rebuild is None:
                    raise
                (log or logger.warning)(f"{error}; rebuilding it")
                rebuild(current_id)
                frames, mels = read_cached(cache_dir, current_id)
        if not 0 <= row.segment < len(frames):
            raise DamagedCacheEntry(
                cache_file(cache_dir, current_id), f"no segment {row.segment} (it holds {len(frames)})"
            )
        yield row, frames[row.segment], mels[row.segment]
