"""One writer per artifact, temps of live writers kept, shard sets swapped whole, damaged caches rebuilt (#13).

The lock holders here are other processes (a flock taken by this process would not exclude itself); the real
kills of a materialization are in tests/test_kills.py.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from pipelines.data import filesets, locks
from pipelines.data.artifact_manifest import (
    MANIFEST_NAME,
    read_manifest,
    reusable_manifest,
    write_manifest,
)
from pipelines.data.files import remove_stale_temps, temp_owner, temp_prefix
from pipelines.data.segments import (
    ClipJob,
    DamagedCacheEntry,
    cache_file,
    extract_segments,
    iter_segments,
    read_cached,
)
from pipelines.data.shards import current_shards, load_split, shard_paths
from pipelines.definitions import all_assets, all_checks
from tests.conftest import make_resources

REPO = Path(__file__).resolve().parents[1]

# Holds `argv[1]`'s writer lock as Dagster run `argv[2]` until its stdin closes (or it is killed).
HOLDER = """
import sys
from pathlib import Path
from pipelines.data import locks
lock = locks.try_lock(Path(sys.argv[1]), run_id=sys.argv[2])
print("held" if lock else "busy", flush=True)
sys.stdin.read()
"""


def hold_lock(folder: Path, run_id: str = "run-one") -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), run_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def let_go(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    holder.wait(timeout=30)


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])  # noqa: S607
    gone.wait()
    return gone.pid


# ---- the writer lock -----------------------------------------------------------------------------------------


def test_a_second_writer_fails_at_once_naming_the_first(tmp_path):
    folder = tmp_path / "gan_512"
    holder = hold_lock(folder, "5f2c-first-run")
    try:
        started = time.monotonic()
        with pytest.raises(locks.ArtifactBusy) as busy:
            locks.acquire(folder, run_id="second-run")
        assert time.monotonic() - started < 2
        message = str(busy.value)
        assert message.startswith("gan_512 is being written by run 5f2c-first-run since 20")
        assert f"pid {holder.pid} on {socket.gethostname()}" in message and "S2I_LOCK_WAIT_S" in message
        assert busy.value.holder["run_id"] == "5f2c-first-run"
    finally:
        holder.kill()  # SIGKILL: the kernel drops the flock with the process, nothing to clean up
        holder.wait()
    lock = locks.acquire(folder, run_id="second-run")
    assert lock.held and locks.read_holder(folder)["run_id"] == "second-run"
    lock.release()
    assert (folder / ".lock").exists()  # never deleted: deleting it would let two writers lock two files


def test_a_waiting_writer_gets_the_lock_when_the_first_ends(tmp_path):
    import threading

    folder = tmp_path / "segments"
    holder = hold_lock(folder, "first")
    ending = threading.Timer(0.5, let_go, args=(holder,))  # the first run finishes half a second later
    lines = []
    started = time.monotonic()
    ending.start()
    try:
        lock = locks.acquire(folder, run_id="two", wait_s=30, poll_s=0.05, log=lines.append)
    finally:
        ending.join()
    assert lock.held and time.monotonic() - started >= 0.4
    assert "waiting for the writer lock: segments is being written by run first" in lines[0]
    assert lines[-1].startswith("segments: writer lock taken after waiting")
    lock.release()


def test_waiting_logs_the_holder_then_gives_up(tmp_path):
    folder = tmp_path / "shards"
    holder = hold_lock(folder, "long-run")
    lines = []
    try:
        with pytest.raises(locks.ArtifactBusy, match=r"shards is being written by run long-run .*waited 1 s"):
            locks.acquire(folder, wait_s=1.2, poll_s=0.1, log=lines.append)
    finally:
        let_go(holder)
    assert lines and "waiting for the writer lock: shards is being written by run long-run" in lines[0]


def test_a_forked_child_does_not_keep_the_lock(tmp_path):
    folder = tmp_path / "gan_128"
    lock = locks.try_lock(folder, run_id="parent")
    child = os.fork()
    if child == 0:  # a DataLoader worker or pool process that outlives its parent's step
        time.sleep(5)
        os._exit(0)
    try:
        lock.release()
        other = hold_lock(folder, "next-run")  # another process takes it although the child still runs
        let_go(other)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_lock_wait_setting(monkeypatch):
    monkeypatch.delenv(locks.WAIT_ENV, raising=False)
    assert locks.wait_seconds_from_env() == 0
    monkeypatch.setenv(locks.WAIT_ENV, "90")
    assert locks.wait_seconds_from_env() == 90
    monkeypatch.setenv(locks.WAIT_ENV, "soon")
    with pytest.raises(ValueError, match="S2I_LOCK_WAIT_S='soon'"):
        locks.wait_seconds_from_env()


# ---- temps: only dead writers' -------------------------------------------------------------------------------


def test_temp_names_carry_their_writer():
    prefix = temp_prefix("train-000000.tar")
    assert temp_owner(prefix + "ab_c12") == (os.getpid(), socket.gethostname())
    assert temp_owner(".tmp-a.b.c.npz.42@node-1.example.org.x9") == (42, "node-1.example.org")
    assert temp_owner(".tmp-old-style.npz.abc123") is None


@pytest.mark.parametrize("module", ["pipelines", "s2i_models"])
def test_cleanup_removes_only_dead_writers_temps(tmp_path, module):
    if module == "pipelines":
        clean = remove_stale_temps
    else:
        from s2i_models.checkpoint import remove_stale_temps as clean
    here = socket.gethostname()
    live = subprocess.Popen(["sleep", "30"])  # noqa: S607  (another run, still writing)
    old = time.time() - 7 * 3600
    names = {
        f".tmp-resume.pt.{dead_pid()}@{here}.k1": False,  # a killed writer on this host: removed
        f".tmp-resume.pt.{live.pid}@{here}.k2": True,  # a live writer on this host: kept
        f".tmp-resume.pt.{os.getpid()}@{here}.k3": True,  # this process's own: kept
        ".tmp-resume.pt.77@another-node.k4": True,  # another host, recent: kept (its owner may live)
        ".tmp-resume.pt.78@another-node.k5": False,  # another host, 7 h untouched: removed
        ".tmp-resume.pt.abc": True,  # no owner in the name, recent: kept
        ".tmp-resume.pt.abd": False,  # no owner in the name, 7 h untouched: removed
    }
    try:
        for name in names:
            (tmp_path / name).write_bytes(b"partial")
        for name in (".tmp-resume.pt.78@another-node.k5", ".tmp-resume.pt.abd"):
            os.utime(tmp_path / name, (old, old))
        assert clean(tmp_path) == 3
        assert {p.name for p in tmp_path.iterdir()} == {name for name, kept in names.items() if kept}
    finally:
        live.kill()
        live.wait()


WRITER = """
import sys
from pathlib import Path
from pipelines.data.files import atomic_output
with atomic_output(Path(sys.argv[1])) as temp:
    temp.write_bytes(b"first run's work in progress")
    print(temp, flush=True)
    sys.stdin.read()
