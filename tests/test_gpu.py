"""The CUDA paths: training loops, resume, inference and the informativity classifier on a GPU.

Run on a machine with a GPU: `pytest -m gpu tests/test_gpu.py` (`make test` leaves these out).
"""

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DEVICE = "cuda"


def _mels(n: int) -> torch.Tensor:
    return (torch.randn(n, 100, 128, generator=torch.Generator().manual_seed(0)) * 3 - 5).half()


def _stats() -> dict:
    return {"mean": -5.0, "std": 3.0, "min": -20.0, "max": 10.0}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_autoencoder_trains_and_resumes_on_cuda(tmp_path, precision):
    from s2i_models.checkpoint import load_checkpoint
    from s2i_models.loaders import InMemoryBatches
    from s2i_models.train.autoencoder import AutoencoderConfig, train_autoencoder

    mels = _mels(256)
    config = AutoencoderConfig(
        dim=512, width=0.25, epochs=2, batch_size=64, checkpoint_every=1, precision=precision
    )
    batches = InMemoryBatches(device=DEVICE, mels=mels, batch_size=64, seed=0)
    first = train_autoencoder(config, batches, None, _stats(), tmp_path, device=DEVICE)
    assert len(first.history) == 2 and all(np.isfinite(r["train_loss"]) for r in first.history)
    longer = AutoencoderConfig(**{**config.__dict__, "epochs": 3})
    resumed = train_autoencoder(longer, batches, None, _stats(), tmp_path, device=DEVICE)
    assert resumed.resumed_from == 2 and len(resumed.history) == 3
    state = load_checkpoint(resumed.final_checkpoint)["model"]
    assert all(t.device.type == "cpu" for t in state.values())  # checkpoints load anywhere


@pytest.mark.parametrize(("precision", "compiled"), [("fp32", False), ("bf16", False), ("fp32", True)])
def test_gan_trains_on_cuda_and_translates(tmp_path, precision, compiled):
    from s2i_models.loaders import InMemoryBatches
    from s2i_models.train.gan import GanConfig, train_gan
    from s2i_models.translate import generate, load_generator

    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (256, 96, 96, 3), dtype=torch.uint8, generator=g)
    embeddings = torch.rand(256, 512, generator=g) * 2 - 1
    batches = InMemoryBatches(device=DEVICE, frames=frames, embeddings=embeddings, batch_size=64, seed=0)
    config = GanConfig(
        dim=512,
        width=0.25,
        epochs=2,
        discriminator_every=1,
        checkpoint_every=1,
        precision=precision,
        compile=compiled,
    )
    result = train_gan(config, batches, tmp_path, device=DEVICE)
    assert len(result.checkpoints) == 2
    assert all(np.isfinite(r["pixel_loss"]) for r in result.history)
    generator = load_generator(result.final_checkpoint, 512, DEVICE)
    images = generate(generator, embeddings[:10].numpy(), samples=3, seed=0, device=DEVICE)
    assert images.shape == (10, 3, 96, 96, 3) and images.dtype == np.uint8
    assert not np.array_equal(images[:, 0], images[:, 1])  # MC dropout on


def test_informativity_classifier_on_cuda():
    from s2i_models.train.classifier import ClassifierConfig, classify, train_classifier

    rng = np.random.default_rng(0)
    images = rng.integers(0, 120, (80, 96, 96, 3), dtype=np.uint8)
    labels = np.arange(80) % 2
    images[labels == 1, 30:66, 30:66] = 255
    result = train_classifier(
        images, labels, ClassifierConfig(width=1.0, epochs=10, batch_size=16, seed=1), DEVICE
    )
    assert result.test_accuracy > 0.8
    assert classify(result.model.to(DEVICE), images, DEVICE).shape == (80,)
