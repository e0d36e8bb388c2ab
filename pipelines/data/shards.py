"""WebDataset shards: reproducible tar files of samples, and a fast loader of a whole split into memory.

A sample `<key>` holds
  `<key>.mel.npy`    the log-mel spectrogram, (100, 128) float16, time x mel, NOT scaled (scale with
                     `spectrogram_stats`: the statistics can change without rewriting the shards);
  `<key>.frame.npy`  the central frame, (96, 96, 3) uint8 RGB (or `<key>.frame.png` with frame_format=png);
  `<key>.json`       clip_id, class_name, segment (0-based second), split, source.
Tars are byte-identical for the same samples: fixed member order, mtime 0, owner root, mode 0644.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


_NPY_HEADERS: dict[bytes, tuple[np.dtype, tuple[int, ...], bool, int]] = {}


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
        parsed = _NPY_HEADERS[header] = (dtype, shape, fortran, header_end)
    dtype, shape, fortran, offset = parsed
    array = np.frombuffer(payload[offset:], dtype=dtype, count=int(np.prod(shape)))
    return array.reshape(shape, order="F" if fortran else "C")


def _decode_png(payload: memoryview) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))


def iter_tar_members(data: bytes):
    """Yield (name, payload view) from an uncompressed ustar/gnu tar held in memory."""
    view = memoryview(data)
    position = 0
    while position + TAR_BLOCK <= len(data):
        header = data[position : position + TAR_BLOCK]
        if header.count(0) == TAR_BLOCK:
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


def _load_shard(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[dict]]:
    data = path.read_bytes()
    frames, mels, metas = [], [], []
    for name, payload in iter_tar_members(data):
        key, _, extension = name.partition(".")
        if extension == "mel.npy":
            mels.append(_npy_view(payload))
        elif extension == "frame.npy":
            frames.append(_npy_view(payload))
        elif extension == "frame.png":
            frames.append(_decode_png(payload))
        elif extension == "json":
            metas.append(json.loads(bytes(payload)))
    if not (len(frames) == len(mels) == len(metas)):
        raise ValueError(f"shard {path} is inconsistent: {len(mels)} mels, {len(frames)} frames, {len(metas)} json")
    return frames, mels, metas


def load_split(paths: Sequence[Path], threads: int = 2) -> SplitArrays:
    """Read whole shards into contiguous arrays: one read per tar, no per-sample decode for .npy frames."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        parts = list(pool.map(_load_shard, [Path(p) for p in paths]))
    frames = [f for part in parts for f in part[0]]
    mels = [m for part in parts for m in part[1]]
    meta = [m for part in parts for m in part[2]]
    if not meta:
        return SplitArrays(np.zeros((0, 96, 96, 3), np.uint8), np.zeros((0, 100, 128), np.float16), [])
    return SplitArrays(frames=np.stack(frames), mels=np.stack(mels), meta=meta)
