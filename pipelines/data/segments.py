"""One-second segments of every clip: extraction fanned out over processes, cached per clip.

Each clip's frames and log-mels go to `<cache_dir>/<clip_id>.npz` (or `<clip_id>.skip.json` with the reason
it yields nothing). A cache entry records the source file's size and mtime; a run interrupted at clip
9,000 of 14,000 resumes there, and a re-run with the same settings recomputes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.files import atomic_open, remove_stale_temps, write_json_atomic
from pipelines.data.progress import Progress

SEGMENT_COLUMNS = ["clip_id", "class_name", "segment", "source"]
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


def read_cached(cache_dir: Path, clip_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(frames (K, 96, 96, 3) uint8, mels (K, 100, 128) float16) of one clip."""
    with np.load(cache_file(cache_dir, clip_id), allow_pickle=False) as data:
        return data["frames"], data["mels"]


def _cached_outcome(job: ClipJob, cache_dir: Path, stamp: dict) -> ClipOutcome | None:
    skip = _skip_file(cache_dir, job.clip_id)
    if skip.is_file():
        record = json.loads(skip.read_text())
        if record.get("stamp") == stamp:
            return ClipOutcome(job.clip_id, 0, record["reason"], record.get("detail", ""), True)
    path = cache_file(cache_dir, job.clip_id)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                if json.loads(str(data["stamp"])) == stamp:
                    return ClipOutcome(job.clip_id, int(data["frames"].shape[0]), "", "", True)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache entry: recompute it
    return None


def process_clip(job: ClipJob, cache_dir: Path, frame_size: int, sample_rate: int) -> ClipOutcome:
    """Extract one clip into the cache (or reuse the cache). Runs in a worker process."""
    from pipelines.media.extract import ClipError, extract_clip
    from pipelines.media.logmel import log_mel

    stamp = _stamp(job.path)
    cached = _cached_outcome(job, cache_dir, stamp)
    if cached is not None:
        return cached
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
        "segments": len(segments),
    }
    return segments, skipped, counts


def iter_segments(table: pd.DataFrame, cache_dir: Path):
    """Yield (row, frame, mel) for the rows of `table` (`clip_id`, `segment`, ...) in its order.

    Reads each clip's cache once per run of consecutive rows of that clip: keep a clip's rows together.
    """
    current_id, frames, mels = None, None, None
    for row in table.itertuples(index=False):
        if row.clip_id != current_id:
            current_id = row.clip_id
            frames, mels = read_cached(cache_dir, current_id)
        yield row, frames[row.segment], mels[row.segment]
