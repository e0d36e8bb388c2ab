"""s2i_models: the Sound-to-Imagination networks and their training, in plain PyTorch.

The networks are exported lazily (PEP 562), so `import s2i_models` and its torch-free submodules (the CLI)
do not pay for importing torch; `from s2i_models import DenseGenerator` imports it on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AudioAutoencoder": "s2i_models.autoencoder",
    "AudioEncoder": "s2i_models.autoencoder",
    "AudioDecoder": "s2i_models.autoencoder",
    "AutoencoderArch": "s2i_models.autoencoder",
    "DenseGenerator": "s2i_models.generator",
    "SequentialGenerator": "s2i_models.generator",
    "GeneratorArch": "s2i_models.generator",
    "Discriminator": "s2i_models.discriminator",
    "DiscriminatorArch": "s2i_models.discriminator",
    "InformativityClassifier": "s2i_models.informativity",
    "ClassifierArch": "s2i_models.informativity",
    "xavier_init": "s2i_models.init",
    "parameter_count": "s2i_models.init",
}

__all__ = [  # spelled out so linters and editors see the names; a test keeps it equal to _EXPORTS
    "AudioAutoencoder",
    "AudioDecoder",
    "AudioEncoder",
    "AutoencoderArch",
    "ClassifierArch",
    "DenseGenerator",
    "Discriminator",
    "DiscriminatorArch",
    "GeneratorArch",
    "InformativityClassifier",
    "SequentialGenerator",
    "parameter_count",
    "xavier_init",
]

if TYPE_CHECKING:
    from s2i_models.autoencoder import AudioAutoencoder, AudioDecoder, AudioEncoder, AutoencoderArch
    from s2i_models.discriminator import Discriminator, DiscriminatorArch
    from s2i_models.generator import DenseGenerator, GeneratorArch, SequentialGenerator
    from s2i_models.informativity import ClassifierArch, InformativityClassifier
    from s2i_models.init import parameter_count, xavier_init


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 's2i_models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
