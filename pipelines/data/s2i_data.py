"""The authors' released segments (github.com/leofanzeres/s2i_data): readers, a validating scan, and the
clip table, per-clip caches and split that the pipeline's data contract needs.

A clone (after `git lfs pull`) holds little-endian record files without a header:

  batches/audio_visual/spectrograms_to_images/{data,val,test}_batch_NNN.bin   (NNN from 001)
      40,459-byte records: an 11-byte ASCII label, a 128 x 100 uint8 spectrogram (mel x time, row-major),
      a 96 x 96 x 3 uint8 RGB image; 570 records a batch, the last batch of a split shorter.
  batches/audio/spectrograms_128x100/{data,val,test}_batch_NNN.bin
      12,801-byte records: 1 class byte (0..4) + the 128 x 100 uint8 spectrogram; 1,800 a batch.
  batches/audio_visual/embeddings_{dim}_to_images_audioautoencoder_{run}/{data,val,test}_batch_NNN.bin
      an 11-byte label + `dim` float32 + the 96 x 96 x 3 uint8 image.

`data_` is the training split. A label "00200417003" is class 002 (Dog), video 00417, window 003 (the
one-second window within the video); the pipeline names that video `c002_s00417` and the segment its
window, so shard keys read `c002_s00417_w003` as in the paper.

Spectrogram values: the segment caches (and shards) hold the authors' uint8 spectrogram values as float16
(exact for 0..255), transposed to the project's (100 time, 128 mel) layout: mel[t, m] = spec[m, t].
The authors normalise spectrograms and images alike with ToTensor + Normalize(0.5, 0.5), i.e.
x / 255 * 2 - 1. So for this source `spectrogram_stats` is not measured: it is the fixed 8-bit range
min = 0, max = 255 (`method: "uint8"`, `uint8_stats`), with which the min-max scaling of
`pipelines.data.stats.scale_mel` and of the training loaders is exactly that normalisation, and the
training's transpose back to (1, 128, 100) gives the authors' layout. The mel axis keeps the authors'
order too: their images put the highest band in row 0, so in this source's shards mel index 0 is the
highest band (the reverse of the project's log-mels, where band 0 is the lowest); the authors' networks
need it that way, and `pipelines.media.logmel.authors_spectrogram` maps a project log-mel onto it.

What is wrong with a clone is sorted before anything is written: a missing folder, a split without any
usable batch, a label that is not 11 digits or an unknown class id make the clone unusable (one
`S2IDataError` naming the file, the problem and the fix); a Git LFS pointer or a truncated batch among
good ones is skipped and reported, and the counts are then short of the paper's (a partial clone).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.classes import AUTHORS_CLASS_IDS
from pipelines.data.files import atomic_open, remove_stale_temps
from pipelines.data.progress import Progress
from pipelines.data.segments import cache_file, cached_stamp
from pipelines.data.splits import SPLIT_COLUMNS, SPLITS, in_split_order
from pipelines.data.stats import STATS_VERSION
from pipelines.data.vegas import ClipRecord

REPO = "leofanzeres/s2i_data"
REPO_URL = f"https://github.com/{REPO}"
SPECTROGRAMS_TO_IMAGES = "batches/audio_visual/spectrograms_to_images"
AUDIO_SPECTROGRAMS = "batches/audio/spectrograms_128x100"
EMBEDDINGS_FOLDER = re.compile(r"^embeddings_(\d+)_to_images_audioautoencoder_(.+)$")
BATCH_NAME = re.compile(r"^(data|val|test)_batch_(\d+)\.bin$")
SPLIT_OF_PREFIX = {"data": "train", "val": "val", "test": "test"}
PREFIX_OF_SPLIT = {split: prefix for prefix, split in SPLIT_OF_PREFIX.items()}

LABEL_BYTES = 11  # 3 digits class id, 5 digits video id, 3 digits window id
SPECTROGRAM_SHAPE = (128, 100)  # mel bands x time frames, as stored
IMAGE_SHAPE = (96, 96, 3)  # HWC RGB
LFS_POINTER_PREFIX = b"version https://git-lfs.github.com/spec/v1"

SPECTROGRAM_IMAGE_DTYPE = np.dtype(
    [("label", f"S{LABEL_BYTES}"), ("spectrogram", "u1", SPECTROGRAM_SHAPE), ("image", "u1", IMAGE_SHAPE)]
)
AUDIO_DTYPE = np.dtype([("class_index", "u1"), ("spectrogram", "u1", SPECTROGRAM_SHAPE)])
RECORD_BYTES = SPECTROGRAM_IMAGE_DTYPE.itemsize  # 40,459
AUDIO_RECORD_BYTES = AUDIO_DTYPE.itemsize  # 12,801
RECORDS_PER_BATCH = 570
AUDIO_RECORDS_PER_BATCH = 1800

# The release as the paper used it (every class the same in each split).
PAPER_SEGMENTS_PER_CLASS = {"train": 9789, "val": 1115, "test": 1365}
PAPER_BATCHES = {"train": 86, "val": 10, "test": 12}
PAPER_AUDIO_SEGMENTS = {"train": 49435, "val": 5635, "test": 6920}

# Columns of the record index `scan_s2i_data` builds: one row per usable record, in file order
# (train, val, test; batch number; record), which is the order the caches are filled in.
RECORD_COLUMNS = [
    "clip_id",
    "class_name",
    "class_id",
    "video_id",
    "segment",
    "split",
    "batch",
    "record",
    "batch_size",
    "batch_mtime_ns",
]
_CLASS_ORDER = [AUTHORS_CLASS_IDS[key] for key in sorted(AUTHORS_CLASS_IDS)]


class S2IDataError(ValueError):
    """The clone cannot be used as it is; the message names the file, what is wrong and what to do."""


def embedding_dtype(dim: int) -> np.dtype:
    return np.dtype(
        [("label", f"S{LABEL_BYTES}"), ("embedding", "<f4", (dim,)), ("image", "u1", IMAGE_SHAPE)]
    )


# ---- labels ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """Parsed 11-digit labels, one entry per record."""

    class_ids: np.ndarray  # (N,) int16: 1..5 in the release
    video_ids: np.ndarray  # (N,) int32
    windows: np.ndarray  # (N,) int16: the one-second window within the video (0..9)

    def __len__(self) -> int:
        return len(self.class_ids)


@dataclass(frozen=True)
class BadLabel:
    index: int
    label: bytes


def label_bytes(labels: np.ndarray) -> np.ndarray:
    """(N,) `S11` labels (any strides) -> (N, 11) uint8, trailing NULs kept."""
    return np.ascontiguousarray(labels, dtype=f"S{LABEL_BYTES}").view(np.uint8).reshape(-1, LABEL_BYTES)


def first_bad_label(labels: np.ndarray) -> BadLabel | None:
    """The first label that is not 11 ASCII digits, or None."""
    raw = label_bytes(labels)
    bad = ((raw < ord("0")) | (raw > ord("9"))).any(axis=1)
    if not bad.any():
        return None
    index = int(np.argmax(bad))
    return BadLabel(index, raw[index].tobytes())


def parse_labels(labels: np.ndarray) -> Labels:
    """(N,) 11-digit labels -> class ids, video ids, windows. Raises S2IDataError on a non-digit label."""
    bad = first_bad_label(labels)
    if bad is not None:
        raise S2IDataError(f"record {bad.index} has label {bad.label!r}, not 11 digits")
    digits = label_bytes(labels).astype(np.int32) - ord("0")  # (N, 11)
    return Labels(
        class_ids=(digits[:, 0:3] @ np.array([100, 10, 1])).astype(np.int16),
        video_ids=(digits[:, 3:8] @ np.array([10_000, 1000, 100, 10, 1])).astype(np.int32),
        windows=(digits[:, 8:11] @ np.array([100, 10, 1])).astype(np.int16),
    )


def clip_id_of(class_id: int, video_id: int) -> str:
    """The pipeline's id of one of the authors' videos: class 2, video 417 -> c002_s00417."""
    return f"c{class_id:03d}_s{video_id:05d}"


def mel_from_spectrogram(spectrograms: np.ndarray) -> np.ndarray:
    """(..., 128 mel, 100 time) uint8 -> (..., 100 time, 128 mel) float16: mel[t, m] = spec[m, t], exact."""
    return np.swapaxes(spectrograms, -1, -2).astype(np.float16)


def uint8_stats(train_segments: int) -> dict:
    """`spectrogram_stats` for this source: the fixed 8-bit range, so min-max scaling is x / 255 * 2 - 1."""
    return {
        "version": STATS_VERSION,
        "method": "uint8",
        "min": 0.0,
        "max": 255.0,
        "segments": int(train_segments),
        "note": (
            "s2i_data spectrograms are the authors' uint8 values; scaling with the fixed range 0..255 is "
            "their ToTensor + Normalize(0.5, 0.5)"
        ),
    }


# ---- one batch file ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchProblem:
    reason: str  # "git_lfs_pointer", "truncated" or "empty"
    message: str  # the file, what is wrong and what to do


def _clone_root(path: Path) -> Path:
    """The Git clone holding `path` (for the `git lfs pull` hint), else the file's folder."""
    for parent in path.resolve().parents:
        if (parent / ".git").exists():
            return parent
    return path.parent


