"""The networks of s2i_models against SPEC §3: parameter counts, shapes, width scaling, MC dropout, init."""

from __future__ import annotations

import io
import math
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch
from torch import nn

import s2i_models
from s2i_models import (
    AudioAutoencoder,
    DenseGenerator,
    Discriminator,
    InformativityClassifier,
    SequentialGenerator,
)
from s2i_models.generator import GeneratorArch, MCDropout2d
from s2i_models.init import parameter_count, scaled, xavier_init

DIMS = (128, 256, 512, 1024, 2048)
SMALL = 0.125
# Parameter counts of the authors' checkpoints at f = 512 (SPEC §3).
REFERENCE_COUNTS = {"autoencoder": 33.43e6, "dense generator": 38.66e6, "discriminator": 5.28e6}


@pytest.fixture(scope="module")
def full_width() -> dict[str, nn.Module]:
    """The three reference networks at width 1.0, dim 512 (built once: about a second)."""
    torch.manual_seed(0)
    return {
        "autoencoder": AudioAutoencoder(512),
        "dense generator": DenseGenerator(512),
        "discriminator": Discriminator(512),
    }


def _spectrograms(batch: int) -> torch.Tensor:
    return torch.rand(batch, 1, 128, 100) * 2 - 1  # (B, 1, 128, 100)


def _images(batch: int) -> torch.Tensor:
    return torch.rand(batch, 3, 96, 96) * 2 - 1  # (B, 3, 96, 96)


def _embeddings(batch: int, dim: int) -> torch.Tensor:
    return torch.rand(batch, dim) * 2 - 1  # (B, dim)


def _weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)]


# --- reference sizes and topology --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REFERENCE_COUNTS))
def test_parameter_count_matches_reference(full_width: dict[str, nn.Module], name: str) -> None:
    count = parameter_count(full_width[name])
    assert abs(count - REFERENCE_COUNTS[name]) / REFERENCE_COUNTS[name] < 1e-3, (
        f"{name}: {count:,} parameters"
    )


def test_layer_counts_follow_the_paper(full_width: dict[str, nn.Module]) -> None:
    assert len(_weighted_layers(full_width["autoencoder"].encoder)) == 13
    assert len(_weighted_layers(full_width["autoencoder"].decoder)) == 13
    assert len(_weighted_layers(full_width["dense generator"])) == 25
    assert len(_weighted_layers(SequentialGenerator(512, width=SMALL))) == 13
    assert len(_weighted_layers(full_width["discriminator"])) == 13
    assert len(_weighted_layers(InformativityClassifier())) == 7  # 5 convs + 2 fully connected


def test_dense_generator_transitions_read_concatenated_blocks(full_width: dict[str, nn.Module]) -> None:
    transitions = [m for m in full_width["dense generator"].modules() if isinstance(m, nn.ConvTranspose2d)]
    channels = [(t.in_channels, t.out_channels) for t in transitions]
    assert channels == [(512, 512), (1536, 512), (1280, 352), (784, 224), (528, 160), (384, 112), (240, 3)]
    third_layers = [m.layer3[0] for m in full_width["dense generator"].modules() if hasattr(m, "layer3")]
    assert [conv.in_channels for conv in third_layers] == [1024, 928, 560, 368, 272, 176]  # concat(l1, l2)


def test_dropout_rates_and_bias_free_discriminator(full_width: dict[str, nn.Module]) -> None:
    decoder_rates = [m.p for m in full_width["autoencoder"].decoder.modules() if isinstance(m, nn.Dropout2d)]
    assert decoder_rates == [0.15, 0.14, 0.13, 0.12, 0.11, 0.10, 0.10, 0.09, 0.08, 0.07, 0.06, 0.05]
    assert not any(isinstance(m, nn.Dropout2d) for m in full_width["autoencoder"].encoder.modules())
    generator_rates = [m.p for m in full_width["dense generator"].modules() if isinstance(m, MCDropout2d)]
    assert generator_rates == [0.15, 0.13, 0.11, 0.09, 0.07, 0.05]
    discriminator = full_width["discriminator"]
    assert [m.p for m in discriminator.modules() if isinstance(m, nn.Dropout2d)] == [0.5] * 12
    assert all(conv.bias is None for conv in _weighted_layers(discriminator))


# --- shapes and ranges at every dim -------------------------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
def test_autoencoder_shapes_and_range(dim: int) -> None:
    torch.manual_seed(0)
    model = AudioAutoencoder(dim, width=SMALL)
    spec = _spectrograms(2)
    recon, embedding = model(spec)
    assert recon.shape == (2, 1, 128, 100)
    assert embedding.shape == (2, dim)
    model.eval()
    encoded = model.encode(spec)
    assert encoded.shape == (2, dim)
    assert encoded.abs().max() <= 1 and recon.abs().max() <= 1
    assert encoded.std() > 0  # not a constant embedding


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("generator_class", [DenseGenerator, SequentialGenerator])
def test_generator_shapes_and_range(dim: int, generator_class: type[nn.Module]) -> None:
    torch.manual_seed(0)
    images = generator_class(dim, width=SMALL)(_embeddings(2, dim))
    assert images.shape == (2, 3, 96, 96)
    assert images.abs().max() <= 1 and images.std() > 0


