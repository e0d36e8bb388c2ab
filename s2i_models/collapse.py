"""Has a generator learned to draw from sounds, or collapsed? The measures behind every GAN's blocking check.

A falling pixel loss does not rule out collapse: a generator that draws one blurry picture whatever the sound
also lowers it. Two measures that a collapsed generator cannot pass:

- **Sound spread**: translations of different test sounds must differ. Measured with MC dropout off (dropout
  alone makes pictures differ) and batch norm in eval mode, as the per-pixel standard deviation across
  sounds, averaged over pixels, relative to the same for the real test frames: 0 for a generator that ignores
  its input, about 1 for one that draws pictures as varied as the real ones.
- **Pixel loss against the mean image**: the best constant picture under the pixel loss (Eq. 3) is the
  training frames' per-pixel mean; its loss is the frames' per-pixel variance. A generator that learned from
  its input must end clearly below it (`LOSS_MARGIN`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# Thresholds, from 17 demo-size GANs (dims 128-2048, 5 seeds, 30 epochs; README, "The demo's settings"):
# generators that left the mean-image plateau ended at 0.58-0.75 of the mean image's loss with a spread of
# 0.44-0.73; those still on it at 1.02-1.04 with a spread of 0.03-0.09; two leaving it late at 0.82-0.93
# with a spread of 0.25-0.43 (not yet learned: they fail on the loss).
MIN_SOUND_SPREAD = 0.1
LOSS_MARGIN = 0.2  # the pixel loss must end at most (1 - LOSS_MARGIN) x the mean image's


def mean_image_loss(frame_chunks: Iterable[np.ndarray]) -> float:
    """The pixel loss (MSE in the networks' [-1, 1] scale) of always drawing the frames' per-pixel mean.

    `frame_chunks` yields (N, 96, 96, 3) uint8 arrays (a split in pieces, so a large one need not fit in memory).
    """
    count, total, squares = 0, None, None
    for chunk in frame_chunks:
        values = chunk.astype(np.float64) / 127.5 - 1.0
        total = values.sum(axis=0) if total is None else total + values.sum(axis=0)
        squares = (values**2).sum(axis=0) if squares is None else squares + (values**2).sum(axis=0)
        count += len(chunk)
    if not count:
        raise ValueError("mean_image_loss: no frames")
    mean = total / count
    return float(np.maximum(squares / count - mean**2, 0.0).mean())


def _dropout_off(generator: nn.Module) -> list[tuple[nn.Module, bool]]:
    switched = []
    for module in generator.modules():
        if hasattr(module, "always_on"):
            switched.append((module, module.always_on))
            module.always_on = False
    return switched


@torch.no_grad()
def sound_spread(
    generator: nn.Module,
    embeddings: np.ndarray,
    real_frames: np.ndarray,
    device: str = "cpu",
    batch_size: int = 128,
) -> float:
    """Spread of the translations of `embeddings` across sounds, relative to that of `real_frames`.

    (N, dim) float embeddings and (M, 96, 96, 3) uint8 frames, N and M >= 2. The generator is used in eval mode
    with its MC dropout off, and left as it was found.
    """
    if len(embeddings) < 2 or len(real_frames) < 2:
        raise ValueError("sound_spread: needs at least two sounds and two real frames")
    was_training = generator.training
    switched = _dropout_off(generator.eval())
    try:
        images = torch.cat(
            [
                generator(torch.as_tensor(embeddings[start : start + batch_size], device=device).float())
                .float()
                .cpu()
                for start in range(0, len(embeddings), batch_size)
            ]
        )  # (N, 3, 96, 96) in [-1, 1]
    finally:
        for module, always_on in switched:
            module.always_on = always_on
        generator.train(was_training)
    real = torch.from_numpy(real_frames).float() / 127.5 - 1.0
    real_spread = float(real.std(dim=0).mean())
    if real_spread == 0.0:
        raise ValueError("sound_spread: the real frames are all identical")
    return float(images.std(dim=0).mean()) / real_spread


@dataclass(frozen=True)
class CollapseVerdict:
    pixel_loss: float  # the training pixel loss at the end (mean of the last epochs)
    mean_image_loss: float
    sound_spread: float

    @property
    def loss_ratio(self) -> float:
        return self.pixel_loss / self.mean_image_loss if self.mean_image_loss > 0 else float("inf")

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.loss_ratio <= 1.0 - LOSS_MARGIN:
            found.append(
                f"pixel loss {self.pixel_loss:.4f} is {self.loss_ratio:.2f} x that of always drawing the training "
                f"set's mean image ({self.mean_image_loss:.4f}); a generator that learned ends below "
                f"{1.0 - LOSS_MARGIN:.2f} x"
            )
        if not self.sound_spread >= MIN_SOUND_SPREAD:
            found.append(
                f"translations of different test sounds barely differ (spread {self.sound_spread:.3f} of the real "
                f"frames', at least {MIN_SOUND_SPREAD} expected): the generator draws the same picture whatever "
                "the sound"
            )
        return found

    @property
    def collapsed(self) -> bool:
        return bool(self.problems)


def final_pixel_loss(pixel_losses: list[float], epochs: int = 5) -> float:
    """The training pixel loss at the end: the mean of the last `epochs` epochs (one epoch's mean is noisy)."""
    if not pixel_losses:
        raise ValueError("final_pixel_loss: no epochs")
    tail = pixel_losses[-epochs:]
    return float(sum(tail) / len(tail))
