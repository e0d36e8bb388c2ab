"""Generators (paper §4.2, Figures 3 and 6; SPEC §3): audio embedding (B, dim) -> image (B, 3, 96, 96).

`DenseGenerator` is the paper's 25-layer densely connected generator: 7 transitions (ConvTranspose2d, each
+ BN + ReLU + Dropout2d, the last + BN + tanh) and 6 dense blocks of 3 convs (k3 s1 p1, each + BN + ReLU).
`SequentialGenerator` is the paper's 13-layer sequential baseline (Figure 6); the paper gives no widths
for it, so it is built here as the dense generator's 7 transitions with one conv per stage in place of a
dense block, on the transitions' channel schedule.

There is no noise input: dropout kept on at test time (Monte Carlo dropout, §4.2) is the only randomness,
and it is what makes repeated translations of one sound differ. `mc_dropout=True` (the paper's setting)
keeps the Dropout2d layers active in eval mode; set `generator.mc_dropout = False` for deterministic eval.

Shape comments give the reference width (width=1.0) at dim f; `width` scales every hidden channel count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from s2i_models.init import check_dim, check_width, scaled, xavier_init

IMAGE_SHAPE = (3, 96, 96)


@dataclass(frozen=True)
class GeneratorArch:
    """Everything needed to rebuild a generator (store it beside the weights)."""

    dim: int  # embedding size f
    width: float = 1.0  # multiplier on every hidden channel count
    mc_dropout: bool = True  # dropout stays on in eval mode
    kind: str = "dense"  # "dense" (25 layers) or "sequential" (13 layers)

    def __post_init__(self) -> None:
        check_dim(self.dim, "GeneratorArch")
        check_width(self.width, "GeneratorArch")
        if self.kind not in GENERATORS:
            raise ValueError(f"GeneratorArch: kind must be one of {sorted(GENERATORS)}, got {self.kind!r}")

    def build(self) -> DenseGenerator | SequentialGenerator:
        return GENERATORS[self.kind](self.dim, self.width, self.mc_dropout)


class MCDropout2d(nn.Dropout2d):
    """Dropout2d that stays active in eval mode while `always_on` is set (Monte Carlo dropout)."""

    def __init__(self, p: float, always_on: bool = True) -> None:
        super().__init__(p)
        self.always_on = always_on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout2d(x, self.p, self.training or self.always_on, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, always_on={self.always_on}"


def _transition(
    c_in: int, c_out: int, kernel: int, stride: int, padding: int, dropout: float
) -> nn.Sequential:
    """ConvTranspose2d + BN + ReLU + (MC) Dropout2d: upsamples between stages."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        MCDropout2d(dropout),
    )


def _output_transition(c_in: int) -> nn.Sequential:
    """The last transition, 48x48 -> 96x96 RGB: ConvTranspose2d + BN + tanh."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, IMAGE_SHAPE[0], 4, 2, 1),
        nn.BatchNorm2d(IMAGE_SHAPE[0]),
        nn.Tanh(),
    )


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    """Conv2d k3 s1 p1 + BN + ReLU: keeps the spatial size."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class DenseBlock(nn.Module):
    """Three convs: layer 2 reads layer 1, layer 3 reads concat(l1, l2); out = concat(l1, l2, l3)."""

    def __init__(self, c_in: int, channels: Sequence[int]) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.layer1 = _conv(c_in, c1)
        self.layer2 = _conv(c1, c2)
        self.layer3 = _conv(c1 + c2, c3)
        self.out_channels = c1 + c2 + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1 = self.layer1(x)  # (B, c1, H, W)
        l2 = self.layer2(l1)  # (B, c2, H, W)
        l3 = self.layer3(torch.cat([l1, l2], dim=1))  # (B, c3, H, W)
        return torch.cat([l1, l2, l3], dim=1)  # (B, c1 + c2 + c3, H, W)


class _Generator(nn.Module):
    """What both generators share: the embedding enters as a 1x1 map; the MC-dropout switch."""

    layers: nn.Sequential

    def __init__(self, dim: int, width: float, mc_dropout: bool, kind: str) -> None:
        super().__init__()
        self.arch = GeneratorArch(dim, width, mc_dropout, kind)
        self.dim = dim

    @property
    def mc_dropout(self) -> bool:
        """True: the Dropout2d layers stay on in eval mode too. Settable."""
        return self._mc_dropout

    @mc_dropout.setter
    def mc_dropout(self, on: bool) -> None:
        self._mc_dropout = bool(on)
        self.arch = replace(self.arch, mc_dropout=self._mc_dropout)
        for module in self.modules():
            if isinstance(module, MCDropout2d):
                module.always_on = self._mc_dropout

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        if embedding.ndim != 2 or embedding.shape[1] != self.dim:
            raise ValueError(
                f"{type(self).__name__}: expected embeddings of shape (B, {self.dim}), got {tuple(embedding.shape)}"
            )
        return self.layers(embedding[:, :, None, None])  # (B, 3, 96, 96) in [-1, 1]


