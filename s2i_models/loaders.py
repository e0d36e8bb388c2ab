"""Training data: a split held in (device) memory, or streamed from WebDataset shards when it does not fit.

Both loaders yield the same batches: dicts of device tensors in their stored dtypes
  "frames"      (B, 96, 96, 3) uint8 RGB
  "mels"        (B, 100, 128) float16, time x mel, NOT scaled
  "embeddings"  (B, dim) float32 (frozen-encoder embeddings, in the split's shard order)
with only the fields the loader holds. The training loops turn them into network inputs with
`spectrogram_batch` and `image_batch`, on the device, so the host-to-device traffic is uint8/fp16.

Both shuffle with a seeded, checkpointable state (`state()` / `load_state()`), so a resumed run sees the
same batch order as an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

FIELDS = ("frames", "mels", "embeddings")


# ---- network inputs ----------------------------------------------------------------------------------------


def spectrogram_batch(mels_u: torch.Tensor, stats: dict) -> torch.Tensor:
    """(B, 100, 128) unscaled log-mels (time x mel), any float dtype -> (B, 1, 128, 100) float32 in [-1, 1].

    Scaling is the training split's min-max (`spectrogram_stats`), clipped; NaN stays NaN (so a broken input
    is caught by the loss check instead of being hidden).
    """
    low, high = float(stats["min"]), float(stats["max"])
    scaled = 2.0 * (mels_u.float() - low) / max(high - low, 1e-6) - 1.0  # (B, 100, 128)
    return scaled.clamp(-1.0, 1.0).transpose(1, 2).unsqueeze(1).contiguous()  # (B, 1, 128, 100)


def image_batch(frames: torch.Tensor) -> torch.Tensor:
    """(B, 96, 96, 3) uint8 RGB -> (B, 3, 96, 96) float32 in [-1, 1]."""
    return (frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0).contiguous()


def images_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, 96, 96) in [-1, 1] -> (B, 96, 96, 3) uint8 RGB, on the same device."""
    pixels = ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round()  # (B, 3, 96, 96)
    return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


# ---- memory ------------------------------------------------------------------------------------------------


def _available_host_bytes() -> int:
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits_in_memory(n_samples: int, bytes_per_sample: int, device: str, fraction: float = 0.5) -> bool:
    """Whether n_samples x bytes_per_sample takes at most `fraction` of the free memory of `device`
    (free GPU memory for cuda, available host memory otherwise). Frames + mels are 53,248 bytes a sample."""
    needed = n_samples * bytes_per_sample
    if str(device).startswith("cuda"):
        free, _total = torch.cuda.mem_get_info(torch.device(device))
    else:
        free = _available_host_bytes()
    return needed <= fraction * free


def _as_tensor(values, dtype: torch.dtype, name: str, device: str) -> torch.Tensor:
    tensor = torch.as_tensor(values) if isinstance(values, np.ndarray) else values
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"InMemoryBatches: {name} must be a tensor or numpy array, got {type(values).__name__}"
        )
    if name == "frames" and tensor.dtype != torch.uint8:
        raise TypeError(f"InMemoryBatches: frames must be uint8 (N, 96, 96, 3), got {tensor.dtype}")
    return tensor.to(device=device, dtype=dtype)


def _check_batch_size(batch_size: int, owner: str) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{owner}: batch_size must be a positive int, got {batch_size!r}")


def _batch_count(n_samples: int, batch_size: int, drop_last: bool) -> int:
    return n_samples // batch_size if drop_last else math.ceil(n_samples / batch_size)


# ---- a split in memory ----------------------------------------------------------------------------------------


class InMemoryBatches:
    """A split held on `device`: uint8 frames, float16 mels, float32 embeddings (any of them optional).

    Each `iter()` is one epoch in a fresh seeded order (a torch.Generator on the CPU; `shuffle=False`
    keeps the stored order, for validation). `len()` = batches per epoch.
    """

    def __init__(
        self,
        *,
        device: str,
        frames=None,
        mels=None,
        embeddings=None,
        batch_size: int = 64,
        seed: int = 0,
        drop_last: bool = False,
        shuffle: bool = True,
    ) -> None:
        _check_batch_size(batch_size, "InMemoryBatches")
        given = {"frames": frames, "mels": mels, "embeddings": embeddings}
        dtypes = {"frames": torch.uint8, "mels": torch.float16, "embeddings": torch.float32}
        self.tensors = {
            name: _as_tensor(values, dtypes[name], name, device)
            for name, values in given.items()
            if values is not None
        }
        if not self.tensors:
            raise ValueError("InMemoryBatches: give at least one of frames, mels, embeddings")
        lengths = {name: len(tensor) for name, tensor in self.tensors.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"InMemoryBatches: fields have different numbers of samples: {lengths}")
        self.n_samples = next(iter(lengths.values()))
        self.device, self.batch_size, self.drop_last, self.shuffle = device, batch_size, drop_last, shuffle
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.tensors)

    def __len__(self) -> int:
        return _batch_count(self.n_samples, self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.shuffle:
            order = torch.randperm(self.n_samples, generator=self.generator)  # drawn now: state() = after it
        else:
            order = torch.arange(self.n_samples)
        order = order.to(self.device)
        for batch in range(len(self)):
            indices = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield {name: tensor[indices] for name, tensor in self.tensors.items()}

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


# ---- a split streamed from shards -----------------------------------------------------------------------------


def _decode_npy(payload: bytes) -> np.ndarray:
    return np.load(io.BytesIO(payload), allow_pickle=False)


def _decode_png(payload: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))