def _refetch_hint(path: Path, root: Path) -> str:
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:
        relative = str(path)
    return (
        f"re-fetch that file: in {root} run `rm {relative} && git checkout -- {relative}` "
        "(`git lfs fsck` reports damaged local LFS objects)"
    )


def batch_problem(path: Path, record_bytes: int, root: Path | None = None) -> BatchProblem | None:
    """Why `path` cannot be read as records of `record_bytes` bytes (None when it can)."""
    root = root if root is not None else _clone_root(path)
    size = path.stat().st_size
    with open(path, "rb") as stream:
        head = stream.read(len(LFS_POINTER_PREFIX) + 200)
    if head.startswith(LFS_POINTER_PREFIX):
        real = re.search(rb"\nsize (\d+)", head)
        real_size = f" (the data is {int(real.group(1)):,} bytes)" if real else ""
        return BatchProblem(
            "git_lfs_pointer",
            f"{path} is a Git LFS pointer, not the data{real_size}: run `git lfs pull` in {root}",
        )
    if size == 0:
        return BatchProblem("empty", f"{path} is empty (0 bytes): {_refetch_hint(path, root)}")
    whole, rest = divmod(size, record_bytes)
    if rest:
        return BatchProblem(
            "truncated",
            f"{path} is {size:,} bytes, not a whole number of {record_bytes:,}-byte records "
            f"({whole:,} records and {rest:,} bytes left over): the file is truncated or damaged; "
            f"{_refetch_hint(path, root)}",
        )
    return None


