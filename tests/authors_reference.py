"""The authors' network layouts (leofanzeres/s2i, models/*.py), rebuilt from their description for tests.

Each module has the authors' attribute names (so its state dict has their keys) and their forward: dense
layers as ConvTranspose2d, the classifier's unused fc1, dropout where they put it. `width` scales hidden
channels with the project's rounding, so tests can run at a fraction of the size; at width 1 the state
dicts have the shapes of the released files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from s2i_models.init import scaled

AE_CHANNELS = (80, 176, 192, 224, 272, 304, 352, 416, 512, 512, 512, 512)
AE_KERNELS = ((7, 5), (5, 3), (5, 3), (5, 3), (5, 3)) + ((3, 3),) * 8
AE_DECODER_KERNELS = ((3, 3),) * 8 + ((5, 3),) * 3 + ((5, 4), (8, 6))
AE_DROPOUT = (0.15, 0.14, 0.13, 0.12, 0.11, 0.1, 0.1, 0.09, 0.08, 0.07, 0.06, 0.05)
G_BLOCKS = ((512, 512, 512), (512, 416, 352), (304, 256, 224), (192, 176, 160), (144, 128, 112), (96, 80, 64))
G_TRANSITION_DROPOUT = (0.15, 0.13, 0.11, 0.09, 0.07, 0.05)
D_CHANNELS = (96, 192, 192, 208, 224, 240, 256, 256, 256, 256, 256, 256)


class AuthorsAutoencoder(nn.Module):
    def __init__(self, dim: int, width: float = 1.0) -> None:
        super().__init__()
        enc = [scaled(c, width) for c in AE_CHANNELS] + [dim]
        for k in range(13):
            c_in = 1 if k == 0 else enc[k - 1]
            stride = 2 if k < 2 else 1
            setattr(self, f"conv{k + 1}", nn.Conv2d(c_in, enc[k], AE_KERNELS[k], stride))
            setattr(self, f"conv{k + 1}_bn", nn.BatchNorm2d(enc[k]))
        dec = list(reversed(enc[:-1])) + [1]  # 512 ... 80, 1
        for k in range(13):
            c_in = dim if k == 0 else dec[k - 1]
            stride = 2 if k >= 11 else 1
            setattr(self, f"convT{k + 1}", nn.ConvTranspose2d(c_in, dec[k], AE_DECODER_KERNELS[k], stride))
            setattr(self, f"convT{k + 1}_bn", nn.BatchNorm2d(dec[k]))
            if k < 12:
                setattr(self, f"convT{k + 1}_drop", nn.Dropout2d(AE_DROPOUT[k]))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(1, 14):
            x = getattr(self, f"conv{k}_bn")(getattr(self, f"conv{k}")(x))
            x = torch.tanh(x) if k == 13 else F.relu(x)
        return x.flatten(1)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, None, None]
        for k in range(1, 14):
            x = getattr(self, f"convT{k}_bn")(getattr(self, f"convT{k}")(x))
            if k == 13:
                return torch.tanh(x)
            x = getattr(self, f"convT{k}_drop")(F.relu(x))
        raise AssertionError


class AuthorsGenerator(nn.Module):
    def __init__(self, dim: int, width: float = 1.0) -> None:
        super().__init__()
        self.dim = dim
        t_out = [scaled(c, width) for c in (512, 512, 352, 224, 160, 112)] + [3]
        k_t = [(2, 1, 0), (3, 1, 0), (3, 1, 0), (4, 2, 1), (4, 2, 1), (4, 2, 1), (4, 2, 1)]
        c_in = dim
        for t in range(7):
            if t > 0:  # the dense block before transition t
                c1, c2, c3 = (scaled(c, width) for c in G_BLOCKS[t - 1])
                first = 3 * (t - 1) + 1
                block_in = t_out[t - 1]
                setattr(self, f"convT{first}", nn.ConvTranspose2d(block_in, c1, 3, 1, 1))
                setattr(self, f"convT{first + 1}", nn.ConvTranspose2d(c1, c2, 3, 1, 1))
                setattr(self, f"convT{first + 2}", nn.ConvTranspose2d(c1 + c2, c3, 3, 1, 1))
                for j, c in enumerate((c1, c2, c3)):
                    setattr(self, f"convT{first + j}_bn", nn.BatchNorm2d(c))
                c_in = c1 + c2 + c3
            kernel, stride, padding = k_t[t]
            setattr(self, f"transition{t}", nn.ConvTranspose2d(c_in, t_out[t], kernel, stride, padding))
            setattr(self, f"transition{t}_bn", nn.BatchNorm2d(t_out[t]))
            if t < 6:
                setattr(self, f"transition{t}_drop", nn.Dropout2d(G_TRANSITION_DROPOUT[t]))

    def _layer(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return F.relu(getattr(self, f"{name}_bn")(getattr(self, name)(x)))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        x = embedding.view(-1, self.dim, 1, 1)
        for t in range(7):
            if t > 0:
                first = 3 * (t - 1) + 1
                x1 = self._layer(f"convT{first}", x)
                x2 = self._layer(f"convT{first + 1}", x1)
                x3 = self._layer(f"convT{first + 2}", torch.cat((x1, x2), 1))
                x = torch.cat((x1, x2, x3), 1)
            if t == 6:
                return torch.tanh(self.transition6_bn(self.transition6(x)))
            x = getattr(self, f"transition{t}_drop")(self._layer(f"transition{t}", x))
        raise AssertionError


class AuthorsDiscriminator(nn.Module):
    def __init__(self, dim: int, width: float = 1.0) -> None:
        super().__init__()
        channels = [scaled(c, width) for c in D_CHANNELS]
        for k in range(12):
            c_in = 3 if k == 0 else channels[k - 1]
            kernel, stride = (5, 2) if k == 0 else (3, 2 if k == 1 else 1)
            setattr(self, f"conv{k + 1}", nn.Conv2d(c_in, channels[k], kernel, stride, bias=False))
            setattr(self, f"conv{k + 1}_bn", nn.BatchNorm2d(channels[k]))
            setattr(self, f"conv{k + 1}_drop", nn.Dropout2d(0.5))
        self.conv13 = nn.Conv2d(channels[-1] + dim // 4, 1, 2, bias=False)
        self.conv13_bn = nn.BatchNorm2d(1)

    def forward(self, images: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x = images
        for k in range(1, 13):
            x = getattr(self, f"conv{k}_drop")(
                F.relu(getattr(self, f"conv{k}_bn")(getattr(self, f"conv{k}")(x)))
            )
        x = torch.cat([x, embedding.view(embedding.shape[0], -1, 2, 2)], 1)
        return torch.tanh(self.conv13_bn(self.conv13(x))).flatten()


class AuthorsClassifier(nn.Module):
    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c12, c32 = scaled(12, width), scaled(32, width)
        channels = (c12, c32, c32, c32, c32)
        for k in range(5):
            c_in = 3 if k == 0 else channels[k - 1]
            setattr(self, f"conv{k + 1}", nn.Conv2d(c_in, channels[k], 5 if k == 0 else 3, 2))
            setattr(self, f"conv{k + 1}_drop", nn.Dropout2d(0.1 * (k + 1)))
            setattr(self, f"conv{k + 1}_bn", nn.BatchNorm2d(channels[k]))
        self.fc_dim = c32
        self.fc1 = nn.Linear(c32, c32)  # in the file, skipped by the forward (fc1_pass = False)
        self.fc1_drop = nn.Dropout(0.5)
        self.fc1_bn = nn.BatchNorm1d(c32)
        self.fc2 = nn.Linear(c32, c32)
        self.fc2_drop = nn.Dropout(0.5)
        self.fc2_bn = nn.BatchNorm1d(c32)
        self.fc3 = nn.Linear(c32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(1, 6):
            x = getattr(self, f"conv{k}_drop")(
                F.relu(getattr(self, f"conv{k}_bn")(getattr(self, f"conv{k}")(x)))
            )
        x = x.view(-1, self.fc_dim)
        x = self.fc2_drop(F.relu(self.fc2_bn(self.fc2(x))))
        return F.log_softmax(self.fc3(x), dim=1)


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and batch-norm statistics, so a wrong mapping cannot pass by symmetry."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dtype.is_floating_point:
                values = torch.randn(tensor.shape, generator=generator) * 0.2
                if name.endswith("running_var") or (name.endswith("weight") and tensor.ndim == 1):
                    values = values.abs() + 0.5
                tensor.copy_(values)
    return model.eval()
