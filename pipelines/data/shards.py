"""WebDataset shards: reproducible tar files of samples, and a fast loader of a whole split into memory.

A sample `<key>` holds
  `<key>.mel.npy`    the log-mel spectrogram, (100, 128) float16, time x mel, NOT scaled (scale with
                     `spectrogram_stats`: the statistics can change without rewriting the shards);
  `<key>.frame.npy`  the central frame, (96, 96, 3) uint8 RGB (or `<key>.frame.png` with frame_format=png);
  `<key>.json`       clip_id, class_name, segment (0-based second), split, source.
Tars are byte-identical for the same samples: fixed member order, mtime 0, owner root, mode 0644.

A shard set lives in `shards/sets/<fingerprint>/` and the `shards` manifest names the current one
(`pipelines.data.filesets`): a new set is written beside the old one and switched in by the manifest's atomic
rename. Read a consistent set with `shard_paths` / `current_shards` (one manifest read); the top-level
`shards/{split}-NNNNNN.tar` are symlinks into the current set, kept for readers that glob them.
"""

from __future__ import annotations

import io
import json
import mmap
import os
import tarfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.data.artifact_manifest import read_manifest
from pipelines.data.files import atomic_output

TAR_BLOCK = 512


@dataclass(frozen=True)
class Sample:
    key: str
    mel: np.ndarray  # (100, 128) float16
    frame: np.ndarray  # (96, 96, 3) uint8
    meta: dict


def sample_key(clip_id: str, segment: int) -> str:
    # WebDataset splits keys at the first dot, so keys must have none.
    return f"{clip_id.replace('.', '_')}_w{segment:03d}"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame, mode="RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(payload))


def write_shard(path: Path, samples: Sequence[Sample], frame_format: str = "npy") -> None:
    """Write one tar atomically."""
    with atomic_output(path) as temp:
        with tarfile.open(temp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for sample in samples:
                _add(tar, f"{sample.key}.mel.npy", _npy_bytes(sample.mel.astype(np.float16, copy=False)))
                if frame_format == "png":
                    _add(tar, f"{sample.key}.frame.png", _png_bytes(sample.frame))
                else:
                    _add(tar, f"{sample.key}.frame.npy", _npy_bytes(sample.frame))
                meta = json.dumps(sample.meta, sort_keys=True, separators=(",", ":")).encode()
                _add(tar, f"{sample.key}.json", meta)


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


@dataclass(frozen=True)
class ShardSet:
    """One consistent shard set: its folder and the per-split counts its manifest recorded."""

    folder: Path
    splits: dict

    def paths(self, split: str) -> list[Path]:
        return sorted(self.folder.glob(f"{split}-*.tar"))

    def samples(self, split: str) -> int:
        return int(self.splits[split]["samples"])


def current_shards(shards_folder: Path) -> ShardSet:
    """The shard set the `shards` manifest names (one read, so paths and counts agree), or the top-level tars
    of a folder written before sets (their manifest has no `set`). FileNotFoundError when there is none."""
    manifest = read_manifest(shards_folder)
    if manifest is None:
        raise FileNotFoundError(f"no shards manifest under {shards_folder}: materialize `shards` first")
    name = manifest.data.get("set")
    return ShardSet(shards_folder / name if name else shards_folder, manifest.data.get("splits", {}))


def shard_paths(shards_folder: Path, split: str) -> list[Path]:
    """A split's tars in the current shard set (e.g. `load_split(shard_paths(folder, "train"))`)."""
    return current_shards(shards_folder).paths(split)


def batched(items: Iterable, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- loading -------------------------------------------------------------------------------------------


@dataclass
class SplitArrays:
    """A whole split in memory, in shard order."""

    frames: np.ndarray  # (N, 96, 96, 3) uint8
    mels: np.ndarray  # (N, 100, 128) float16, unscaled
    meta: list[dict]

    def __len__(self) -> int:
        return len(self.meta)


_NPY_HEADERS: dict[bytes, tuple[np.dtype, tuple[int, ...], str, int, int]] = {}


def _npy_view(payload: memoryview) -> np.ndarray:
    """Decode .npy bytes without copying the data; headers repeat, so each is parsed once."""
    major = payload[6]
    length_bytes = 2 if major == 1 else 4
    header_end = 8 + length_bytes + int.from_bytes(payload[8 : 8 + length_bytes], "little")
    header = bytes(payload[:header_end])
    parsed = _NPY_HEADERS.get(header)
    if parsed is None:
        stream = io.BytesIO(header)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        count = 1
        for size in shape:
            count *= size
        parsed = _NPY_HEADERS[header] = (dtype, shape, "F" if fortran else "C", header_end, count)
    dtype, shape, order, offset, count = parsed
    return np.frombuffer(payload[offset:], dtype=dtype, count=count).reshape(shape, order=order)


def _decode_png(payload: memoryview) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))