def _map(path: Path, dtype: np.dtype) -> np.ndarray:
    problem = batch_problem(Path(path), dtype.itemsize)
    if problem is not None:
        raise S2IDataError(problem.message)
    return np.memmap(path, dtype=dtype, mode="r")


def _bad_label_error(path: Path, bad: BadLabel, root: Path, what: str) -> S2IDataError:
    return S2IDataError(
        f"{path}: record {bad.index} has label {bad.label!r}, {what}. The file is damaged or is not an "
        f"s2i_data batch of this layout; {_refetch_hint(path, root)}, and check that source.root is a "
        f"clone of {REPO}."
    )


def _checked_labels(path: Path, labels: np.ndarray, root: Path) -> Labels:
    labels = np.ascontiguousarray(labels)  # one read of the label bytes of a memory-mapped file
    bad = first_bad_label(labels)
    if bad is not None:
        raise _bad_label_error(
            path, bad, root, "not 11 digits (3 class id, 5 video id, 3 window id, e.g. '00200417003')"
        )
    parsed = parse_labels(labels)
    unknown = ~np.isin(parsed.class_ids, list(AUTHORS_CLASS_IDS))
    if unknown.any():
        index = int(np.argmax(unknown))
        bad = BadLabel(index, label_bytes(labels[index : index + 1])[0].tobytes())
        raise _bad_label_error(
            path, bad, root, f"with unknown class id {int(parsed.class_ids[index]):03d} (known: 001..005)"
        )
    return parsed


@dataclass(frozen=True)
class SpectrogramImageBatch:
    """One spectrograms_to_images batch; the arrays are read-only views of the file (np.array to copy)."""

    labels: Labels
    spectrograms: np.ndarray  # (N, 128, 100) uint8, mel x time
    images: np.ndarray  # (N, 96, 96, 3) uint8 RGB

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class AudioBatch:
    """One audio-only batch (the autoencoder's larger set)."""

    class_indices: np.ndarray  # (N,) uint8: 0..4 in AUTHORS_CLASS_IDS order
    spectrograms: np.ndarray  # (N, 128, 100) uint8, mel x time

    @property
    def class_names(self) -> list[str]:
        return [_CLASS_ORDER[i] for i in self.class_indices]

    def __len__(self) -> int:
        return len(self.class_indices)


