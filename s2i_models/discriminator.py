"""Conditional discriminator (paper §4.2, Figure 4; SPEC §3): (image, audio embedding) -> RC-score.

Built like the audio encoder but on 96x96 RGB images: 12 bias-free convs, each + BN + ReLU + Dropout2d(0.5),
then the last conv reads the image features concatenated with the audio embedding, reshaped to
(dim/4, 2, 2), and outputs one value per sample: BN(1), tanh -> the realness-and-coherence score in [-1, 1].

Note: in train mode the final BatchNorm2d(1) normalises the scores across the batch, so a batch of only
real or only synthetic images cannot be pushed to one end on its own; mix real and synthetic samples in
one forward pass when training (the paper's "balanced batches"). A batch of 1 works only in eval mode.

Shape comments give the reference width (width=1.0) at dim f; `width` scales every hidden channel count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from s2i_models.init import check_dim, check_width, scaled, xavier_init

IMAGE_SHAPE = (3, 96, 96)


@dataclass(frozen=True)
class DiscriminatorArch:
    """Everything needed to rebuild a discriminator (store it beside the weights)."""

    dim: int  # embedding size f; must be divisible by 4 (it becomes a (f/4, 2, 2) map)
    width: float = 1.0  # multiplier on every hidden channel count
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_dim(self.dim, "DiscriminatorArch")
        check_width(self.width, "DiscriminatorArch")
        if self.dim % 4:
            raise ValueError(
                f"Discriminator: dim={self.dim} is not divisible by 4; the audio embedding is reshaped to "
                "(dim/4, 2, 2) to condition the last conv, so choose a dim such as 128, 256, 512, 1024 or 2048"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"DiscriminatorArch: dropout must be in [0, 1), got {self.dropout!r}")


def _layer(c_in: int, c_out: int, kernel: int, stride: int, dropout: float) -> nn.Sequential:
    """Bias-free conv (no padding) + BN + ReLU + Dropout2d: an inner layer."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout),
    )


class Discriminator(nn.Module):
    """(B, 3, 96, 96) images in [-1, 1] + (B, dim) embeddings -> (B,) RC-scores in [-1, 1]."""

    def __init__(self, dim: int, width: float = 1.0, dropout: float = 0.5) -> None:
        super().__init__()
        self.arch = DiscriminatorArch(dim, width, dropout)
        self.dim = dim

        def c(n: int) -> int:
            return scaled(n, width)

        p = dropout
        self.features = nn.Sequential(  # (B, 3, 96, 96)
            _layer(3, c(96), 5, 2, p),  # (B, 96, 46, 46)
            _layer(c(96), c(192), 3, 2, p),  # (B, 192, 22, 22)
            _layer(c(192), c(192), 3, 1, p),  # (B, 192, 20, 20)
            _layer(c(192), c(208), 3, 1, p),  # (B, 208, 18, 18)
            _layer(c(208), c(224), 3, 1, p),  # (B, 224, 16, 16)
            _layer(c(224), c(240), 3, 1, p),  # (B, 240, 14, 14)
            _layer(c(240), c(256), 3, 1, p),  # (B, 256, 12, 12)
            _layer(c(256), c(256), 3, 1, p),  # (B, 256, 10, 10)
            _layer(c(256), c(256), 3, 1, p),  # (B, 256, 8, 8)
            _layer(c(256), c(256), 3, 1, p),  # (B, 256, 6, 6)
            _layer(c(256), c(256), 3, 1, p),  # (B, 256, 4, 4)
            _layer(c(256), c(256), 3, 1, p),  # (B, 256, 2, 2)
        )
        self.score = nn.Sequential(  # (B, 256 + f/4, 2, 2): image features + audio embedding
            nn.Conv2d(c(256) + dim // 4, 1, 2, bias=False),  # (B, 1, 1, 1)
            nn.BatchNorm2d(1),
            nn.Tanh(),
        )
        self.apply(xavier_init)

    def forward(self, images: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(
                f"Discriminator: expected images of shape (B, 3, 96, 96), got {tuple(images.shape)}"
            )
        if embedding.shape != (images.shape[0], self.dim):
            raise ValueError(
                f"Discriminator: expected embeddings of shape ({images.shape[0]}, {self.dim}) to go with "
                f"{images.shape[0]} images, got {tuple(embedding.shape)}"
            )
        h = self.features(images)  # (B, 256, 2, 2)
        condition = embedding.reshape(-1, self.dim // 4, 2, 2)  # (B, f/4, 2, 2)
        return self.score(torch.cat([h, condition], dim=1)).flatten()  # (B,)
