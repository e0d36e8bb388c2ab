"""Sound -> images with trained artifacts: load the frozen encoder and a generator, translate with MC dropout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from s2i_models.checkpoint import load_checkpoint


def load_autoencoder(checkpoint_path: Path, dim: int, device: str = "cpu") -> nn.Module:
    """The autoencoder of an `autoencoder_{dim}` checkpoint, in eval mode (its encoder gives embeddings)."""
    from s2i_models import AudioAutoencoder

    checkpoint = load_checkpoint(checkpoint_path)
    model = AudioAutoencoder(dim, width=checkpoint["config"]["width"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def build_generator(config: dict, dim: int) -> nn.Module:
    """An untrained generator of the kind and width a GAN checkpoint's config names (MC dropout on)."""
    from s2i_models import DenseGenerator, SequentialGenerator

    kind = DenseGenerator if config.get("generator", "dense") == "dense" else SequentialGenerator
    return kind(dim, width=config["width"], mc_dropout=True)


def load_generator(checkpoint_path: Path, dim: int, device: str = "cpu") -> nn.Module:
    """The generator of a `gan_{dim}` epoch checkpoint, in eval mode with MC dropout on."""
    checkpoint = load_checkpoint(checkpoint_path)
    generator = build_generator(checkpoint["config"], dim)
    generator.load_state_dict(checkpoint["generator"])
    return generator.to(device).eval()


@torch.no_grad()
def translate(
    encoder: nn.Module, generator: nn.Module, spectrograms: torch.Tensor, samples: int = 8, seed: int = 0
) -> np.ndarray:
    """(S, 1, 128, 100) scaled log-mels -> (S, samples, 96, 96, 3) uint8: `samples` MC-dropout images a sound."""
    from s2i_models.loaders import images_to_uint8

    torch.manual_seed(seed)
    embeddings = encoder.encode(spectrograms)  # (S, dim)
    images = [
        images_to_uint8(generator(embeddings)).cpu().numpy() for _ in range(samples)
    ]  # samples x (S, 96, 96, 3)
    return np.stack(images, axis=1)


@torch.no_grad()
def generate(
    generator: nn.Module,
    embeddings: np.ndarray,
    samples: int = 1,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 256,
) -> np.ndarray:
    """(N, dim) embeddings -> (N, samples, 96, 96, 3) uint8: `samples` MC-dropout images per embedding."""
    from s2i_models.loaders import images_to_uint8

    torch.manual_seed(seed)
    out = np.empty((len(embeddings), samples, 96, 96, 3), dtype=np.uint8)
    for sample in range(samples):
        for start in range(0, len(embeddings), batch_size):
            x = torch.from_numpy(embeddings[start : start + batch_size]).to(device)  # (B, dim)
            out[start : start + len(x), sample] = images_to_uint8(generator(x)).cpu().numpy()
    return out