def iter_tar_members(data):
    """Yield (name, payload view) from an uncompressed ustar/gnu tar held in memory (bytes or mmap)."""
    view = memoryview(data)
    position = 0
    while position + TAR_BLOCK <= len(data):
        header = data[position : position + TAR_BLOCK]
        if header[0] == 0 and header.count(0) == TAR_BLOCK:  # end-of-archive block
            return
        name = header[0:100].split(b"\0", 1)[0].decode()
        prefix = header[345:500].split(b"\0", 1)[0].decode()
        if prefix:
            name = f"{prefix}/{name}"
        size = int(header[124:136].split(b"\0", 1)[0].strip() or b"0", 8)
        kind = header[156:157]
        start = position + TAR_BLOCK
        if kind in (b"0", b"\0"):
            yield name, view[start : start + size]
        position = start + (size + TAR_BLOCK - 1) // TAR_BLOCK * TAR_BLOCK


@dataclass
class _ShardIndex:
    """Views into one memory-mapped shard: nothing is copied until the split's arrays are filled."""

    mapping: mmap.mmap | None
    frames: list[np.ndarray]
    mels: list[np.ndarray]
    meta: list[dict]

    def close(self) -> None:
        self.frames.clear()
        self.mels.clear()
        if self.mapping is not None:
            self.mapping.close()


def _index_shard(path: Path) -> _ShardIndex:
    with open(path, "rb") as stream:
        if os.fstat(stream.fileno()).st_size == 0:
            return _ShardIndex(None, [], [], [])
        mapping = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    index = _ShardIndex(mapping, [], [], [])
    for name, payload in iter_tar_members(mapping):
        _key, _, extension = name.partition(".")
        if extension == "mel.npy":
            index.mels.append(_npy_view(payload))
        elif extension == "frame.npy":
            index.frames.append(_npy_view(payload))
        elif extension == "frame.png":
            index.frames.append(_decode_png(payload))
        elif extension == "json":
            index.meta.append(json.loads(bytes(payload)))
        payload.release()
    if not (len(index.frames) == len(index.mels) == len(index.meta)):
        counts = f"{len(index.mels)} mels, {len(index.frames)} frames, {len(index.meta)} json"
        index.close()
        raise ValueError(f"shard {path} is inconsistent: {counts}")
    return index


def load_split(paths: Sequence[Path], threads: int = 2) -> SplitArrays:
    """Read whole shards into contiguous arrays with a single copy from the page cache.

    Shards are memory-mapped and indexed (no per-sample decode for .npy members), then every sample is
    copied once into preallocated arrays; threads overlap the copies of different shards.
    """
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        indexes = list(pool.map(_index_shard, [Path(p) for p in paths]))
        try:
            total = sum(len(index.meta) for index in indexes)
            if not total:
                return SplitArrays(
                    np.zeros((0, 96, 96, 3), np.uint8), np.zeros((0, 100, 128), np.float16), []
                )
            first = next(index for index in indexes if index.meta)
            frames = np.empty((total, *first.frames[0].shape), dtype=first.frames[0].dtype)
            mels = np.empty((total, *first.mels[0].shape), dtype=first.mels[0].dtype)
            starts = np.cumsum([0] + [len(index.meta) for index in indexes])

            def fill(position: int) -> None:
                index, start = indexes[position], starts[position]
                if index.meta:
                    np.stack(index.frames, out=frames[start : start + len(index.meta)])
                    np.stack(index.mels, out=mels[start : start + len(index.meta)])

            list(pool.map(fill, range(len(indexes))))
            meta = [item for index in indexes for item in index.meta]
        finally:
            for index in indexes:
                index.close()
    return SplitArrays(frames=frames, mels=mels, meta=meta)