def _count_samples(path: str) -> int:
    with tarfile.open(path) as tar:
        return sum(1 for member in tar if member.name.endswith(".json"))


class ShardStream:
    """A split streamed from WebDataset shards when it does not fit in memory; same batches as InMemoryBatches.

    Samples are `<key>.mel.npy`, `<key>.frame.npy` or `<key>.frame.png`, `<key>.json`. Each epoch reads the
    shards in a seeded order and shuffles samples through a seeded buffer of `buffer_size` (one Python
    `random.Random` per epoch, seeded with (seed, epoch), so `state()` is just the epoch counter).
    `embeddings` (N, dim) are matched to samples by their position in the shards' listed order (the order
    `load_split` and the embeddings asset use); `n_samples` and that position come from the tar headers.
    """

    def __init__(
        self,
        shards: Sequence[Path | str],
        *,
        device: str,
        fields: Sequence[str] = ("frames", "mels"),
        embeddings=None,
        batch_size: int = 64,
        seed: int = 0,
        drop_last: bool = False,
        shuffle: bool = True,
        buffer_size: int = 2000,
    ) -> None:
        _check_batch_size(batch_size, "ShardStream")
        self.urls = [str(path) for path in shards]
        if not self.urls:
            raise ValueError("ShardStream: no shards given")
        fields = tuple(fields)
        unknown = [name for name in fields if name not in ("frames", "mels")]
        if unknown:
            raise ValueError(
                f"ShardStream: fields must be among frames, mels (got {unknown}); pass embeddings="
            )
        self.device, self.batch_size, self.drop_last, self.shuffle = device, batch_size, drop_last, shuffle
        self.buffer_size, self.seed, self.epoch = buffer_size, seed, 0
        counts = [_count_samples(url) for url in self.urls]
        self.offsets = dict(zip(self.urls, np.cumsum([0, *counts[:-1]]).tolist(), strict=True))
        self.n_samples = sum(counts)
        self.embeddings = None
        if embeddings is not None:
            self.embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
            if len(self.embeddings) != self.n_samples:
                raise ValueError(
                    f"ShardStream: {len(self.embeddings)} embeddings for {self.n_samples} samples in the shards"
                )
            fields = (*fields, "embeddings")
        self._fields = fields

    @property
    def fields(self) -> tuple[str, ...]:
        return self._fields

    def __len__(self) -> int:
        return _batch_count(self.n_samples, self.batch_size, self.drop_last)

    def _samples(self, urls: list[str]) -> Iterator[dict]:
        import webdataset as wds

        seen: dict[str, int] = {}
        dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False, nodesplitter=None)
        for sample in dataset:
            url = sample["__url__"]
            position = self.offsets[url] + seen.get(url, 0)
            seen[url] = seen.get(url, 0) + 1
            item: dict = {"position": position, "key": sample["__key__"]}
            if "frames" in self._fields:
                if "frame.npy" in sample:
                    item["frames"] = _decode_npy(sample["frame.npy"])
                elif "frame.png" in sample:
                    item["frames"] = _decode_png(sample["frame.png"])
                else:
                    raise ValueError(f"ShardStream: sample {sample['__key__']} in {url} has no frame.npy/png")
            if "mels" in self._fields:
                if "mel.npy" not in sample:
                    raise ValueError(f"ShardStream: sample {sample['__key__']} in {url} has no mel.npy")
                item["mels"] = _decode_npy(sample["mel.npy"])
            if "json" in sample:
                item["meta"] = json.loads(sample["json"])
            yield item

    def _shuffled(self, items: Iterator[dict], rng: random.Random) -> Iterator[dict]:
        buffer: list[dict] = []
        for item in items:
            buffer.append(item)
            if len(buffer) >= self.buffer_size:
                index = rng.randrange(len(buffer))
                buffer[index], buffer[-1] = buffer[-1], buffer[index]
                yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer

    def _collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        if "frames" in self._fields:
            batch["frames"] = torch.from_numpy(np.stack([item["frames"] for item in items])).to(self.device)
        if "mels" in self._fields:
            mels = np.stack([item["mels"] for item in items]).astype(np.float16, copy=False)
            batch["mels"] = torch.from_numpy(mels).to(self.device)
        if self.embeddings is not None:
            positions = torch.tensor([item["position"] for item in items])
            batch["embeddings"] = self.embeddings[positions].to(self.device)
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)  # noqa: S311 (shuffling, not security)
        self.epoch += 1
        urls = list(self.urls)
        if self.shuffle:
            rng.shuffle(urls)
        items = self._shuffled(self._samples(urls), rng) if self.shuffle else self._samples(urls)
        pending: list[dict] = []
        for item in items:
            pending.append(item)
            if len(pending) == self.batch_size:
                yield self._collate(pending)
                pending = []
        if pending and not self.drop_last:
            yield self._collate(pending)

    def reseed(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0

    def state(self) -> torch.Tensor:
        return torch.tensor([self.seed, self.epoch], dtype=torch.int64)

    def load_state(self, state: torch.Tensor) -> None:
        self.seed, self.epoch = int(state[0]), int(state[1])
