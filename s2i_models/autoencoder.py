"""Audio autoencoder (paper §4.2, Figure 2; SPEC §3): log-mel spectrogram <-> audio embedding.

26 convolutional layers, mirrored: 13 in the encoder (Conv2d, no padding) and 13 in the decoder
(ConvTranspose2d, no padding), each followed by batch norm. ReLU inside; tanh on the embedding and on the
reconstruction. Dropout2d after every inner decoder layer softens the latent space (§5.2.2).
Spectrograms enter as (B, 1, 128, 100): one channel, mel x time, scaled to [-1, 1].

Shape comments give the reference width (width=1.0) at dim f; `width` scales every hidden channel count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from s2i_models.init import check_dim, check_width, scaled, xavier_init

SPECTROGRAM_SHAPE = (1, 128, 100)  # (channels, mel bands, time frames)


@dataclass(frozen=True)
class AutoencoderArch:
    """Everything needed to rebuild an autoencoder (store it beside the weights)."""

    dim: int  # embedding size f: 128, 256, 512, 1024 or 2048 in the paper
    width: float = 1.0  # multiplier on every hidden channel count

    def __post_init__(self) -> None:
        check_dim(self.dim, "AutoencoderArch")
        check_width(self.width, "AutoencoderArch")


def _encoder_layer(
    c_in: int, c_out: int, kernel: tuple[int, int], stride: int, last: bool = False
) -> nn.Sequential:
    """Conv (no padding) + BN + ReLU, or + tanh on the embedding layer."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride),
        nn.BatchNorm2d(c_out),
        nn.Tanh() if last else nn.ReLU(inplace=True),
    )


def _decoder_layer(
    c_in: int, c_out: int, kernel: tuple[int, int], stride: int, dropout: float
) -> nn.Sequential:
    """ConvTranspose (no padding) + BN + ReLU + Dropout2d: an inner decoder layer."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel, stride),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Dropout2d(dropout),
    )


class AudioEncoder(nn.Module):
    """(B, 1, 128, 100) spectrogram -> (B, dim) embedding in [-1, 1]."""

    def __init__(self, dim: int, width: float = 1.0) -> None:
        super().__init__()
        check_dim(dim, "AudioEncoder")
        check_width(width, "AudioEncoder")
        self.dim = dim

        def c(n: int) -> int:
            return scaled(n, width)

        self.layers = nn.Sequential(  # (B, 1, 128, 100)
            _encoder_layer(1, c(80), (7, 5), 2),  # (B, 80, 61, 48)
            _encoder_layer(c(80), c(176), (5, 3), 2),  # (B, 176, 29, 23)
            _encoder_layer(c(176), c(192), (5, 3), 1),  # (B, 192, 25, 21)
            _encoder_layer(c(192), c(224), (5, 3), 1),  # (B, 224, 21, 19)
            _encoder_layer(c(224), c(272), (5, 3), 1),  # (B, 272, 17, 17)
            _encoder_layer(c(272), c(304), (3, 3), 1),  # (B, 304, 15, 15)
            _encoder_layer(c(304), c(352), (3, 3), 1),  # (B, 352, 13, 13)
            _encoder_layer(c(352), c(416), (3, 3), 1),  # (B, 416, 11, 11)
            _encoder_layer(c(416), c(512), (3, 3), 1),  # (B, 512, 9, 9)
            _encoder_layer(c(512), c(512), (3, 3), 1),  # (B, 512, 7, 7)
            _encoder_layer(c(512), c(512), (3, 3), 1),  # (B, 512, 5, 5)
            _encoder_layer(c(512), c(512), (3, 3), 1),  # (B, 512, 3, 3)
            _encoder_layer(c(512), dim, (3, 3), 1, last=True),  # (B, f, 1, 1)
        )

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if tuple(spec.shape[1:]) != SPECTROGRAM_SHAPE:
            raise ValueError(
                f"AudioEncoder: expected spectrograms of shape (B, {', '.join(map(str, SPECTROGRAM_SHAPE))}) "
                f"(channel, mel, time), got {tuple(spec.shape)}; a (B, 100, 128) time x mel batch needs "
                "spec.transpose(1, 2).unsqueeze(1)"
            )
        return self.layers(spec).flatten(1)  # (B, f)


class AudioDecoder(nn.Module):
    """(B, dim) embedding -> (B, 1, 128, 100) spectrogram in [-1, 1]: the encoder's mirror."""

    def __init__(self, dim: int, width: float = 1.0) -> None:
        super().__init__()
        check_dim(dim, "AudioDecoder")
        check_width(width, "AudioDecoder")
        self.dim = dim

        def c(n: int) -> int:
            return scaled(n, width)

        self.layers = nn.Sequential(  # (B, f, 1, 1)
            _decoder_layer(dim, c(512), (3, 3), 1, 0.15),  # (B, 512, 3, 3)
            _decoder_layer(c(512), c(512), (3, 3), 1, 0.14),  # (B, 512, 5, 5)
            _decoder_layer(c(512), c(512), (3, 3), 1, 0.13),  # (B, 512, 7, 7)
            _decoder_layer(c(512), c(512), (3, 3), 1, 0.12),  # (B, 512, 9, 9)
            _decoder_layer(c(512), c(416), (3, 3), 1, 0.11),  # (B, 416, 11, 11)
            _decoder_layer(c(416), c(352), (3, 3), 1, 0.10),  # (B, 352, 13, 13)
            _decoder_layer(c(352), c(304), (3, 3), 1, 0.10),  # (B, 304, 15, 15)
            _decoder_layer(c(304), c(272), (3, 3), 1, 0.09),  # (B, 272, 17, 17)
            _decoder_layer(c(272), c(224), (5, 3), 1, 0.08),  # (B, 224, 21, 19)
            _decoder_layer(c(224), c(192), (5, 3), 1, 0.07),  # (B, 192, 25, 21)
            _decoder_layer(c(192), c(176), (5, 3), 1, 0.06),  # (B, 176, 29, 23)
            _decoder_layer(c(176), c(80), (5, 4), 2, 0.05),  # (B, 80, 61, 48)
            nn.ConvTranspose2d(c(80), 1, (8, 6), 2),  # (B, 1, 128, 100)
            nn.BatchNorm2d(1),
            nn.Tanh(),
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        if embedding.ndim != 2 or embedding.shape[1] != self.dim:
            raise ValueError(
                f"AudioDecoder: expected embeddings of shape (B, {self.dim}), got {tuple(embedding.shape)}"
            )
        return self.layers(embedding[:, :, None, None])  # (B, 1, 128, 100)


class AudioAutoencoder(nn.Module):
    """Encoder + decoder. `forward` gives (reconstruction, embedding); `encode` only the embedding.

    After training the encoder is used frozen, in eval mode (no dropout sits in the encoder, and eval-mode
    batch norm makes an embedding independent of the rest of its batch).
    """

    def __init__(self, dim: int, width: float = 1.0) -> None:
        super().__init__()
        self.arch = AutoencoderArch(dim, width)
        self.encoder = AudioEncoder(dim, width)
        self.decoder = AudioDecoder(dim, width)
        self.apply(xavier_init)

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(spec)  # (B, f)
        return self.decoder(embedding), embedding  # (B, 1, 128, 100), (B, f)

    def encode(self, spec: torch.Tensor) -> torch.Tensor:
        return self.encoder(spec)  # (B, f) in [-1, 1]
