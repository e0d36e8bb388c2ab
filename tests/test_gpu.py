"""The CUDA paths: training loops, resume, inference and the informativity classifier on a GPU.

Run on a machine with a GPU: `S2I_REQUIRE_GPU=1 pytest -m gpu tests/test_gpu.py` (`make test` leaves
these out). Without a CUDA device they skip; with S2I_REQUIRE_GPU=1 they fail instead, so a GPU machine
that has lost sight of its GPU (driver, container runtime, CPU-only torch) cannot pass by skipping.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

DEVICE = "cuda"
REQUIRE_GPU = "S2I_REQUIRE_GPU"


def why_no_cuda() -> str:
    """What this torch says about CUDA, for the skip or failure message."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    hidden = "" if visible is None else f"; CUDA_VISIBLE_DEVICES={visible!r}"
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build{hidden}"
    try:
        torch.cuda.init()
    except Exception as error:  # torch words it: no driver, no device, driver too old
        return f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot start CUDA: {error}{hidden}"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees {torch.cuda.device_count()} devices{hidden}"


@pytest.fixture(autouse=True)
def cuda_device(request: pytest.FixtureRequest) -> None:
    """Skip a `gpu` test without CUDA, or fail it when S2I_REQUIRE_GPU=1 says a GPU must be there."""
    if request.node.get_closest_marker("gpu") is None or torch.cuda.is_available():
        return
    if os.environ.get(REQUIRE_GPU) == "1":
        pytest.fail(
            f"{REQUIRE_GPU}=1 but CUDA is not available ({why_no_cuda()}): this machine is meant to "
            "test the CUDA paths, and skipping would report a pass with none of them run; check "
            "nvidia-smi, the container's GPU access and that torch is a CUDA build",
            pytrace=False,
        )
    pytest.skip(f"needs a CUDA device ({why_no_cuda()}); {REQUIRE_GPU}=1 makes this fail instead")


def _mels(n: int) -> torch.Tensor:
    return (torch.randn(n, 100, 128, generator=torch.Generator().manual_seed(0)) * 3 - 5).half()


def _stats() -> dict:
    return {"mean": -5.0, "std": 3.0, "min": -20.0, "max": 10.0}


@pytest.mark.gpu
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


@pytest.mark.gpu
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


@pytest.mark.gpu
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


# The switch itself, on any machine: a child pytest with the GPU hidden runs one gpu test.


def run_one_gpu_test_without_cuda(require_gpu: bool) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != REQUIRE_GPU}
    env["CUDA_VISIBLE_DEVICES"] = ""  # hides a GPU that is there, so this tests the no-CUDA path anywhere
    if require_gpu:
        env[REQUIRE_GPU] = "1"
    command = [sys.executable, "-m", "pytest", __file__, "-m", "gpu", "-k", "classifier_on_cuda"]
    return subprocess.run(
        [*command, "-p", "no:cacheprovider", "-q", "-rsfE"],
        cwd=Path(__file__).parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_cuda_gpu_tests_skip_unless_a_gpu_is_required() -> None:
    skipped = run_one_gpu_test_without_cuda(require_gpu=False)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout + skipped.stderr
    assert f"{REQUIRE_GPU}=1 makes this fail instead" in skipped.stdout

    required = run_one_gpu_test_without_cuda(require_gpu=True)
    assert required.returncode == 1 and "1 error" in required.stdout, required.stdout + required.stderr
    assert f"{REQUIRE_GPU}=1 but CUDA is not available" in required.stdout
    assert "CUDA_VISIBLE_DEVICES=''" in required.stdout and "skipped" not in required.stdout
