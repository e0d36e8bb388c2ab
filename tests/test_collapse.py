"""The collapse check (s2i_models/collapse.py): a collapsed generator fails it, one that draws from its input
passes, on hand-made generators and on a GAN trained by the pipeline then made to collapse."""

import shutil

import numpy as np
import pytest
import torch
from dagster import AssetCheckSeverity, AssetSelection, materialize
from torch import nn

from pipelines.definitions import all_assets, all_checks
from s2i_models.checkpoint import load_checkpoint, save_atomic
from s2i_models.collapse import (
    LOSS_MARGIN,
    MIN_SOUND_SPREAD,
    CollapseVerdict,
    final_pixel_loss,
    mean_image_loss,
    sound_spread,
)
from s2i_models.generator import DenseGenerator
from tests.conftest import make_resources


def frames(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 96, 96, 3), dtype=np.uint8)


def test_mean_image_loss_is_the_per_pixel_variance_in_the_networks_scale():
    black, white = np.zeros((1, 96, 96, 3), np.uint8), np.full((1, 96, 96, 3), 255, np.uint8)
    # Values -1 and +1: the mean image is 0 everywhere and each frame is 1 away from it.
    assert mean_image_loss([np.concatenate([black, white])]) == pytest.approx(1.0)
    assert mean_image_loss([black, black]) == 0.0
    some = frames(0, 10)
    assert mean_image_loss([some[:3], some[3:]]) == pytest.approx(mean_image_loss([some]))
    with pytest.raises(ValueError, match="no frames"):
        mean_image_loss([])


class LookUp(nn.Module):
    """Draws the real frame whose index the (one-hot) embedding names: as varied as the real frames."""

    def __init__(self, images: np.ndarray) -> None:
        super().__init__()
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.images[embeddings.argmax(dim=1)]


def test_a_generator_that_draws_from_its_input_spreads_like_the_real_frames():
    real = frames(1, 8)
    spread = sound_spread(LookUp(real), np.eye(8, dtype=np.float32), real)
    assert spread == pytest.approx(1.0, abs=1e-5)


def test_a_generator_that_ignores_its_input_has_no_spread_even_with_mc_dropout_on():
    torch.manual_seed(0)
    generator = DenseGenerator(32, width=0.0625)
    with torch.no_grad():  # the first layer sees nothing of the embedding: the same picture for every sound
        generator.layers[0][0].weight.zero_()
    embeddings = np.random.default_rng(0).uniform(-1, 1, (16, 32)).astype(np.float32)
    spread = sound_spread(generator, embeddings, frames(2, 16))
    assert spread < 1e-4
    # The measure switches MC dropout off and puts it back: with it on, pictures would differ by chance.
    assert all(m.always_on for m in generator.modules() if hasattr(m, "always_on"))
    assert generator.training


def test_verdict_names_each_symptom():
    learned = CollapseVerdict(pixel_loss=0.12, mean_image_loss=0.28, sound_spread=0.4)
    assert not learned.collapsed and learned.problems == []
    stuck = CollapseVerdict(pixel_loss=0.287, mean_image_loss=0.28, sound_spread=0.005)
    assert stuck.collapsed
    loss, spread = stuck.problems
    assert "1.02 x that of always drawing the training set's mean image" in loss
    assert "barely differ" in spread and "the same picture whatever the sound" in spread
    # The margins are the stated ones, at their edges.
    edge = CollapseVerdict(
        pixel_loss=0.28 * (1 - LOSS_MARGIN), mean_image_loss=0.28, sound_spread=MIN_SOUND_SPREAD
    )
    assert not edge.collapsed
    assert CollapseVerdict(0.28 * (1 - LOSS_MARGIN) + 1e-3, 0.28, 1.0).collapsed
    assert CollapseVerdict(0.1, 0.28, MIN_SOUND_SPREAD - 1e-3).collapsed
    assert final_pixel_loss([9.0, 1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(3.0)


def test_the_blocking_check_fails_a_trained_gan_made_to_collapse(trained, tmp_path):
    profile, data, _ = trained
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    strict = tmp_path / "strict.yaml"
    strict.write_text(f"base: {profile}\ngan: {{collapse_check: error}}\n")
    from pipelines.data.artifact_manifest import read_manifest

    folder = copy / "gan_128"
    last = folder / read_manifest(folder).data["checkpoints"][-1]
    checkpoint = load_checkpoint(last)
    first = checkpoint["generator"]["layers.0.0.weight"]  # the transition that reads the embedding
    checkpoint["generator"]["layers.0.0.weight"] = torch.zeros_like(first)
    save_atomic(checkpoint, last)

    # The check alone, as the UI's "Execute checks" runs it on the materialized GAN.
    result = materialize(
        [*all_assets, *all_checks],
        resources=make_resources(strict, copy),
        selection=AssetSelection.checks_for_assets("gan_128"),
        raise_on_error=False,
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    learned = evaluations["learned_not_collapsed"]
    assert not learned.passed and learned.severity == AssetCheckSeverity.ERROR
    problems = learned.metadata["problems"].value
    assert any("barely differ" in p for p in problems), problems
    assert learned.metadata["sound_spread"].value < MIN_SOUND_SPREAD