@dataclass(frozen=True)
class EmbeddingBatch:
    """One batch of the authors' audio embeddings beside their images."""

    labels: Labels
    embeddings: np.ndarray  # (N, dim) float32
    images: np.ndarray  # (N, 96, 96, 3) uint8 RGB

    def __len__(self) -> int:
        return len(self.labels)


def read_spectrogram_image_batch(path: Path) -> SpectrogramImageBatch:
    """A `{data,val,test}_batch_NNN.bin` of spectrograms_to_images."""
    path = Path(path)
    records = _map(path, SPECTROGRAM_IMAGE_DTYPE)
    labels = _checked_labels(path, records["label"], _clone_root(path))
    return SpectrogramImageBatch(labels, records["spectrogram"], records["image"])


def read_audio_batch(path: Path) -> AudioBatch:
    """A `{data,val,test}_batch_NNN.bin` of audio/spectrograms_128x100."""
    path = Path(path)
    records = _map(path, AUDIO_DTYPE)
    classes = records["class_index"]
    unknown = classes >= len(_CLASS_ORDER)
    if unknown.any():
        index = int(np.argmax(unknown))
        raise S2IDataError(
            f"{path}: record {index} has class byte {int(classes[index])}, not 0..4. The file is damaged or "
            f"not an audio batch of {REPO}; {_refetch_hint(path, _clone_root(path))}."
        )
    return AudioBatch(np.asarray(classes), records["spectrogram"])


def read_embedding_batch(path: Path, dim: int) -> EmbeddingBatch:
    """A batch of `embeddings_{dim}_to_images_audioautoencoder_{run}`."""
    path = Path(path)
    records = _map(path, embedding_dtype(dim))
    labels = _checked_labels(path, records["label"], _clone_root(path))
    return EmbeddingBatch(labels, records["embedding"], records["image"])


def embedding_folders(root: Path) -> dict[int, list[Path]]:
    """The clone's embedding folders by dim (several runs may exist for one dim)."""
    found: dict[int, list[Path]] = {}
    base = Path(root) / "batches" / "audio_visual"
    if base.is_dir():
        for folder in sorted(base.iterdir()):
            match = EMBEDDINGS_FOLDER.match(folder.name)
            if match and folder.is_dir():
                found.setdefault(int(match.group(1)), []).append(folder)
    return found


# ---- the whole clone ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchFile:
    relative: str  # path under the clone's root, posix
    split: str
    number: int
    size: int
    mtime_ns: int
    records: int


@dataclass(frozen=True)
class SkippedBatch:
    relative: str
    split: str
    reason: str
    message: str


@dataclass
class S2IScan:
    """What a clone holds, validated: usable batches, skipped ones, and one row per usable record."""

    root: Path
    classes: list[str]
    batches: list[BatchFile]
    skipped: list[SkippedBatch]
    records: pd.DataFrame  # RECORD_COLUMNS, profile classes only, duplicates dropped
    other_class_records: int = 0
    duplicates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RECORD_COLUMNS))
    missing_batch_numbers: dict[str, list[int]] = field(default_factory=dict)
    ignored_files: list[str] = field(default_factory=list)

    def counts(self) -> pd.DataFrame:
        """Segments found per class and split beside the paper's, one row per (class, split)."""
        found = self.records.groupby(["class_name", "split"]).size()
        rows = [
            (name, split, int(found.get((name, split), 0)), PAPER_SEGMENTS_PER_CLASS[split])
            for name in self.classes
            for split in SPLITS
        ]
        return pd.DataFrame(rows, columns=["class_name", "split", "found", "expected"])

    @property
    def complete(self) -> bool:
        counts = self.counts()
        return bool((counts.found == counts.expected).all())

    def summary(self) -> dict:
        """Counts for asset metadata (plain JSON values)."""
        counts = self.counts()
        per_split = counts.groupby("split", sort=False)[["found", "expected"]].sum()
        found = {split: int(per_split.found[split]) for split in SPLITS}
        expected = {split: int(per_split.expected[split]) for split in SPLITS}
        skipped_by_reason: dict[str, int] = {}
        for item in self.skipped:
            skipped_by_reason[item.reason] = skipped_by_reason.get(item.reason, 0) + 1
        summary = {
            "found_segments": found,
            "expected_segments": expected,
            "complete": self.complete,
            "batch_files": len(self.batches),
            "batch_files_skipped": len(self.skipped),
            "skipped_by_reason": skipped_by_reason,
            "videos_in_several_splits": videos_in_several_splits(self.records),
            "duplicate_segments_dropped": len(self.duplicates),
            "records_of_other_classes": self.other_class_records,
            "ignored_files": self.ignored_files[:20],
        }
        if not summary["complete"]:
            short = ", ".join(f"{s} {found[s]:,} of {expected[s]:,}" for s in SPLITS)
            reasons = ", ".join(f"{reason}: {count}" for reason, count in skipped_by_reason.items())
            fix = (
                f" {len(self.skipped)} batch file(s) were skipped ({reasons}): run `git lfs pull` in "
                f"{self.root} and re-fetch damaged files to get them."
                if self.skipped
                else ""
            )
            missing = {s: n for s, n in self.missing_batch_numbers.items() if n}
            gaps = f" Missing batch numbers: {missing}." if missing else ""
            summary["partial_clone"] = (
                f"The clone at {self.root} holds fewer segments than the paper's release ({short}); "
                f"the pipeline goes on with what is there.{fix}{gaps}"
            )
        return summary