"""


def test_a_second_run_keeps_the_first_runs_work_in_progress(tmp_path):
    """The bug of #13: a second run's cleanup deleted the temp a live first run was about to rename."""
    target = tmp_path / "cache" / "dog-video_00000.npz"
    first = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    temp = Path(first.stdout.readline().strip())
    assert temp.is_file()
    extract_segments([], tmp_path / "cache", workers=1)  # the second run starts and cleans up
    assert temp.is_file()
    first.stdin.close()
    assert first.wait(timeout=30) == 0
    assert target.read_bytes() == b"first run's work in progress"


# ---- manifests and listed files ------------------------------------------------------------------------------


def test_a_damaged_manifest_is_logged_moved_aside_and_recomputed(tmp_path, caplog):
    (tmp_path / "table.parquet").write_bytes(b"rows")
    write_manifest(tmp_path, "abc", settings={}, inputs={}, files=[tmp_path / "table.parquet"])
    (tmp_path / MANIFEST_NAME).write_text('{"fingerprint": "abc", "files": {"tab')  # torn write on a bad disk
    messages = []
    assert read_manifest(tmp_path, log=messages.append) is None  # a reader: ignored, logged, left in place
    assert str(tmp_path / MANIFEST_NAME) in messages[0] and (tmp_path / MANIFEST_NAME).exists()
    assert reusable_manifest(tmp_path, "abc", log=messages.append, repair=True) is None  # its writer
    assert (tmp_path / "manifest.json.bad").exists() and not (tmp_path / MANIFEST_NAME).exists()
    assert "moved aside to manifest.json.bad" in messages[-1]
    for broken in ("[1, 2]", '{"files": {}}', '{"fingerprint": "abc", "files": {"a": 1}}'):
        (tmp_path / MANIFEST_NAME).write_text(broken)
        assert read_manifest(tmp_path, log=messages.append) is None


