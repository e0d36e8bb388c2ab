"""Construction helpers shared by every network: width scaling, Xavier init, parameter counts."""

from __future__ import annotations

from torch import nn

_XAVIER_LAYERS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d)


def scaled(channels: int, width: float) -> int:
    """A hidden layer's channel count at a width multiplier: max(1, round(channels * width)).

    Only hidden channels go through this; the 1 spectrogram channel, 3 RGB channels, the embedding dim,
    the 1 score and the 2 classes never scale, so every width keeps the networks' interfaces.
    """
    return max(1, round(channels * width))


def check_width(width: float, owner: str) -> None:
    """Raise a ValueError naming `owner` unless `width` is a positive finite number."""
    if not isinstance(width, int | float) or not 0 < width < float("inf"):
        raise ValueError(
            f"{owner}: width must be a positive number (1.0 = the reference size), got {width!r}"
        )


def check_dim(dim: int, owner: str) -> None:
    """Raise a ValueError naming `owner` unless `dim` is a positive int."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"{owner}: dim (the audio embedding size) must be a positive int, got {dim!r}")


def xavier_init(module: nn.Module) -> None:
    """Xavier (Glorot) uniform weights and zero biases for every conv / conv-transpose / linear layer; batch
    norms start as the identity (weight 1, bias 0). The paper initialises every layer this way (Eq. 7).

    Use as `model.apply(xavier_init)`; it touches only the module it is given, not its children.
    """
    if isinstance(module, _XAVIER_LAYERS):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, _NORM_LAYERS) and module.affine:
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
