from pathlib import Path

import pytest

TINY_DEMO = """\
base: demo
workers: 2
source: {kind: demo, clips_per_class: 6}
splits: {train: 10, val: 3, test: 3}
shards: {samples_per_shard: 16}
autoencoder: {width: 0.0625, epochs: 2, batch_size: 16, checkpoint_every: 1}
gan: {width: 0.0625, epochs: 3, batch_size: 16, discriminator_every: 2, checkpoint_every: 1, collapse_check: warn}
"""


@pytest.fixture
def tiny_profile(tmp_path: Path) -> Path:
    """The demo profile at the smallest size the whole chain still runs on."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_DEMO)
    return path


def make_resources(profile: Path | str, data_dir: Path) -> dict:
    """The resources `dagster.materialize` needs to run any asset against `profile` and `data_dir`, on the CPU."""
    from pipelines.resources import ArtifactStore, S2IProfile, TorchDevice

    return {
        "profile": S2IProfile(profile=str(profile)),
        "store": ArtifactStore(root=str(data_dir)),
        "torch_device": TorchDevice(device="cpu"),
    }


MODELS = ["autoencoder_128", "audio_embeddings_128", "gan_128"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The tiny chain up to gan_128, trained once for every test module that needs trained networks."""
    from dagster import materialize

    from pipelines.definitions import all_assets, all_checks

    root = tmp_path_factory.mktemp("models")
    profile = root / "tiny.yaml"
    profile.write_text(TINY_DEMO)
    data = root / "data"
    chain = ["vegas_clips", "segments", "splits", "spectrogram_stats", "shards"]
    result = materialize(
        [*all_assets, *all_checks], resources=make_resources(profile, data), selection=chain + MODELS
    )
    return profile, data, result