def test_a_listed_file_is_checked_against_its_size_and_checksum(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"0123456789")
    write_manifest(tmp_path, "abc", settings={}, inputs={}, files=[path])
    assert reusable_manifest(tmp_path, "abc") is not None
    stamp = path.stat()
    path.write_bytes(b"0123456789" * 2)  # truncated or grown: its size says so
    assert reusable_manifest(tmp_path, "abc") is None
    path.write_bytes(b"0123456780")  # same size, other bytes, new mtime: the checksum says so
    messages = []
    assert reusable_manifest(tmp_path, "abc", log=messages.append, repair=True) is None
    assert (tmp_path / "weights.pt.bad").exists() and "checksum" in messages[0]
    path.write_bytes(b"0123456789")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert reusable_manifest(tmp_path, "abc") is not None  # as written: not even read


# ---- shard sets ------------------------------------------------------------------------------------------------


def make_set(folder: Path, name: str, content: bytes) -> Path:
    set_dir = filesets.new_set(folder, name)
    (set_dir / "train-000000.tar").write_bytes(content)
    fields = filesets.manifest_fields(folder, set_dir)
    files = [set_dir / "train-000000.tar"]
    write_manifest(folder, name, settings={}, inputs={}, files=files, splits={}, **fields)
    filesets.link_current(folder, set_dir, files, "*.tar")
    filesets.prune_sets(folder)
    return set_dir


def test_file_sets_switch_whole_and_keep_what_readers_hold(tmp_path):
    first = make_set(tmp_path, "a", b"first")
    with filesets.reading_set(tmp_path) as held:  # a long training run streaming the first set
        assert held == first
        second = make_set(tmp_path, "b", b"second")
        assert (
            current_shards(tmp_path).folder == second
            and (tmp_path / "train-000000.tar").read_bytes() == b"second"
        )
        third = make_set(tmp_path, "c", b"third")
        assert first.is_dir() and second.is_dir()  # held by the reader / the previous set
        assert shard_paths(tmp_path, "train") == [third / "train-000000.tar"]
    make_set(tmp_path, "d", b"fourth")
    assert not first.exists() and not second.exists() and third.is_dir()  # only current and previous stay
    assert sorted(p.name for p in (tmp_path / "sets").iterdir()) == ["c", "d"]
    assert os.readlink(tmp_path / "train-000000.tar") == "sets/d/train-000000.tar"


def test_a_killed_writers_half_set_is_pruned_by_the_next(tmp_path):
    make_set(tmp_path, "a", b"first")
    half = filesets.new_set(tmp_path, "b")  # killed before its manifest: never current
    (half / "train-000000.tar").write_bytes(b"half")
    again = make_set(tmp_path, "b", b"second")
    assert again.name == "b" and (again / "train-000000.tar").read_bytes() == b"second"


# ---- segment caches ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_jobs(tmp_path_factory):
    from pipelines.data.demo import generate_demo
    from pipelines.data.vegas import scan_local

    root = tmp_path_factory.mktemp("clips")
    generate_demo(root, ["dog"], clips_per_class=2, seed=3)
    jobs = [ClipJob(r.clip_id, r.class_name, r.path, r.source) for r in scan_local(root, ["dog"])]
    bad = root / "dog" / "videos" / "video_99999.mp4"
    bad.write_bytes(b"")  # a clip that yields nothing: its outcome is cached as a .skip.json
    return [*jobs, ClipJob("dog-video_99999", "dog", str(bad), "dog/videos/video_99999.mp4")]


