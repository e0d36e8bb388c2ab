"""Informativity classifier (paper §5.3; SPEC §3, §5): is a synthetic 96x96 image informative of its class?

One binary classifier per sound class: 5 convs + 2 fully connected layers; BN, ReLU and dropout after every
layer but the last; log-softmax output, so train it with `nn.NLLLoss`. Class 1 = informative.
The paper does not give the dropout rate; 0.25 everywhere is this project's choice (`ClassifierArch.dropout`).
A tuple of six rates (five convs, then the hidden FC layer) holds other schedules: the authors' released
classifiers used 0.1, 0.2, 0.3, 0.4, 0.5 and 0.5 (`s2i_models.authors`). Dropout acts in train mode only.

Shape comments give the reference width (width=1.0); `width` scales every hidden channel/feature count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2i_models.init import check_width, scaled, xavier_init

IMAGE_SHAPE = (3, 96, 96)
NUM_CLASSES = 2  # 0 = non-informative, 1 = informative
DROPOUT_LAYERS = 6  # after conv1-5 and after the hidden FC layer


@dataclass(frozen=True)
class ClassifierArch:
    """Everything needed to rebuild a classifier (store it beside the weights)."""

    width: float = 1.0  # multiplier on every hidden channel/feature count
    dropout: float | tuple[float, ...] = 0.25  # one rate, or six (conv1-5, FC); train mode only

    def __post_init__(self) -> None:
        check_width(self.width, "ClassifierArch")
        if isinstance(self.dropout, list):  # a checkpoint stores the tuple as a list
            object.__setattr__(self, "dropout", tuple(self.dropout))
        rates = self.rates()
        if len(rates) != DROPOUT_LAYERS or not all(0 <= p < 1 for p in rates):
            raise ValueError(
                f"ClassifierArch: dropout must be one rate or {DROPOUT_LAYERS} rates (conv1-5, FC), "
                f"each in [0, 1); got {self.dropout!r}"
            )

    def rates(self) -> tuple[float, ...]:
        """The dropout rate after each of conv1-5 and the hidden FC layer."""
        if isinstance(self.dropout, tuple):
            return self.dropout
        return (self.dropout,) * DROPOUT_LAYERS


def _conv(c_in: int, c_out: int, kernel: int, dropout: float) -> nn.Sequential:
    """Conv (stride 2, no padding) + BN + ReLU + Dropout2d."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, 2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout),
    )


class InformativityClassifier(nn.Module):
    """(B, 3, 96, 96) images in [-1, 1] -> (B, 2) log-probabilities (non-informative, informative)."""

    def __init__(self, width: float = 1.0, dropout: float | tuple[float, ...] = 0.25) -> None:
        super().__init__()
        self.arch = ClassifierArch(width, dropout)

        def c(n: int) -> int:
            return scaled(n, width)

        p = self.arch.rates()
        self.features = nn.Sequential(  # (B, 3, 96, 96)
            _conv(3, c(12), 5, p[0]),  # (B, 12, 46, 46)
            _conv(c(12), c(32), 3, p[1]),  # (B, 32, 22, 22)
            _conv(c(32), c(32), 3, p[2]),  # (B, 32, 10, 10)
            _conv(c(32), c(32), 3, p[3]),  # (B, 32, 4, 4)
            _conv(c(32), c(32), 3, p[4]),  # (B, 32, 1, 1)
            nn.Flatten(),  # (B, 32)
        )
        self.head = nn.Sequential(  # (B, 32)
            nn.Linear(c(32), c(32)),  # (B, 32)
            nn.BatchNorm1d(c(32)),
            nn.ReLU(inplace=True),
            nn.Dropout(p[5]),
            nn.Linear(c(32), NUM_CLASSES),  # (B, 2)
        )
        self.apply(xavier_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(
                f"InformativityClassifier: expected images of shape (B, 3, 96, 96), got {tuple(images.shape)}"
            )
        return F.log_softmax(self.head(self.features(images)), dim=1)  # (B, 2)
