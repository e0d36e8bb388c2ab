"""Per-dimension model assets from one factory: `autoencoder_{dim}`, `audio_embeddings_{dim}`, `gan_{dim}`.

The work is in `pipelines.data.training_steps` (which calls `s2i_models`); these assets read the profile,
fingerprint their inputs, reuse an unchanged output, call one step and record what it wrote. The library
and torch are imported inside the assets, so loading the definitions stays fast.
"""

# No `from __future__ import annotations` here: Dagster compares an asset's `context` annotation with
# the class itself, so hints of names imported only for type checking are quoted instead.
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MaterializeResult,
    asset,
    asset_check,
)

from pipelines.assets.common import Timer, check_result, materialized, reuse, upstream_fingerprint
from pipelines.data.artifact_manifest import fingerprint
from pipelines.gpu import EMBEDDING_PRIORITY, GAN_PRIORITY, GPU_OP_TAGS, GPU_POOL, with_priority
from pipelines.profile import Profile
from pipelines.resources import ArtifactStore, S2IProfile, TorchDevice

if TYPE_CHECKING:
    from pipelines.data.shards import SplitArrays

DIMS = (128, 256, 512, 1024, 2048)
AUTOENCODER_VERSION = "1"
EMBEDDINGS_VERSION = "1"
GAN_VERSION = "1"


def load_shards(store: ArtifactStore, split: str) -> "SplitArrays":
    """A split's frames, log-mels and sample records from the store's shards (`training_steps.load_shards`)."""
    from pipelines.data import training_steps

    return training_steps.load_shards(store.artifact_folders(), split)


def settings_that_change_results(config) -> dict:
    """A training config's fields without its speed options (how a step runs, not what it computes)."""
    from dataclasses import asdict

    from s2i_models.train import SPEED_OPTIONS

    return {k: v for k, v in asdict(config).items() if k not in SPEED_OPTIONS}


def build_model_assets(dim: int):
    """The three model assets of one embedding dimension, and their checks."""
    autoencoder_key, embeddings_key, gan_key = f"autoencoder_{dim}", f"audio_embeddings_{dim}", f"gan_{dim}"

    @asset(
        name=autoencoder_key,
        group_name="models",
        code_version=AUTOENCODER_VERSION,
        deps=["shards", "spectrogram_stats"],
        pool=GPU_POOL,
        op_tags=with_priority(GPU_OP_TAGS, EMBEDDING_PRIORITY),
        kinds={"pytorch"},
    )
    def autoencoder(
        context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
    ) -> MaterializeResult:
        """Audio autoencoder trained on the training split's log-mels (MSE); checkpoint and loss history."""
        from dataclasses import asdict

        from pipelines.data.training_steps import autoencoder_config, train_autoencoder_step

        settings = profile.load()
        if settings.autoencoder.pretrained == "authors":
            return authors_autoencoder(context, settings, store, autoencoder_key, dim)
        config = autoencoder_config(settings, dim)
        folder = store.folder(autoencoder_key)
        inputs = {key: upstream_fingerprint(store, key) for key in ("shards", "spectrogram_stats")}
        expected = fingerprint(AUTOENCODER_VERSION, settings_that_change_results(config), inputs)
        if (cached := reuse(context, folder, expected)) is not None:
            return cached

        timer = Timer()
        device = torch_device.resolve(context)
        output = train_autoencoder_step(
            store.artifact_folders(), config, inputs, device, log=context.log.info
        )
        return materialized(folder, expected, output, settings=asdict(config), inputs=inputs, timer=timer)

    @asset(
        name=embeddings_key,
        group_name="models",
        code_version=EMBEDDINGS_VERSION,
        deps=[autoencoder_key, "shards", "spectrogram_stats"],
        pool=GPU_POOL,
        op_tags=with_priority(GPU_OP_TAGS, EMBEDDING_PRIORITY),
        kinds={"pytorch", "numpy"},
    )
    def audio_embeddings(
        context: AssetExecutionContext, store: ArtifactStore, torch_device: TorchDevice
    ) -> MaterializeResult:
        """Frozen-encoder embeddings of every segment of every split, in shard order (`{split}.npy`)."""
        from pipelines.data.training_steps import write_audio_embeddings

        folder = store.folder(embeddings_key)
        inputs = {
            key: upstream_fingerprint(store, key) for key in (autoencoder_key, "shards", "spectrogram_stats")
        }
        expected = fingerprint(EMBEDDINGS_VERSION, {"dim": dim}, inputs)
        if (cached := reuse(context, folder, expected)) is not None:
            return cached
        timer = Timer()
        device = torch_device.resolve(context)
        output = write_audio_embeddings(store.artifact_folders(), dim, device)
        return materialized(folder, expected, output, settings={"dim": dim}, inputs=inputs, timer=timer)

    @asset(
        name=gan_key,
        group_name="models",
        code_version=GAN_VERSION,
        deps=[embeddings_key, "shards"],
        pool=GPU_POOL,
        op_tags=with_priority(GPU_OP_TAGS, GAN_PRIORITY),
        kinds={"pytorch"},
    )
    def gan(
        context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
    ) -> MaterializeResult:
        """Conditional GAN (Algorithm 1): generator/discriminator checkpoints every N epochs, loss history."""
        from dataclasses import asdict

        from pipelines.data.training_steps import gan_config, judges_fingerprint, train_gan_step

        settings = profile.load()
        config = gan_config(settings, dim)
        folder = store.folder(gan_key)
        inputs = {key: upstream_fingerprint(store, key) for key in (embeddings_key, "shards")}
        settings_used = settings_that_change_results(config)
        # Judges change the history (per-epoch informativity), not the weights: in the fingerprint, not in
        # the training folder's key, so adding judges re-records without retraining what is done.
        expected = fingerprint(GAN_VERSION, settings_used | judges_fingerprint(settings), inputs)
        if (cached := reuse(context, folder, expected)) is not None:
            return cached

        timer = Timer()
        device = torch_device.resolve(context)
        output = train_gan_step(
            store.artifact_folders(), settings, config, inputs, device, log=context.log.info
        )
        return materialized(folder, expected, output, settings=asdict(config), inputs=inputs, timer=timer)

    checks = _model_checks(dim, autoencoder_key, embeddings_key, gan_key)
    return [autoencoder, audio_embeddings, gan], checks