def _spectrograms_to_images_folder(root: Path) -> Path:
    layout = (
        f"expected a clone of {REPO} laid out <root>/{SPECTROGRAMS_TO_IMAGES}/{{data,val,test}}_batch_NNN.bin "
        f"(git lfs install && git clone {REPO_URL} <root> && cd <root> && git lfs pull)"
    )
    if not root.is_dir():
        raise S2IDataError(f"source.root {root} is not a folder: {layout}.")
    folder = root / SPECTROGRAMS_TO_IMAGES
    if not folder.is_dir():
        inside = any(BATCH_NAME.match(p.name) for p in root.iterdir())
        hint = (
            " source.root seems to point inside the clone: set it to the clone's top folder."
            if inside
            else ""
        )
        raise S2IDataError(f"source.root {root} has no folder {SPECTROGRAMS_TO_IMAGES}: {layout}.{hint}")
    return folder


def _check_classes(classes: Collection[str] | None) -> list[str]:
    known = list(AUTHORS_CLASS_IDS.values())
    if classes is None:
        return known
    unknown = sorted(set(classes) - set(known))
    if unknown:
        raise S2IDataError(
            f"the s2i_data source holds only the classes {known}; the profile's classes {unknown} are not "
            "among them: remove them from `classes` in the profile."
        )
    return [name for name in known if name in set(classes)]


def _list_batches(folder: Path) -> tuple[dict[str, list[tuple[int, Path]]], list[str]]:
    files: dict[str, list[tuple[int, Path]]] = {split: [] for split in SPLITS}
    ignored = []
    for path in sorted(folder.iterdir()):
        match = BATCH_NAME.match(path.name)
        if match and path.is_file():
            files[SPLIT_OF_PREFIX[match.group(1)]].append((int(match.group(2)), path))
        elif not path.name.startswith("."):
            ignored.append(path.name)
    for split in SPLITS:
        files[split].sort()
    return files, ignored


def _record_frame(parsed: Labels, batch: BatchFile, wanted: np.ndarray) -> tuple[pd.DataFrame, int]:
    """The records of one batch as RECORD_COLUMNS rows (wanted classes only) and how many were not wanted."""
    keep = wanted[parsed.class_ids]
    class_ids, video_ids = parsed.class_ids[keep], parsed.video_ids[keep]
    frame = pd.DataFrame(
        {
            "clip_id": [
                clip_id_of(c, v) for c, v in zip(class_ids.tolist(), video_ids.tolist(), strict=True)
            ],
            "class_name": np.array(_CLASS_ORDER, dtype=object)[class_ids - 1],
            "class_id": class_ids,
            "video_id": video_ids,
            "segment": parsed.windows[keep].astype(np.int32),
            "split": batch.split,
            "batch": batch.relative,
            "record": np.flatnonzero(keep).astype(np.int32),
            "batch_size": np.int64(batch.size),
            "batch_mtime_ns": np.int64(batch.mtime_ns),
        },
        columns=RECORD_COLUMNS,
    )
    return frame, int((~keep).sum())