@pytest.mark.parametrize("dim", DIMS)
def test_discriminator_shapes_and_range(dim: int) -> None:
    torch.manual_seed(0)
    scores = Discriminator(dim, width=SMALL)(_images(2), _embeddings(2, dim))
    assert scores.shape == (2,)
    assert scores.abs().max() <= 1


def test_classifier_gives_log_probabilities() -> None:
    torch.manual_seed(0)
    model = InformativityClassifier(width=SMALL)
    log_probs = model(_images(3))
    assert log_probs.shape == (3, 2)
    assert (log_probs <= 0).all()
    torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(3))


def test_full_width_forward_batch_of_one(full_width: dict[str, nn.Module]) -> None:
    # Batch 1 needs eval mode: training-mode batch norm cannot normalise a single 1x1 value.
    for model in full_width.values():
        model.eval()
    with torch.no_grad():
        recon, embedding = full_width["autoencoder"](_spectrograms(1))
        images = full_width["dense generator"](embedding)
        scores = full_width["discriminator"](images, embedding)
    assert recon.shape == (1, 1, 128, 100) and embedding.shape == (1, 512)
    assert images.shape == (1, 3, 96, 96) and scores.shape == (1,)
    assert torch.isfinite(recon).all() and torch.isfinite(images).all() and torch.isfinite(scores).all()


def test_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    dim = 128
    autoencoder = AudioAutoencoder(dim, width=SMALL)
    generator = DenseGenerator(dim, width=SMALL)
    discriminator = Discriminator(dim, width=SMALL)
    classifier = InformativityClassifier(width=SMALL)
    recon, embedding = autoencoder(_spectrograms(4))
    images = generator(embedding)
    loss = (
        recon.square().mean()
        + discriminator(images, embedding).square().mean()
        + classifier(images)[:, 1].mean()
    )
    loss.backward()
    for model in (autoencoder, generator, discriminator, classifier):
        missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not missing, f"{type(model).__name__}: no gradient reaches {missing}"


# --- width --------------------------------------------------------------------------------------------


def test_scaled_channels() -> None:
    assert scaled(512, 1.0) == 512
    assert scaled(80, 0.125) == 10
    assert scaled(12, 0.0625) == 1  # never below one channel


@pytest.mark.parametrize(
    "build",
    [
        lambda w: AudioAutoencoder(512, w),
        lambda w: DenseGenerator(512, w),
        lambda w: SequentialGenerator(512, w),
        lambda w: Discriminator(512, w),
        lambda w: InformativityClassifier(w),
    ],
    ids=["autoencoder", "dense", "sequential", "discriminator", "classifier"],
)
def test_counts_shrink_with_width_squared(build) -> None:
    counts = {w: parameter_count(build(w)) for w in (1.0, 0.5, 0.25, 0.125, 0.0625)}
    assert 0.2 < counts[0.5] / counts[1.0] < 0.35  # ~width^2; the unscaled dim/RGB layers add a little
    assert counts[1.0] > counts[0.5] > counts[0.25] > counts[0.125] > counts[0.0625]


def test_narrowest_width_still_chains() -> None:
    torch.manual_seed(0)
    width, dim = 0.0625, 128
    _, embedding = AudioAutoencoder(dim, width)(_spectrograms(2))
    images = DenseGenerator(dim, width)(embedding)
    assert SequentialGenerator(dim, width)(embedding).shape == (2, 3, 96, 96)
    assert Discriminator(dim, width)(images, embedding).shape == (2,)
    assert InformativityClassifier(width)(images).shape == (2, 2)


@pytest.mark.parametrize("width", [0.0, -1.0, float("nan"), "wide"])
def test_bad_width_is_an_error(width) -> None:
    with pytest.raises(ValueError, match="width"):
        DenseGenerator(128, width)


# --- dropout and determinism --------------------------------------------------------------------------


@pytest.mark.parametrize("generator_class", [DenseGenerator, SequentialGenerator])
def test_mc_dropout_stays_on_in_eval(generator_class: type[nn.Module]) -> None:
    torch.manual_seed(0)
    generator = generator_class(128, width=SMALL, mc_dropout=True).eval()
    embedding = _embeddings(2, 128)
    with torch.no_grad():
        torch.manual_seed(1)
        first = generator(embedding)
        torch.manual_seed(2)
        second = generator(embedding)
        assert not torch.allclose(first, second), "MC dropout should make two translations differ"
        generator.mc_dropout = False
        assert generator.arch.mc_dropout is False
        torch.manual_seed(1)
        third = generator(embedding)
        torch.manual_seed(2)
        torch.testing.assert_close(third, generator(embedding), rtol=0, atol=0)
        generator.mc_dropout = True
        torch.manual_seed(1)
        torch.testing.assert_close(generator(embedding), first, rtol=0, atol=0)  # same seed, same masks


