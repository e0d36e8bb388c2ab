"""Training loops (paper §4.3, Algorithm 1) and what they share: results, precision, resumable state.

How a training step runs (plain or as CUDA graphs, the memory format, SGD's implementation; losses summed on
the device and read once an epoch) is fast_step.py's `GanStep` and `AutoencoderStep`.

Determinism: on the CPU the loops run under `torch.use_deterministic_algorithms(True)` (restored after), so
the same seed gives bit-identical weights, and a run killed after epoch E and resumed gives the weights of
an uninterrupted run (same torch build and thread count). On CUDA they enable cudnn.benchmark instead:
fast, not bit-reproducible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainResult:
    history: list[dict]  # one record per epoch, from epoch 1 (resumed runs include the earlier epochs)
    final_checkpoint: Path
    checkpoints: list[Path]
    resumed_from: int | None  # the epoch the run continued from, None when it started fresh


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left in place."""


# ---- config checks -----------------------------------------------------------------------------------------


def check_positive_int(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")


def check_positive_float(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ValueError(f"{owner}: {name} must be a positive number, got {value!r}")


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(choices)}, got {value!r}")


# Settings that change how fast a run goes, not what it computes (beyond float rounding): torch.compile, the
# step as CUDA graphs, the memory format, the SGD implementation (s2i_models/train/fast_step.py).
SPEED_OPTIONS = ("compile", "step", "memory_format", "sgd")
# ... and with `epochs`, the settings a run may resume across.
RUN_OPTIONS = ("epochs", *SPEED_OPTIONS)


def check_same_config(saved: dict, config: Any, path: Path) -> None:
    """Resuming is allowed when only `epochs` or speed options changed; otherwise say which fields differ."""
    current = asdict(config)
    differing = [
        f"{name}: {saved.get(name)!r} -> {current.get(name)!r}"
        for name in sorted(set(saved) | set(current))
        if name not in RUN_OPTIONS and saved.get(name) != current.get(name)
    ]
    if differing:
        raise ValueError(
            f"cannot resume from {path}: it was trained with other settings ({'; '.join(differing)}). Only "
            f"`epochs` and the speed options ({', '.join(SPEED_OPTIONS)}) may change between runs. Delete "
            f"{path.parent} to start over, or use another folder."
        )


def check_start(start: int, epochs: int, path: Path) -> None:
    if start > epochs:
        raise ValueError(
            f"{path} is at epoch {start}, past the requested {epochs} epochs: raise `epochs` to at least "
            f"{start}, or delete {path.parent} to train {epochs} epochs from scratch."
        )


def check_data(data: Any, needed: Iterable[str], what: str) -> None:
    missing = [name for name in needed if name not in data.fields]
    if missing:
        raise ValueError(f"{what} data lacks {', '.join(missing)} (it holds {', '.join(data.fields)})")
    if data.n_samples == 0:
        raise ValueError(f"{what} data is empty")


def check_finite(values: dict[str, float], epoch: int, what: str, last_good: str) -> None:
    bad = [f"{name} = {value}" for name, value in values.items() if not math.isfinite(value)]
    if bad:
        raise TrainingDiverged(
            f"{what} diverged in epoch {epoch}: {', '.join(bad)} (NaN or infinite). {last_good} Check the data "
            f"for non-finite values or lower the learning rate, then run again to resume from the checkpoint."
        )


# ---- precision, determinism, RNG -------------------------------------------------------------------------------


def device_type(device: str) -> str:
    return torch.device(device).type


def autocast(device: str, precision: str):
    """torch.autocast for bf16/fp16 on `device`; a no-op context for fp32."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device_type(device), dtype=dtype)


def grad_scaler(device: str, precision: str) -> torch.amp.GradScaler:
    """A GradScaler, enabled only for fp16 (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device_type(device), enabled=precision == "fp16")


@contextmanager
def training_mode(device: str) -> Iterator[None]:
    """CPU: deterministic algorithms (restored after). CUDA: cudnn.benchmark (fast, not bit-reproducible)."""
    if device_type(device) == "cpu":
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(before)
    else:
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = before


def rng_state(device: str) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device_type(device) == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, device: str) -> None:
    torch.set_rng_state(state["torch"])
    if device_type(device) == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- progress and timing ---------------------------------------------------------------------------------------


def batches_with_progress(data: Iterable, show: bool, description: str) -> Iterable:
    if not show:
        return data
    from tqdm.auto import tqdm

    return tqdm(data, desc=description, total=len(data), leave=False, unit="batch")


def epoch_bar(show: bool, start: int, epochs: int, description: str):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, initial=start, desc=description, unit="epoch")


def synchronize(device: str) -> None:
    if device_type(device) == "cuda":
        torch.cuda.synchronize()


class Stopwatch:
    def __init__(self, device: str) -> None:
        self.device = device
        self.start = time.perf_counter()

    def seconds(self) -> float:
        synchronize(self.device)
        return time.perf_counter() - self.start


OnEpoch = Callable[[dict], None] | None


# ---- live curves -----------------------------------------------------------------------------------------------


class EventLog:
    """TensorBoard event files in `<run folder>/tensorboard`, written as training goes (`s2i tensorboard`).

    Every numeric field of an epoch's record becomes a scalar at that epoch (`<prefix>/<field>`), and
    image grids are added at checkpoints. On a resumed run, events after the resume point (written by the
    run that was killed after its last checkpoint) are purged, so each epoch appears once.
    """

    def __init__(self, run_dir: Path, resumed_at: int, prefix: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(run_dir) / "tensorboard"
        self.prefix = prefix
        self.writer = SummaryWriter(str(self.folder), purge_step=resumed_at + 1 if resumed_at else None)

    def epoch(self, record: dict, extra: dict | None = None) -> None:
        step = int(record["epoch"])
        for key, value in {**record, **(extra or {})}.items():
            if key != "epoch" and isinstance(value, int | float) and not isinstance(value, bool):
                if math.isfinite(value):
                    self.writer.add_scalar(f"{self.prefix}/{key}", value, step)
        self.writer.flush()

    def images(self, tag: str, images: torch.Tensor, epoch: int) -> None:
        """(N, 3, H, W) images in [-1, 1] as one grid."""
        self.writer.add_images(f"{self.prefix}/{tag}", (images.detach().float().cpu() + 1) / 2, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