def _no_split_error(root: Path, folder: Path, empty: dict[str, list[SkippedBatch]]) -> S2IDataError:
    lines = []
    for split, skipped in empty.items():
        pattern = f"{PREFIX_OF_SPLIT[split]}_batch_NNN.bin"
        if not skipped:
            lines.append(f"  {split}: no {pattern} file in {folder}")
            continue
        reasons: dict[str, int] = {}
        for item in skipped:
            reasons[item.reason] = reasons.get(item.reason, 0) + 1
        listed = ", ".join(f"{n} {r}" for r, n in reasons.items())
        lines.append(
            f"  {split}: all {len(skipped)} {pattern} files are unusable ({listed}); e.g. {skipped[0].message}"
        )
    fix = (
        f"Run `git lfs pull` in {root} to fetch the data (or only what this source reads, about 2.5 GB: "
        f'`git lfs pull --include="{SPECTROGRAMS_TO_IMAGES}/*"`).'
        if any(item.reason == "git_lfs_pointer" for items in empty.values() for item in items)
        else f"Fetch the missing files: a complete clone of {REPO} has 86 train, 10 val and 12 test batches."
    )
    return S2IDataError(
        f"the s2i_data clone at {root} has no usable batch for {', '.join(empty)}:\n"
        + "\n".join(lines)
        + f"\n{fix}"
    )


def scan_s2i_data(root: Path, classes: Collection[str] | None = None) -> S2IScan:
    """Validate every spectrograms_to_images batch of the clone at `root` and index its records.

    Reads only the labels (memory-mapped). Raises S2IDataError when the clone is unusable; skips and
    reports Git LFS pointers and truncated batches among good ones.
    """
    root = Path(root).expanduser()
    folder = _spectrograms_to_images_folder(root)
    wanted_classes = _check_classes(classes)
    wanted = np.zeros(1000, dtype=bool)  # indexed by class id
    for class_id, name in AUTHORS_CLASS_IDS.items():
        wanted[class_id] = name in wanted_classes
    files, ignored = _list_batches(folder)

    batches: list[BatchFile] = []
    skipped: list[SkippedBatch] = []
    frames: list[pd.DataFrame] = []
    other = 0
    for split in SPLITS:
        for number, path in files[split]:
            relative = path.relative_to(root).as_posix()
            problem = batch_problem(path, RECORD_BYTES, root)
            if problem is not None:
                skipped.append(SkippedBatch(relative, split, problem.reason, problem.message))
                continue
            stat = path.stat()
            records = np.memmap(path, dtype=SPECTROGRAM_IMAGE_DTYPE, mode="r")
            parsed = _checked_labels(path, records["label"], root)
            del records  # labels are copied; let the mapping go
            batch = BatchFile(relative, split, number, stat.st_size, stat.st_mtime_ns, len(parsed))
            batches.append(batch)
            frame, not_wanted = _record_frame(parsed, batch, wanted)
            frames.append(frame)
            other += not_wanted

    empty = {
        split: [item for item in skipped if item.split == split]
        for split in SPLITS
        if not any(batch.split == split for batch in batches)
    }
    if empty:
        raise _no_split_error(root, folder, empty)

    records = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RECORD_COLUMNS)
    # A window twice would clash in the per-clip cache and in shard keys: keep its first occurrence.
    duplicated = records.duplicated(["clip_id", "segment"], keep="first")
    duplicates = records[duplicated].reset_index(drop=True)
    records = records[~duplicated].reset_index(drop=True)
    missing = {}
    for split in SPLITS:
        numbers = {number for number, _path in files[split]}
        missing[split] = sorted(set(range(1, max(numbers, default=0) + 1)) - numbers)
    return S2IScan(
        root=root,
        classes=wanted_classes,
        batches=batches,
        skipped=skipped,
        records=records,
        other_class_records=other,
        duplicates=duplicates,
        missing_batch_numbers=missing,
        ignored_files=ignored,
    )


def videos_in_several_splits(records: pd.DataFrame) -> int:
    """How many videos have windows in more than one split (0 when the split is video-disjoint)."""
    if records.empty:
        return 0
    return int((records.groupby("clip_id").split.nunique() > 1).sum())


def batches_listing(scan: S2IScan) -> str:
    """A fingerprint of the files the scan saw (names, sizes, mtimes), skipped ones included."""
    entries = [(b.relative, b.size, b.mtime_ns) for b in scan.batches]
    for item in scan.skipped:
        stat = (scan.root / item.relative).stat()
        entries.append((item.relative, stat.st_size, stat.st_mtime_ns))
    return hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()[:24]


# ---- the pipeline's contract -------------------------------------------------------------------------------