def test_mc_dropout_off_from_the_constructor() -> None:
    torch.manual_seed(0)
    generator = DenseGenerator(128, width=SMALL, mc_dropout=False).eval()
    embedding = _embeddings(2, 128)
    with torch.no_grad():
        torch.manual_seed(1)
        first = generator(embedding)
        torch.manual_seed(2)
        torch.testing.assert_close(generator(embedding), first, rtol=0, atol=0)
        generator.train()
        assert not torch.allclose(generator(embedding), first)  # training mode: dropout on


def test_autoencoder_eval_is_deterministic_and_batch_independent() -> None:
    torch.manual_seed(0)
    model = AudioAutoencoder(256, width=SMALL)
    spec = _spectrograms(3)
    model(spec)  # one training-mode pass moves the batch-norm running statistics off their defaults
    model.eval()
    with torch.no_grad():
        torch.manual_seed(1)
        recon, embedding = model(spec)
        torch.manual_seed(2)
        recon_again, embedding_again = model(spec)
        alone = model.encode(spec[:1])
    torch.testing.assert_close(recon_again, recon, rtol=0, atol=0)
    torch.testing.assert_close(embedding_again, embedding, rtol=0, atol=0)
    torch.testing.assert_close(alone, embedding[:1])


# --- init ---------------------------------------------------------------------------------------------


def test_xavier_variance(full_width: dict[str, nn.Module]) -> None:
    conv = full_width["autoencoder"].encoder.layers[8][0]  # Conv2d(416, 512, 3): 1.9 M weights
    deconv = full_width["autoencoder"].decoder.layers[4][0]  # ConvTranspose2d(512, 416, 3)
    for layer in (conv, deconv):
        fan_sum = (layer.in_channels + layer.out_channels) * math.prod(layer.kernel_size)
        assert layer.weight.var().item() == pytest.approx(2 / fan_sum, rel=0.02)
        bound = math.sqrt(6 / fan_sum)
        assert layer.weight.abs().max().item() <= bound * (1 + 1e-6)  # float32 rounding
        assert layer.weight.abs().max().item() > 0.99 * bound  # uniform, not normal


def test_xavier_init_replaces_torch_defaults() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(256, 256, 3)  # torch default: var = 1 / (3 fan_in), a third of Xavier's here
    norm = nn.BatchNorm2d(8)
    nn.init.constant_(norm.weight, 3.0)
    xavier_init(conv)
    xavier_init(norm)
    assert conv.weight.var().item() == pytest.approx(2 / (2 * 256 * 9), rel=0.03)
    assert (conv.bias == 0).all() and (norm.weight == 1).all() and (norm.bias == 0).all()


@pytest.mark.parametrize(
    "build",
    [
        lambda: AudioAutoencoder(128, SMALL),
        lambda: DenseGenerator(128, SMALL),
        lambda: SequentialGenerator(128, SMALL),
        lambda: Discriminator(128, SMALL),
        lambda: InformativityClassifier(SMALL),
    ],
    ids=["autoencoder", "dense", "sequential", "discriminator", "classifier"],
)
def test_models_start_xavier_initialised(build) -> None:
    for module in build().modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if module.bias is not None:
                assert (module.bias == 0).all()
            receptive = math.prod(module.weight.shape[2:])
            bound = math.sqrt(6 / ((module.weight.shape[0] + module.weight.shape[1]) * receptive))
            assert module.weight.abs().max().item() <= bound * (1 + 1e-6)
        elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            assert (module.weight == 1).all() and (module.bias == 0).all()


# --- errors, checkpoints, imports ---------------------------------------------------------------------


def test_discriminator_needs_dim_divisible_by_four() -> None:
    with pytest.raises(ValueError, match="dim=130"):
        Discriminator(130, width=SMALL)


def test_wrong_input_shapes_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"\(B, 1, 128, 100\)"):
        AudioAutoencoder(128, SMALL)(torch.zeros(2, 100, 128))
    with pytest.raises(ValueError, match=r"\(B, 128\)"):
        DenseGenerator(128, SMALL)(torch.zeros(2, 256))
    with pytest.raises(ValueError, match="embeddings"):
        Discriminator(128, SMALL)(_images(2), torch.zeros(3, 128))
    with pytest.raises(ValueError, match="dim"):
        AudioAutoencoder(0)


def test_checkpoint_round_trip_with_weights_only() -> None:
    torch.manual_seed(0)
    generator = DenseGenerator(128, width=SMALL, mc_dropout=False)
    generator(_embeddings(4, 128))  # populate running statistics
    buffer = io.BytesIO()
    torch.save({"arch": asdict(generator.arch), "state": generator.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    rebuilt = GeneratorArch(**checkpoint["arch"]).build()
    rebuilt.load_state_dict(checkpoint["state"])
    embedding = _embeddings(2, 128)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(embedding), generator.eval()(embedding), rtol=0, atol=0)


def test_package_import_does_not_load_torch() -> None:
    code = "import sys, s2i_models; assert 'torch' not in sys.modules; s2i_models.DenseGenerator; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert sorted(s2i_models.__all__) == sorted(s2i_models._EXPORTS)
    for name in s2i_models.__all__:
        assert getattr(s2i_models, name) is not None