@pytest.mark.parametrize(
    "damage",
    [
        "truncated npz",  # a zip cut short (BadZipFile: crashed the asset before #13)
        "flipped npz bytes",  # a CRC mismatch inside a member
        "wrong npz arrays",  # a valid npz of something else
        "garbled skip.json",
    ],
)
def test_a_damaged_cache_entry_is_moved_aside_and_rebuilt(clip_jobs, tmp_path, damage):
    cache = tmp_path / "cache"
    table, skipped, _ = extract_segments(clip_jobs, cache, workers=1)
    assert list(skipped.reason) == ["empty file"]
    good, skip = cache_file(cache, clip_jobs[0].clip_id), cache / "dog-video_99999.skip.json"
    reference, reference_skip = good.read_bytes(), skip.read_text()
    if damage == "truncated npz":
        damaged = good
        good.write_bytes(reference[: len(reference) // 2])
    elif damage == "flipped npz bytes":
        damaged = good
        data = bytearray(reference)
        data[len(data) // 2] ^= 0xFF
        good.write_bytes(bytes(data))
    elif damage == "wrong npz arrays":
        damaged = good
        np.savez(
            good, frames=np.zeros((2, 4, 4)), mels=np.zeros((2, 100, 128), np.float16), stamp=np.array("{}")
        )
    else:
        damaged = skip
        skip.write_text('{"reason": "empty fi')
    messages = []
    table_again, skipped_again, counts = extract_segments(clip_jobs, cache, workers=1, log=messages.append)
    assert counts["cache_entries_rebuilt"] == 1 and counts["clips_from_cache"] == len(clip_jobs) - 1
    assert any(str(damaged) in m and "moved aside" in m for m in messages), messages
    assert damaged.with_name(damaged.name + ".bad").exists()
    assert good.read_bytes() == reference and skip.read_text() == reference_skip  # rebuilt identically
    pd.testing.assert_frame_equal(table_again, table)
    pd.testing.assert_frame_equal(skipped_again, skipped)


def test_a_reader_rebuilds_a_damaged_entry_or_says_which_file(clip_jobs, tmp_path):
    cache = tmp_path / "cache"
    jobs = clip_jobs[:2]
    table, _, _ = extract_segments(jobs, cache, workers=1)
    path = cache_file(cache, jobs[1].clip_id)
    reference = path.read_bytes()
    path.write_bytes(reference[:100])
    with pytest.raises(DamagedCacheEntry, match=rf"{path}.*moved aside to {path.name}\.bad"):
        read_cached(cache, jobs[1].clip_id)
    rebuilt = []

    def rebuild(clip_id):
        rebuilt.append(clip_id)
        extract_segments([j for j in jobs if j.clip_id == clip_id], cache, workers=1)

    rows = list(iter_segments(table, cache, rebuild))
    assert rebuilt == [jobs[1].clip_id] and len(rows) == len(table) and path.read_bytes() == reference
    path.unlink()
    with pytest.raises(FileNotFoundError):
        list(iter_segments(table, cache))


# ---- through Dagster -----------------------------------------------------------------------------------------


@pytest.fixture
def chain_copy(trained, tmp_path):
    """A copy of the session's tiny chain (other modules share the original)."""
    profile, data, _ = trained
    copy = tmp_path / "data"
    shutil.copytree(
        data, copy, symlinks=True, ignore=shutil.ignore_patterns("gan_*", "informativity_*", "s2i_*")
    )
    return profile, copy


def run(profile: Path, data: Path, selection: list[str]):
    return materialize(
        [*all_assets, *all_checks],
        resources=make_resources(profile, data),
        selection=selection,
        raise_on_error=False,
    )


def reused(result, key: str) -> bool:
    events = result.asset_materializations_for_node(key)
    return bool(events[-1].metadata["reused"].value)


def failure_text(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.to_string()


def shard_bytes(data: Path) -> dict[str, bytes]:
    found = current_shards(data / "shards")
    return {p.name: p.read_bytes() for split in ("train", "val", "test") for p in found.paths(split)}


def test_an_asset_being_written_elsewhere_fails_at_once_or_is_reused(chain_copy):
    profile, data = chain_copy
    holder = hold_lock(data / "shards", "0a1b-other-run")
    try:
        result = run(profile, data, ["shards"])  # its output matches: reused even while another run writes
        assert result.success and reused(result, "shards")
        (
            data / "shards" / MANIFEST_NAME
        ).unlink()  # now it has to be written: fails at once, naming the writer
        started = time.monotonic()
        result = run(profile, data, ["shards"])
        assert not result.success and time.monotonic() - started < 30
        message = failure_text(result)
        assert "shards is being written by run 0a1b-other-run since" in message, message
    finally:
        let_go(holder)
    assert run(profile, data, ["shards"]).success


def test_a_failed_step_gives_its_lock_back(chain_copy, monkeypatch):
    """A step process (multiprocess, k8s) frees its lock by ending. A step that fails inside a process that
    lives on (`dagster.materialize` here, a notebook) frees it when its context is collected, or when the
    process's next step starts."""
    import gc

    profile, data = chain_copy
    (data / "shards" / MANIFEST_NAME).unlink()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pipelines.data.shards.write_shard", broken)
    assert not run(profile, data, ["shards"]).success
    monkeypatch.undo()
    gc.collect()
    assert locks.held_lock(data / "shards") is None
    other = hold_lock(data / "shards", "next")  # another process can write shards now
    let_go(other)
    assert run(profile, data, ["shards"]).success  # the half set is pruned and written again
    # No manifest named a set before this run, so only the new one remains.
    assert list((data / "shards" / "sets").iterdir()) == [current_shards(data / "shards").folder]


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, other bytes, a new mtime


def test_a_damaged_manifest_or_output_is_rebuilt_by_its_asset(chain_copy):
    profile, data = chain_copy
    segments_fingerprint = read_manifest(data / "segments").fingerprint
    (data / "segments" / MANIFEST_NAME).write_text("{not json")  # segments' manifest garbled
    flip_byte(data / "splits" / "splits.parquet", -100)  # an output listed in splits' manifest

    # `shards` alone cannot run on a damaged upstream: it says which and what to do.
    result = run(profile, data, ["shards"])
    assert not result.success and "`segments`'s manifest is damaged" in failure_text(result)

    result = run(profile, data, ["segments", "splits", "shards"])
    assert result.success
    assert not reused(result, "segments") and not reused(result, "splits") and reused(result, "shards")
    assert (data / "segments" / "manifest.json.bad").exists()
    assert (data / "splits" / "splits.parquet.bad").exists()
    assert read_manifest(data / "segments").fingerprint == segments_fingerprint  # rebuilt from its cache


def test_segments_rebuilds_the_cache_entries_that_readers_set_aside(chain_copy):
    profile, data = chain_copy
    cache_dir = data / "segments" / read_manifest(data / "segments").data["cache_dir"]
    npz = sorted(cache_dir.glob("*.npz"))[5]
    reference = npz.read_bytes()
    npz.rename(npz.with_name(npz.name + ".bad"))  # what a check or reader does with a damaged entry
    result = run(profile, data, ["segments", "splits", "shards"])
    assert result.success and not reused(result, "segments") and reused(result, "shards")
    assert npz.read_bytes() == reference
    assert read_manifest(data / "segments").data["metadata"]["clips_from_cache"] == 29


def test_a_damaged_segment_cache_entry_is_rebuilt_by_the_shards_that_read_it(chain_copy):
    profile, data = chain_copy
    reference = shard_bytes(data)
    cache_dir = data / "segments" / read_manifest(data / "segments").data["cache_dir"]
    npz = sorted(cache_dir.glob("*.npz"))[3]
    npz.write_bytes(npz.read_bytes()[:1000])  # a segment cache entry cut short
    previous = current_shards(data / "shards").folder
    flip_byte(previous / "train-000001.tar", 5000)  # a shard of the current set damaged: written again

    result = run(profile, data, ["shards"])
    assert result.success and not reused(result, "shards")
    assert npz.with_name(npz.name + ".bad").exists() and read_cached(cache_dir, npz.stem)[0].shape[0] > 0
    assert shard_bytes(data) == reference  # the rebuilt entry gives the same samples, byte for byte
    current = current_shards(data / "shards").folder
    assert current == previous.with_name(previous.name + ".1")  # the new set, written beside the old one
    assert (previous / "train-000001.tar.bad").exists()  # the old set stays one round, its bad shard aside
    assert load_split(shard_paths(data / "shards", "train")).frames.shape == (50, 96, 96, 3)
    assert json.loads((data / "shards" / ".lock").read_text())["asset"] == "shards"
