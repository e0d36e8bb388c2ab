"""Per-clip extraction cache: resume after an interruption, never trust partial files."""

import os
import socket
import subprocess

import numpy as np
import pytest

from pipelines.data.demo import generate_demo
from pipelines.data.segments import ClipJob, cache_file, extract_segments, read_cached
from pipelines.data.vegas import scan_local


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    generate_demo(root, ["dog", "water_flowing"], clips_per_class=3, seed=5)
    return [
        ClipJob(r.clip_id, r.class_name, r.path, r.source) for r in scan_local(root, ["dog", "water_flowing"])
    ]


def test_interrupted_run_resumes(jobs, tmp_path):
    cache = tmp_path / "cache"
    _, _, first = extract_segments(jobs[:2], cache, workers=1)  # a run killed after two clips
    assert first["clips_from_cache"] == 0
    # What a kill mid-write leaves: a temp named after its writer, a process that is gone.
    gone = subprocess.Popen(["true"])  # noqa: S607
    gone.wait()
    (cache / f".tmp-half-written.npz.{gone.pid}@{socket.gethostname()}.abc").write_bytes(b"partial")
    segments, skipped, counts = extract_segments(jobs, cache, workers=2)
    assert counts["clips_from_cache"] == 2 and counts["clips"] == 6 and skipped.empty
    assert not list(cache.glob(".tmp-*"))
    frames, mels = read_cached(cache, jobs[0].clip_id)
    assert frames.shape[1:] == (96, 96, 3) and mels.shape[1:] == (100, 128) and mels.dtype == np.float16
    assert len(segments) == sum(read_cached(cache, j.clip_id)[0].shape[0] for j in jobs)

    _, _, again = extract_segments(jobs, cache, workers=1)
    assert again["clips_from_cache"] == 6


def test_damaged_or_changed_cache_entries_are_redone(jobs, tmp_path):
    cache = tmp_path / "cache"
    extract_segments(jobs[:2], cache, workers=1)
    reference = read_cached(cache, jobs[0].clip_id)[1].copy()
    cache_file(cache, jobs[0].clip_id).write_bytes(b"not an npz")  # damaged entry
    stat = os.stat(jobs[1].path)
    os.utime(jobs[1].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the source file changed
    _, _, counts = extract_segments(jobs[:2], cache, workers=1)
    assert counts["clips_from_cache"] == 0
    np.testing.assert_array_equal(read_cached(cache, jobs[0].clip_id)[1], reference)


def test_skipped_clips_are_cached_with_their_reason(tmp_path):
    bad = tmp_path / "dog" / "videos" / "video_00000.mp4"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"")
    job = ClipJob("dog-video_00000", "dog", str(bad), "dog/videos/video_00000.mp4")
    _, skipped, counts = extract_segments([job], tmp_path / "cache", workers=1)
    assert list(skipped.reason) == ["empty file"] and counts["clips_skipped"] == 1
    _, skipped, counts = extract_segments([job], tmp_path / "cache", workers=1)
    assert list(skipped.reason) == ["empty file"] and counts["clips_from_cache"] == 1