class DenseGenerator(_Generator):
    """The paper's 25-layer densely connected generator (Figure 3)."""

    def __init__(self, dim: int, width: float = 1.0, mc_dropout: bool = True) -> None:
        super().__init__(dim, width, mc_dropout, "dense")

        def c(n: int) -> int:
            return scaled(n, width)

        b1 = DenseBlock(c(512), [c(512), c(512), c(512)])
        b2 = DenseBlock(c(512), [c(512), c(416), c(352)])
        b3 = DenseBlock(c(352), [c(304), c(256), c(224)])
        b4 = DenseBlock(c(224), [c(192), c(176), c(160)])
        b5 = DenseBlock(c(160), [c(144), c(128), c(112)])
        b6 = DenseBlock(c(112), [c(96), c(80), c(64)])
        self.layers = nn.Sequential(  # (B, f, 1, 1)
            _transition(dim, c(512), 2, 1, 0, 0.15),  # T0 (B, 512, 2, 2)
            b1,  # (B, 1536, 2, 2)
            _transition(b1.out_channels, c(512), 3, 1, 0, 0.13),  # T1 (B, 512, 4, 4)
            b2,  # (B, 1280, 4, 4)
            _transition(b2.out_channels, c(352), 3, 1, 0, 0.11),  # T2 (B, 352, 6, 6)
            b3,  # (B, 784, 6, 6)
            _transition(b3.out_channels, c(224), 4, 2, 1, 0.09),  # T3 (B, 224, 12, 12)
            b4,  # (B, 528, 12, 12)
            _transition(b4.out_channels, c(160), 4, 2, 1, 0.07),  # T4 (B, 160, 24, 24)
            b5,  # (B, 384, 24, 24)
            _transition(b5.out_channels, c(112), 4, 2, 1, 0.05),  # T5 (B, 112, 48, 48)
            b6,  # (B, 240, 48, 48)
            _output_transition(b6.out_channels),  # T6 (B, 3, 96, 96)
        )
        self.mc_dropout = mc_dropout
        self.apply(xavier_init)


class SequentialGenerator(_Generator):
    """The paper's 13-layer sequential baseline (Figure 6): the dense generator's transitions, one conv per stage."""

    def __init__(self, dim: int, width: float = 1.0, mc_dropout: bool = True) -> None:
        super().__init__(dim, width, mc_dropout, "sequential")

        def c(n: int) -> int:
            return scaled(n, width)

        self.layers = nn.Sequential(  # (B, f, 1, 1)
            _transition(dim, c(512), 2, 1, 0, 0.15),  # T0 (B, 512, 2, 2)
            _conv(c(512), c(512)),  # (B, 512, 2, 2)
            _transition(c(512), c(512), 3, 1, 0, 0.13),  # T1 (B, 512, 4, 4)
            _conv(c(512), c(512)),  # (B, 512, 4, 4)
            _transition(c(512), c(352), 3, 1, 0, 0.11),  # T2 (B, 352, 6, 6)
            _conv(c(352), c(352)),  # (B, 352, 6, 6)
            _transition(c(352), c(224), 4, 2, 1, 0.09),  # T3 (B, 224, 12, 12)
            _conv(c(224), c(224)),  # (B, 224, 12, 12)
            _transition(c(224), c(160), 4, 2, 1, 0.07),  # T4 (B, 160, 24, 24)
            _conv(c(160), c(160)),  # (B, 160, 24, 24)
            _transition(c(160), c(112), 4, 2, 1, 0.05),  # T5 (B, 112, 48, 48)
            _conv(c(112), c(112)),  # (B, 112, 48, 48)
            _output_transition(c(112)),  # T6 (B, 3, 96, 96)
        )
        self.mc_dropout = mc_dropout
        self.apply(xavier_init)


GENERATORS: dict[str, type[DenseGenerator] | type[SequentialGenerator]] = {
    "dense": DenseGenerator,
    "sequential": SequentialGenerator,
}
