"""The authors' released batches (s2i_data): readers, validation of a clone, caches, and the data chain."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, materialize

from pipelines.data.s2i_data import (
    S2IDataError,
    authors_splits,
    clip_id_of,
    fill_segment_caches,
    mel_from_spectrogram,
    parse_labels,
    read_audio_batch,
    read_embedding_batch,
    read_spectrogram_image_batch,
    scan_s2i_data,
    segment_table,
    uint8_stats,
)
from pipelines.data.segments import read_cached
from pipelines.data.shards import load_split
from pipelines.data.stats import scale_mel
from pipelines.definitions import all_assets, all_checks
from tests.conftest import make_resources

# Written here from the documented format, independently of the reader under test.
AV_FOLDER = "batches/audio_visual/spectrograms_to_images"
PREFIX = {"train": "data", "val": "val", "test": "test"}
CLASS_IDS = {1: "baby_cry", 2: "dog", 3: "rail_transport", 4: "fireworks", 5: "water_flowing"}
CHAIN = ["vegas_clips", "segments", "splits", "spectrogram_stats", "shards"]


@dataclass(frozen=True)
class Segment:
    class_id: int
    video_id: int
    window: int
    split: str
    spectrogram: np.ndarray  # (128, 100) uint8, mel x time
    image: np.ndarray  # (96, 96, 3) uint8

    @property
    def label(self) -> bytes:
        return f"{self.class_id:03d}{self.video_id:05d}{self.window:03d}".encode()

    @property
    def key(self) -> tuple[str, int]:
        return clip_id_of(self.class_id, self.video_id), self.window


def make_segments(seed: int = 0) -> list[Segment]:
    """Per class: train videos with windows [0, 1, 2] and [3, 5] (a gap), val [0, 1], test [2, 4]; the dog's
    first video also has window 9 in test (a video in two splits, as a published split may have)."""
    rng = np.random.default_rng(seed)
    plan = {"train": [(10, [0, 1, 2]), (20, [3, 5])], "val": [(30, [0, 1])], "test": [(40, [2, 4])]}
    segments = []
    for class_id in CLASS_IDS:
        for split, videos in plan.items():
            extra = [(10, [9])] if split == "test" and class_id == 2 else []
            for video, windows in videos + extra:
                for window in windows:
                    spectrogram = rng.integers(0, 256, (128, 100), dtype=np.uint8)
                    spectrogram[0, 0], spectrogram[127, 99] = 0, 255  # both ends of the 8-bit range
                    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
                    segments.append(
                        Segment(class_id, 100 * class_id + video, window, split, spectrogram, image)
                    )
    order = rng.permutation(len(segments))  # records of a video scattered over batches
    return [segments[i] for i in order]


def write_clone(root: Path, segments: list[Segment], per_batch: int = 4) -> dict[str, list[Path]]:
    """Batch files in the documented layout: label + spectrogram + image, no header, `per_batch` a file."""
    folder = root / AV_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for split, prefix in PREFIX.items():
        rows = [s for s in segments if s.split == split]
        for number, start in enumerate(range(0, len(rows), per_batch), start=1):
            path = folder / f"{prefix}_batch_{number:03d}.bin"
            chunk = rows[start : start + per_batch]
            path.write_bytes(b"".join(s.label + s.spectrogram.tobytes() + s.image.tobytes() for s in chunk))
            written.setdefault(split, []).append(path)
    return written


def lfs_pointer(path: Path) -> None:
    size = path.stat().st_size
    path.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{'ab' * 32}\nsize {size}\n")


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2i_data")
    segments = make_segments()
    return root, segments, write_clone(root, segments)


@pytest.fixture
def fresh_clone(tmp_path):
    segments = make_segments(1)
    return tmp_path / "clone", segments, write_clone(tmp_path / "clone", segments)


# ---- readers and the value mapping ---------------------------------------------------------------------------


def test_labels_parse_into_class_video_window():
    labels = parse_labels(np.array([b"00200417003", b"00199999009"], dtype="S11"))
    assert labels.class_ids.tolist() == [2, 1]
    assert labels.video_ids.tolist() == [417, 99999]
    assert labels.windows.tolist() == [3, 9]
    assert clip_id_of(2, 417) == "c002_s00417"


def test_spectrogram_image_batches_read_back_exactly(clone):
    root, segments, written = clone
    by_label = {s.label: s for s in segments}
    seen = 0
    for paths in written.values():
        for path in paths:
            batch = read_spectrogram_image_batch(path)
            assert batch.spectrograms.shape[1:] == (128, 100) and batch.images.shape[1:] == (96, 96, 3)
            for index in range(len(batch)):
                label = (
                    f"{batch.labels.class_ids[index]:03d}{batch.labels.video_ids[index]:05d}"
                    f"{batch.labels.windows[index]:03d}"
                ).encode()
                np.testing.assert_array_equal(batch.spectrograms[index], by_label[label].spectrogram)
                np.testing.assert_array_equal(batch.images[index], by_label[label].image)
                seen += 1
    assert seen == len(segments)


def test_audio_and_embedding_batches_read_back_exactly(tmp_path):
    rng = np.random.default_rng(3)
    spectrograms = rng.integers(0, 256, (3, 128, 100), dtype=np.uint8)
    audio = tmp_path / "data_batch_001.bin"
    audio.write_bytes(
        b"".join(bytes([c]) + s.tobytes() for c, s in zip([0, 4, 2], spectrograms, strict=True))
    )
    batch = read_audio_batch(audio)
    assert batch.class_indices.tolist() == [0, 4, 2]
    assert batch.class_names == ["baby_cry", "water_flowing", "rail_transport"]
    np.testing.assert_array_equal(batch.spectrograms, spectrograms)

    embeddings = rng.standard_normal((2, 128)).astype("<f4")
    images = rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8)
    path = tmp_path / "val_batch_001.bin"
    path.write_bytes(
        b"".join(
            label + e.tobytes() + i.tobytes()
            for label, e, i in zip([b"00500001007", b"00300123000"], embeddings, images, strict=True)
        )
    )
    batch = read_embedding_batch(path, 128)
    assert batch.labels.class_ids.tolist() == [5, 3] and batch.labels.windows.tolist() == [7, 0]
    np.testing.assert_array_equal(batch.embeddings, embeddings)
    np.testing.assert_array_equal(batch.images, images)


def test_mels_are_the_authors_bytes_transposed_and_scale_like_their_normalize(clone):
    _root, segments, _written = clone
    spectrogram = segments[0].spectrogram
    mel = mel_from_spectrogram(spectrogram)
    assert mel.shape == (100, 128) and mel.dtype == np.float16
    t, m = np.meshgrid(np.arange(100), np.arange(128), indexing="ij")
    np.testing.assert_array_equal(mel[t, m], spectrogram[m, t].astype(np.float16))
    np.testing.assert_array_equal(mel.astype(np.int32), spectrogram.T)  # float16 is exact for 0..255

    stats = uint8_stats(1)
    assert (stats["min"], stats["max"], stats["method"]) == (0.0, 255.0, "uint8")
    np.testing.assert_allclose(scale_mel(mel, stats), spectrogram.T / 255.0 * 2 - 1, atol=1e-6)


def test_training_inputs_equal_the_authors_totensor_normalize(clone):
    torch = pytest.importorskip("torch")
    from s2i_models.loaders import image_batch, spectrogram_batch

    _root, segments, _written = clone
    spectrograms = np.stack([s.spectrogram for s in segments[:4]])  # (4, 128, 100)
    images = np.stack([s.image for s in segments[:4]])  # (4, 96, 96, 3)

    def authors(pixels):  # torchvision ToTensor + Normalize((0.5,), (0.5,)), uint8 -> [-1, 1]
        return (torch.from_numpy(pixels).float().div(255) - 0.5) / 0.5

    ours = spectrogram_batch(torch.from_numpy(mel_from_spectrogram(spectrograms)), uint8_stats(1))
    assert ours.shape == (4, 1, 128, 100)
    torch.testing.assert_close(ours, authors(spectrograms).unsqueeze(1), rtol=0, atol=1.2e-7)
    ours_images = image_batch(torch.from_numpy(images))
    torch.testing.assert_close(ours_images, authors(images).permute(0, 3, 1, 2), rtol=0, atol=1.2e-7)


# ---- a clone's problems --------------------------------------------------------------------------------------


def test_scan_indexes_every_record_with_the_authors_split(clone):
    root, segments, written = clone
    scan = scan_s2i_data(root)
    assert len(scan.batches) == sum(len(p) for p in written.values()) and not scan.skipped
    assert len(scan.records) == len(segments)
    expected = {s.key: s.split for s in segments}
    assert {(r.clip_id, r.segment): r.split for r in scan.records.itertuples()} == expected
    assert scan.summary()["videos_in_several_splits"] == 1  # the dog's video 210
    assert scan.summary()["complete"] is False and "partial_clone" in scan.summary()

    only_dogs = scan_s2i_data(root, ["dog"])
    assert set(only_dogs.records.class_name) == {"dog"}
    assert only_dogs.other_class_records == len(segments) - len(only_dogs.records)


def test_missing_folder_names_the_layout_and_the_repository(tmp_path):
    with pytest.raises(S2IDataError) as error:
        scan_s2i_data(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "leofanzeres/s2i_data" in message
    assert "batches/audio_visual/spectrograms_to_images/{data,val,test}_batch_NNN.bin" in message
    with pytest.raises(S2IDataError, match="is not a folder"):
        scan_s2i_data(tmp_path / "nowhere")


def test_a_clone_without_lfs_pull_says_run_git_lfs_pull(fresh_clone):
    root, _segments, written = fresh_clone
    for path in (p for paths in written.values() for p in paths):
        lfs_pointer(path)
    with pytest.raises(S2IDataError) as error:
        scan_s2i_data(root)
    message = str(error.value)
    assert "no usable batch for train, val, test" in message
    assert (
        f"is a Git LFS pointer, not the data (the data is {4 * 40459:,} bytes): run `git lfs pull` in {root}"
        in message
    )
    with pytest.raises(S2IDataError, match="is a Git LFS pointer, not the data"):
        read_spectrogram_image_batch(written["train"][0])


def test_lfs_pointer_and_truncated_batches_among_good_ones_are_skipped_and_counted(fresh_clone):
    root, segments, written = fresh_clone
    lfs_pointer(written["train"][0])
    with open(written["val"][0], "ab") as stream:
        stream.write(b"\0" * 100)  # 4 records + 100 bytes
    scan = scan_s2i_data(root)
    reasons = {item.relative.rsplit("/", 1)[-1]: item for item in scan.skipped}
    assert {name: item.reason for name, item in reasons.items()} == {
        "data_batch_001.bin": "git_lfs_pointer",
        "val_batch_001.bin": "truncated",
    }
    truncated = reasons["val_batch_001.bin"].message
    assert f"{4 * 40459 + 100:,} bytes" in truncated and "40,459-byte records" in truncated
    assert "4 records and 100 bytes left over" in truncated and "re-fetch that file" in truncated
    assert len(scan.records) == len(segments) - 8
    summary = scan.summary()
    assert summary["skipped_by_reason"] == {"git_lfs_pointer": 1, "truncated": 1}
    assert "run `git lfs pull`" in summary["partial_clone"]
    with pytest.raises(S2IDataError, match="4 records and 100 bytes left over"):
        read_spectrogram_image_batch(written["val"][0])


def test_unknown_class_id_names_the_file_record_and_label(fresh_clone):
    root, _segments, written = fresh_clone
    path = written["val"][1]
    data = bytearray(path.read_bytes())
    data[40459 : 40459 + 11] = b"00600001000"  # record 1: class 006
    path.write_bytes(bytes(data))
    with pytest.raises(S2IDataError) as error:
        scan_s2i_data(root)
    message = str(error.value)
    assert str(path) in message and "record 1" in message and "b'00600001000'" in message
    assert "unknown class id 006" in message and "re-fetch" in message


def test_label_that_is_not_eleven_digits_is_an_error(fresh_clone):
    root, _segments, written = fresh_clone
    path = written["test"][0]
    data = bytearray(path.read_bytes())
    data[2 * 40459 : 2 * 40459 + 11] = b"002x0417003"
    path.write_bytes(bytes(data))
    with pytest.raises(S2IDataError, match=r"record 2 has label b'002x0417003', not 11 digits"):
        scan_s2i_data(root)


def test_a_split_with_no_batch_files_is_an_error(fresh_clone):
    root, _segments, written = fresh_clone
    for path in written["test"]:
        path.unlink()
    with pytest.raises(S2IDataError, match=r"no usable batch for test:\n  test: no test_batch_NNN.bin file"):
        scan_s2i_data(root)


def test_profile_classes_outside_the_release_are_an_error(clone):
    with pytest.raises(S2IDataError, match=r"the profile's classes \['cat'\] are not among them"):
        scan_s2i_data(clone[0], ["dog", "cat"])


# ---- per-clip caches -----------------------------------------------------------------------------------------


def test_caches_hold_every_window_and_are_reused(fresh_clone, tmp_path):
    root, segments, written = fresh_clone
    records = scan_s2i_data(root).records
    cache = tmp_path / "cache"
    first = fill_segment_caches(root, records, cache)
    assert first["clips_from_cache"] == 0 and first["segments"] == len(segments)
    for segment in segments:
        clip_id, window = segment.key
        frames, mels = read_cached(cache, clip_id)
        np.testing.assert_array_equal(frames[window], segment.image)
        np.testing.assert_array_equal(mels[window], segment.spectrogram.T.astype(np.float16))
    frames, mels = read_cached(cache, clip_id_of(1, 120))  # windows 3 and 5: 0-2 and 4 are zeros
    assert frames.shape == (6, 96, 96, 3) and mels.shape == (6, 100, 128)
    assert not frames[[0, 1, 2, 4]].any() and not mels[[0, 1, 2, 4]].any()
    table = segment_table(records)
    assert sorted(table[table.clip_id == clip_id_of(1, 120)].segment) == [3, 5]  # no zero-filled rows

    assert fill_segment_caches(root, records, cache)["clips_from_cache"] == first["clips"]
    stat = os.stat(written["val"][0])
    os.utime(written["val"][0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(S2IDataError, match="changed since `vegas_clips` indexed it"):
        fill_segment_caches(root, records, cache)
    again = fill_segment_caches(root, scan_s2i_data(root).records, cache)
    assert 0 < again["clips_from_cache"] < again["clips"]  # only the clips of that file are redone


def test_authors_splits_keep_every_segment_where_it_was(clone):
    root, segments, _written = clone
    table = authors_splits(segment_table(scan_s2i_data(root).records))
    assert list(table.columns) == ["clip_id", "class_name", "segment", "split"]
    assert {(r.clip_id, r.segment): r.split for r in table.itertuples()} == {s.key: s.split for s in segments}
    assert list(pd.unique(table.split)) == ["train", "val", "test"]


# ---- through Dagster ---------------------------------------------------------------------------------------


def write_profile(folder: Path, root: Path) -> Path:
    path = folder / "s2i.yaml"
    path.write_text(
        f"base: vegas\nsource: {{kind: s2i_data, root: {root}}}\nworkers: 1\nshards: {{samples_per_shard: 8}}\n"
    )
    return path


def metadata_of(result, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    assert events, f"{key} was not materialized"
    return {name: value.value for name, value in events[-1].metadata.items()}


@pytest.fixture(scope="module")
def chain(clone, tmp_path_factory):
    root, _segments, _written = clone
    folder = tmp_path_factory.mktemp("s2i_chain")
    profile, data_dir = write_profile(folder, root), folder / "data"
    result = materialize(
        [*all_assets, *all_checks], resources=make_resources(profile, data_dir), selection=CHAIN
    )
    return profile, data_dir, result


def test_chain_gives_the_authors_bytes_and_split_in_shards(clone, chain):
    _root, segments, _written = clone
    _profile, data_dir, result = chain
    assert result.success
    by_key = {s.key: s for s in segments}
    seen = set()
    for split in ("train", "val", "test"):
        loaded = load_split(sorted((data_dir / "shards").glob(f"{split}-*.tar")))
        for index, meta in enumerate(loaded.meta):
            segment = by_key[(meta["clip_id"], meta["segment"])]
            assert meta["split"] == split == segment.split
            assert meta["source"].startswith("s2i_data:batches/audio_visual/spectrograms_to_images/")
            np.testing.assert_array_equal(loaded.frames[index], segment.image)
            np.testing.assert_array_equal(loaded.mels[index], segment.spectrogram.T.astype(np.float16))
            seen.add(segment.key)
    assert seen == set(by_key)  # every segment, once

    stats = pd.read_json(data_dir / "spectrogram_stats" / "stats.json", typ="series")
    assert (stats["method"], stats["min"], stats["max"]) == ("uint8", 0, 255)

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert all(c.passed for name, c in checks.items() if name != "splits_video_disjoint")
    disjoint = checks["splits_video_disjoint"]  # the dog's video 210 is in train and test
    assert not disjoint.passed and disjoint.severity == AssetCheckSeverity.WARN


def test_chain_metadata_counts_against_the_paper(chain):
    _profile, _data_dir, result = chain
    clips = metadata_of(result, "vegas_clips")
    assert clips["found_segments"] == {"train": 25, "val": 10, "test": 11}
    assert clips["expected_segments"] == {"train": 48945, "val": 5575, "test": 6825}
    assert clips["complete"] is False and "fewer segments than the paper's release" in clips["partial_clone"]
    assert clips["source_kind"] == "s2i_data" and clips["clips"] == 20
    assert "train (paper 9,789)" in clips["per_class_segments"]

    splits = metadata_of(result, "splits")
    assert splits["complete"] is False and splits["video_disjoint"] is False
    assert splits["matches_paper"] == {"train": False, "val": False, "test": False}
    assert splits["paper_segments_per_class"] == {"train": 9789, "val": 1115, "test": 1365}
    assert "| dog | test | 3 | 1365 | False |" in splits["per_class_vs_paper"]
    assert (splits["train_segments"], splits["val_segments"], splits["test_segments"]) == (25, 10, 11)
    assert metadata_of(result, "spectrogram_stats")["method"] == "uint8"


def test_rerun_reuses_and_a_changed_batch_recomputes(clone, chain):
    root, _segments, written = clone
    profile, data_dir, _result = chain
    resources = make_resources(profile, data_dir)
    again = materialize([*all_assets, *all_checks], resources=resources, selection=CHAIN)
    assert all(metadata_of(again, key)["reused"] is True for key in CHAIN)

    stat = os.stat(written["test"][0])
    os.utime(written["test"][0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = materialize([*all_assets], resources=resources, selection=["vegas_clips", "segments"])
    assert metadata_of(changed, "vegas_clips")["reused"] is False
    segments = metadata_of(changed, "segments")
    assert segments["reused"] is False and 0 < segments["clips_from_cache"] < segments["clips"]


def test_a_bad_clone_fails_before_writing_anything(fresh_clone, tmp_path):
    root, _segments, written = fresh_clone
    lfs_pointer(written["train"][0])  # skipped, fine on its own
    for path in written["test"]:
        lfs_pointer(path)  # no usable test batch: the clone is unusable
    data_dir = tmp_path / "data"
    result = materialize(
        [*all_assets],
        resources=make_resources(write_profile(tmp_path, root), data_dir),
        selection=["vegas_clips", "segments"],
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    error = failure.step_failure_data.error
    assert error.cause.cls_name == "S2IDataError"
    assert "no usable batch for test" in error.cause.message
    assert "is a Git LFS pointer, not the data" in error.cause.message
    # No parquet, manifest or cache entry: only the asset's writer lock file, which holds no data.
    assert [p.name for p in data_dir.rglob("*") if p.is_file()] == [".lock"]