def clip_records(scan: S2IScan) -> list[ClipRecord]:
    """The clip table: one row per video, `duration` = how many of its windows the clone holds."""
    records = scan.records
    if records.empty:
        return []
    clips = records.groupby("clip_id", sort=False).agg(
        class_name=("class_name", "first"),
        class_id=("class_id", "first"),
        batch=("batch", "first"),
        windows=("segment", "size"),
    )
    clips = clips.reset_index().sort_values(["class_id", "clip_id"], kind="stable")
    return [
        ClipRecord(
            clip_id=row.clip_id,
            class_name=row.class_name,
            path=str(scan.root / row.batch),
            source=f"s2i_data:{row.batch}",
            duration=float(row.windows),
            status="ok",
            reason="",
        )
        for row in clips.itertuples(index=False)
    ]


def segment_table(records: pd.DataFrame) -> pd.DataFrame:
    """`segments` rows for the record index: clip_id, class_name, segment, source, split, batch, record.

    `source` is the clip's (the batch of its first record), as for the other sources; `batch` and
    `record` say where each segment's bytes are.
    """
    first_batch = records.groupby("clip_id", sort=False).batch.first()
    table = records.assign(source="s2i_data:" + records.clip_id.map(first_batch))
    table = table.sort_values(["class_id", "clip_id", "segment"], kind="stable")
    columns = ["clip_id", "class_name", "segment", "source", "split", "batch", "record"]
    return table[columns].astype({"segment": "int32", "record": "int32"}).reset_index(drop=True)


def authors_splits(segments: pd.DataFrame) -> pd.DataFrame:
    """The authors' split of every segment, as a `splits` table (SPLIT_COLUMNS, `make_splits`' order)."""
    return in_split_order(segments[SPLIT_COLUMNS])


def split_counts(table: pd.DataFrame, classes: Iterable[str]) -> pd.DataFrame:
    """Per class and split: segments in `table`, the paper's count, and whether they match."""
    found = table.groupby(["class_name", "split"]).size()
    rows = []
    for name in classes:
        for split in SPLITS:
            got, expected = int(found.get((name, split), 0)), PAPER_SEGMENTS_PER_CLASS[split]
            rows.append((name, split, got, expected, got == expected))
    return pd.DataFrame(rows, columns=["class_name", "split", "segments", "paper", "matches"])


# ---- per-clip segment caches -------------------------------------------------------------------------------


def _check_unchanged(root: Path, records: pd.DataFrame) -> None:
    stamps = records.drop_duplicates("batch")[["batch", "batch_size", "batch_mtime_ns"]]
    for row in stamps.itertuples(index=False):
        path = root / row.batch
        try:
            stat = path.stat()
        except OSError as error:
            raise S2IDataError(
                f"{path} is gone since `vegas_clips` indexed it ({error.strerror}): restore it or materialize "
                "vegas_clips again."
            ) from None
        if (stat.st_size, stat.st_mtime_ns) != (row.batch_size, row.batch_mtime_ns):
            raise S2IDataError(
                f"{path} changed since `vegas_clips` indexed it (size or modification time differ): "
                "materialize vegas_clips again, then segments."
            )


def _clip_stamp(
    batches: np.ndarray, sizes: np.ndarray, mtimes: np.ndarray, records: np.ndarray, segments: np.ndarray
) -> str:
    """What a clip's cache entry was made from: each record's file (name, size, mtime), index and window."""
    entries = sorted(
        zip(
            batches.tolist(),
            sizes.tolist(),
            mtimes.tolist(),
            records.tolist(),
            segments.tolist(),
            strict=True,
        )
    )
    return json.dumps({"s2i_data": hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:24]})


