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
    seeds: np.ndarray | None = None,
) -> np.ndarray:
    """(N, dim) embeddings -> (N, samples, 96, 96, 3) uint8: `samples` MC-dropout images per embedding.

    Without `seeds`, one global seed drives every dropout mask: an image depends on what else is translated.
    With `seeds` ((N, samples) ints), image (n, s) draws its dropout masks from its own `torch.Generator`
    seeded with `seeds[n, s]`, and every batch has the same shape (`batch_size` images, the last padded), so
    an image's bytes depend on its embedding, its seed, its position modulo `batch_size` and the device
    only: translating more embeddings after these leaves their images alone.
    """
    from s2i_models.loaders import images_to_uint8

    if seeds is not None:
        return _generate_seeded(generator, embeddings, np.asarray(seeds), samples, device, batch_size)
    torch.manual_seed(seed)
    out = np.empty((len(embeddings), samples, 96, 96, 3), dtype=np.uint8)
    for sample in range(samples):
        for start in range(0, len(embeddings), batch_size):
            x = torch.from_numpy(embeddings[start : start + batch_size]).to(device)  # (B, dim)
            out[start : start + len(x), sample] = images_to_uint8(generator(x)).cpu().numpy()
    return out


def _generate_seeded(
    generator: nn.Module,
    embeddings: np.ndarray,
    seeds: np.ndarray,
    samples: int,
    device: str,
    batch_size: int,
) -> np.ndarray:
    """`generate` with a seed per image: the MC-dropout layers are switched off and forward hooks apply each
    image's masks instead (channel-wise, keep probability 1 - p, scaled by 1 / (1 - p) like `F.dropout2d`),
    drawn on the CPU in one `torch.rand` per image from a generator seeded with the image's seed."""
    from s2i_models.generator import MCDropout2d
    from s2i_models.loaders import images_to_uint8

    if seeds.shape != (len(embeddings), samples):
        raise ValueError(f"generate: seeds must have shape ({len(embeddings)}, {samples}), got {seeds.shape}")
    count = len(embeddings) * samples
    flat = np.repeat(
        np.asarray(embeddings, dtype=np.float32), samples, axis=0
    )  # (N * samples, dim), sound-major
    flat_seeds = seeds.reshape(-1)
    out = np.empty((count, 96, 96, 3), dtype=np.uint8)
    layers = [m for m in generator.modules() if isinstance(m, MCDropout2d) and (m.training or m.always_on)]
    spans: dict[nn.Module, slice] = {}  # each layer's channels in an image's mask vector
    masks = torch.ones(0)  # (B, all layers' channels) for the batch being translated

    def measure(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        start = max((span.stop for span in spans.values()), default=0)
        spans[module] = slice(start, start + output.shape[1])

    def apply_mask(module: nn.Module, _inputs, output: torch.Tensor) -> torch.Tensor:
        return output * masks[:, spans[module], None, None]  # (B, C, H, W)

    was_training, always_on = generator.training, [m.always_on for m in layers]
    hooks = [m.register_forward_hook(measure) for m in layers]
    try:
        generator.eval()  # batch norm from its running statistics: no image depends on the others
        for m in layers:
            m.always_on = False  # identity: the hook applies this image's mask
        if layers:
            generator(torch.zeros(1, flat.shape[1], device=device))  # how many channels each layer drops
        for hook in hooks:
            hook.remove()
        hooks = [m.register_forward_hook(apply_mask) for m in layers]
        keep = torch.ones(max((span.stop for span in spans.values()), default=0))  # (channels,)
        for m in layers:
            keep[spans[m]] = 1.0 - m.p
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            x = np.zeros((batch_size, flat.shape[1]), dtype=np.float32)  # (B, dim), zero padding
            x[: stop - start] = flat[start:stop]
            uniform = torch.zeros(batch_size, len(keep))  # padding rows keep every channel
            for row, seed in enumerate(flat_seeds[start:stop]):
                torch.rand(len(keep), generator=torch.Generator().manual_seed(int(seed)), out=uniform[row])
            masks = ((uniform < keep).float() / keep).to(device)  # (B, channels)
            images = images_to_uint8(generator(torch.from_numpy(x).to(device)))  # (B, 96, 96, 3)
            out[start:stop] = images[: stop - start].cpu().numpy()
    finally:
        for hook in hooks:
            hook.remove()
        generator.train(was_training)
        for m, on in zip(layers, always_on, strict=True):
            m.always_on = on
    return out.reshape(len(embeddings), samples, 96, 96, 3)