def authors_autoencoder(
    context: AssetExecutionContext, settings: Profile, store: ArtifactStore, key: str, dim: int
) -> MaterializeResult:
    """`autoencoder_{dim}` as the authors' released autoencoder of that size: converted, not trained."""
    from pipelines.data.files import sha256_file
    from pipelines.data.training_steps import convert_authors_autoencoder
    from s2i_models.authors import authors_file

    folder = store.folder(key)
    source = authors_file(settings.authors_models, "autoencoder", dim)
    inputs = {
        "authors_file": f"{source.name}:{sha256_file(source)}",
        **{name: upstream_fingerprint(store, name) for name in ("shards", "spectrogram_stats")},
    }
    used = {"dim": dim, "pretrained": "authors"}
    expected = fingerprint(AUTOENCODER_VERSION, used, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached
    timer = Timer()
    output = convert_authors_autoencoder(store.artifact_folders(), dim, source, log=context.log.info)
    return materialized(folder, expected, output, settings=used, inputs=inputs, timer=timer)


EMBEDDING_TAGS = with_priority({}, EMBEDDING_PRIORITY)
GAN_TAGS = with_priority({}, GAN_PRIORITY)


def _model_checks(dim: int, autoencoder_key: str, embeddings_key: str, gan_key: str):
    @asset_check(
        asset=autoencoder_key, name="weights_finite_and_loss_lower", blocking=True, op_tags=EMBEDDING_TAGS
    )
    def autoencoder_check(store: ArtifactStore) -> AssetCheckResult:
        """The final weights are finite and the training loss ended lower than it started."""
        from pipelines.data.training_steps import check_autoencoder

        return check_result(check_autoencoder(store.artifact_folders(), dim))

    @asset_check(asset=embeddings_key, name="shapes_and_range", blocking=True, op_tags=EMBEDDING_TAGS)
    def embeddings_check(store: ArtifactStore) -> AssetCheckResult:
        """Every split has (N, dim) finite embeddings in [-1, 1], N = the split's samples."""
        from pipelines.data.training_steps import check_embeddings

        return check_result(check_embeddings(store.artifact_folders(), dim))

    @asset_check(
        asset=gan_key, name="weights_finite_output_shape_loss_lower", blocking=True, op_tags=GAN_TAGS
    )
    def gan_check(store: ArtifactStore) -> AssetCheckResult:
        """Every checkpoint's weights are finite, G maps (1, dim) to (1, 3, 96, 96), pixel loss ended lower."""
        from pipelines.data.training_steps import check_gan

        return check_result(check_gan(store.artifact_folders(), dim))

    @asset_check(asset=gan_key, name="learned_not_collapsed", blocking=True, op_tags=GAN_TAGS)
    def gan_learned_check(store: ArtifactStore, profile: S2IProfile) -> AssetCheckResult:
        """Translations of different test sounds differ, and the pixel loss ends clearly below that of always
        drawing the training set's mean image (s2i_models/collapse.py). Severity: `gan.collapse_check`."""
        from pipelines.data.training_steps import check_gan_learned

        severity = profile.load().gan.collapse_check
        return check_result(
            check_gan_learned(store.artifact_folders(), dim),
            severity=AssetCheckSeverity.ERROR if severity == "error" else AssetCheckSeverity.WARN,
        )

    return [autoencoder_check, embeddings_check, gan_check, gan_learned_check]


model_assets = []
model_checks = []
for _dim in DIMS:
    _assets, _checks = build_model_assets(_dim)
    model_assets += _assets
    model_checks += _checks