def fill_segment_caches(
    root: Path,
    records: pd.DataFrame,
    cache_dir: Path,
    log: Callable[[str], object] | None = None,
) -> dict:
    """Write `<cache_dir>/<clip_id>.npz` (frames (K, 96, 96, 3) uint8, mels (K, 100, 128) float16, indexed by
    window; windows a video lacks are zeros and are not in the segments table) for every clip of the
    record index. An entry whose stamp matches is kept, so a re-run with the same files writes nothing.

    Clips are filled in the order their first record appears in the files, each from memory-mapped
    batches: reads move forward through every file once when a video's records lie together, and
    memory holds one clip at a time whatever the order.
    """
    root = Path(root)
    cache_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(cache_dir)
    _check_unchanged(root, records)
    batches = records.batch.to_numpy()
    sizes, mtimes = records.batch_size.to_numpy(), records.batch_mtime_ns.to_numpy()
    record_index, windows = records.record.to_numpy(), records.segment.to_numpy()
    rows_of = records.groupby("clip_id", sort=False).indices
    mapped: dict[str, np.ndarray] = {}
    progress = Progress(len(rows_of), "filling segment caches from s2i_data batches", log=log, unit="clips")
    from_cache = 0
    for clip_id in pd.unique(records.clip_id):
        rows = rows_of[clip_id]
        stamp = _clip_stamp(batches[rows], sizes[rows], mtimes[rows], record_index[rows], windows[rows])
        path = cache_file(cache_dir, clip_id)
        if cached_stamp(path) == stamp:  # a missing or damaged entry is rewritten
            from_cache += 1
            progress.advance()
            continue
        count = int(windows[rows].max()) + 1
        frames = np.zeros((count, *IMAGE_SHAPE), dtype=np.uint8)  # (K, 96, 96, 3)
        mels = np.zeros(
            (count, SPECTROGRAM_SHAPE[1], SPECTROGRAM_SHAPE[0]), dtype=np.float16
        )  # (K, 100, 128)
        for batch in pd.unique(batches[rows]):
            part = rows[batches[rows] == batch]
            if batch not in mapped:
                mapped[batch] = np.memmap(root / batch, dtype=SPECTROGRAM_IMAGE_DTYPE, mode="r")
            chosen = mapped[batch][record_index[part]]  # a copy of just these records
            frames[windows[part]] = chosen["image"]
            mels[windows[part]] = mel_from_spectrogram(chosen["spectrogram"])
        with atomic_open(path) as stream:
            np.savez(stream, frames=frames, mels=mels, stamp=np.array(stamp))
        progress.advance()
    mapped.clear()
    return {
        "clips": len(rows_of),
        "clips_used": len(rows_of),
        "clips_skipped": 0,
        "clips_from_cache": from_cache,
        "segments": len(records),
    }


# ---- the authors' embeddings, recomputed -----------------------------------------------------------------


def compare_embeddings(
    root: Path,
    encode: Callable[[np.ndarray], np.ndarray],
    dim: int,
    split: str = "test",
    limit: int = 2048,
) -> dict:
    """Recompute the authors' published embeddings of `dim` from their own spectrograms and compare.

    `encode` maps (N, 100, 128) float16 spectrograms in this source's layout (what the shards hold) to
    (N, dim) embeddings, the way the pipeline encodes them. Segments are matched by label between the
    spectrograms_to_images batches and the `embeddings_{dim}_...` batches of `split` (at most `limit`).
    Returns counts and the largest and mean absolute differences.
    """
    root = Path(root).expanduser()
    folders = embedding_folders(root)
    if dim not in folders:
        raise S2IDataError(
            f"{root} has no batches/audio_visual/embeddings_{dim}_to_images_* folder: fetch it with "
            f'git lfs pull --include "batches/audio_visual/embeddings_{dim}_to_images_*/*" in {root}'
        )
    prefix = PREFIX_OF_SPLIT[split]
    published: dict[bytes, np.ndarray] = {}
    for path in sorted(folders[dim][0].glob(f"{prefix}_batch_*.bin")):
        if batch_problem(path, embedding_dtype(dim).itemsize, root) is not None:
            continue
        records = _map(path, embedding_dtype(dim))
        for row, embedding in zip(label_bytes(records["label"]), records["embedding"], strict=True):
            published[row.tobytes()] = np.asarray(embedding)
    keys, spectrograms = [], []
    for path in sorted((root / SPECTROGRAMS_TO_IMAGES).glob(f"{prefix}_batch_*.bin")):
        if len(keys) >= limit or batch_problem(path, RECORD_BYTES, root) is not None:
            continue
        records = _map(path, SPECTROGRAM_IMAGE_DTYPE)
        for label, spectrogram in zip(label_bytes(records["label"]), records["spectrogram"], strict=True):
            if label.tobytes() in published and len(keys) < limit:
                keys.append(label.tobytes())
                spectrograms.append(np.array(spectrogram))
    if not keys:
        raise S2IDataError(
            f"no {split} segment of {root / SPECTROGRAMS_TO_IMAGES} has a published embedding of dim {dim} "
            "(are both folders fetched with git lfs pull?)"
        )
    ours = encode(mel_from_spectrogram(np.stack(spectrograms)))
    theirs = np.stack([published[key] for key in keys])
    difference = np.abs(ours.astype(np.float64) - theirs)
    return {
        "dim": dim,
        "split": split,
        "segments_compared": len(keys),
        "published_embeddings": len(published),
        "max_abs_difference": float(difference.max()),
        "mean_abs_difference": float(difference.mean()),
    }
