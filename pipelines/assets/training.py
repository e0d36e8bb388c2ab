"""Per-dimension model assets from one factory: `autoencoder_{dim}`, `audio_embeddings_{dim}`, `gan_{dim}`.

The work is in `s2i_models` (networks, losses, training loops); these assets load the data a split at a
time, call the library, and record what came out. Training state lives in
`<asset>/train/<settings key>/`: the key leaves out `epochs`, so raising `epochs` in the profile resumes
from the last checkpoint instead of starting over, and a killed run resumes where it stopped.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, MaterializeResult, asset, asset_check

from pipelines.assets.common import Timer, result_from, reuse, upstream_fingerprint
from pipelines.data.artifact_manifest import fingerprint, read_manifest, write_manifest
from pipelines.data.files import atomic_open, write_parquet_atomic
from pipelines.data.previews import image_grid_png, loss_curves_png, png_markdown, spectrogram_pairs_png
from pipelines.data.shards import SplitArrays, load_split
from pipelines.data.splits import SPLITS
from pipelines.gpu import GPU_OP_TAGS, GPU_POOL
from pipelines.profile import Profile
from pipelines.resources import ArtifactStore, S2IProfile, TorchDevice

DIMS = (128, 256, 512, 1024, 2048)
AUTOENCODER_VERSION = "1"
EMBEDDINGS_VERSION = "1"
GAN_VERSION = "1"


# ---- data ---------------------------------------------------------------------------------------------------


def load_shards(store: ArtifactStore, split: str) -> SplitArrays:
    paths = sorted(store.folder("shards").glob(f"{split}-*.tar"))
    if not paths:
        raise FileNotFoundError(
            f"no {split} shards under {store.folder('shards')}: materialize `shards` first"
        )
    return load_split(paths)


BYTES_PER_SAMPLE = {"frames": 96 * 96 * 3, "mels": 100 * 128 * 2}  # uint8 frames, float16 log-mels


def split_size(store: ArtifactStore, split: str) -> int:
    manifest = read_manifest(store.folder("shards"))
    return int(manifest.data["splits"][split]["samples"])


def training_batches(
    store: ArtifactStore,
    split: str,
    device: str,
    fields: tuple[str, ...],
    *,
    embeddings=None,
    log=None,
    **options,
):
    """The split held in (device) memory when it fits in half of what is free, else streamed from its shards."""
    import torch

    from s2i_models.loaders import InMemoryBatches, ShardStream, fits_in_memory

    count = split_size(store, split)
    per_sample = sum(BYTES_PER_SAMPLE[field] for field in fields)
    if fits_in_memory(count, per_sample, device):
        data = load_shards(store, split)
        arrays = {"frames": data.frames, "mels": data.mels}
        tensors = {field: torch.from_numpy(arrays[field]) for field in fields}
        if embeddings is not None:
            tensors["embeddings"] = torch.from_numpy(embeddings)
        return InMemoryBatches(device=device, **tensors, **options)
    if log:
        log(
            f"{split}: {count} samples x {per_sample} bytes do not fit in {device} memory; streaming the shards"
        )
    paths = sorted(store.folder("shards").glob(f"{split}-*.tar"))
    return ShardStream(paths, device=device, fields=fields, embeddings=embeddings, **options)


def load_stats(store: ArtifactStore) -> dict:
    return json.loads((store.folder("spectrogram_stats") / "stats.json").read_text())


def work_dir(folder: Path, settings: dict) -> Path:
    """Where training state lives; every other settings key's state is removed once this one finishes."""
    key = fingerprint("work", {k: v for k, v in settings.items() if k not in ("epochs", "compile")}, {})
    return folder / "train" / key


def drop_other_work_dirs(folder: Path, keep: Path) -> None:
    for other in (folder / "train").glob("*"):
        if other != keep and other.is_dir():
            shutil.rmtree(other)


def _history_metadata(history: pd.DataFrame, keys: list[str]) -> dict:
    first, last = history.iloc[0], history.iloc[-1]
    values = {"epochs": int(last["epoch"])}
    for key in keys:
        if key in history and history[key].notna().any():
            values[f"{key}_first"] = round(float(first[key]), 6)
            values[f"{key}_last"] = round(float(last[key]), 6)
    return values


# ---- the factory ----------------------------------------------------------------------------------------------


def build_model_assets(dim: int):
    """The three model assets of one embedding dimension, and their checks."""
    autoencoder_key, embeddings_key, gan_key = f"autoencoder_{dim}", f"audio_embeddings_{dim}", f"gan_{dim}"

    def autoencoder_config(settings: Profile):
        from s2i_models.train.autoencoder import AutoencoderConfig

        ae = settings.autoencoder
        return AutoencoderConfig(
            dim=dim,
            width=ae.width,
            epochs=ae.epochs,
            batch_size=ae.batch_size,
            lr=ae.lr,
            momentum=ae.momentum,
            checkpoint_every=ae.checkpoint_every,
            precision=ae.precision,
            seed=settings.seed,
        )

    def gan_config(settings: Profile):
        from s2i_models.train.gan import GanConfig

        gan = settings.gan
        return GanConfig(
            dim=dim,
            generator=gan.generator,
            width=gan.width,
            epochs=gan.epochs,
            batch_size=gan.batch_size,
            lr=gan.lr,
            momentum=gan.momentum,
            adversarial_weight=gan.adversarial_weight,
            adversarial_average_epochs=gan.adversarial_average_epochs,
            discriminator_every=gan.discriminator_every,
            discriminator_unit=gan.discriminator_unit,
            checkpoint_every=gan.checkpoint_every,
            precision=gan.precision,
            compile=gan.compile,
            seed=settings.seed,
        )

    @asset(
        name=autoencoder_key,
        group_name="models",
        code_version=AUTOENCODER_VERSION,
        deps=["shards", "spectrogram_stats"],
        pool=GPU_POOL,
        op_tags=GPU_OP_TAGS,
        kinds={"pytorch"},
    )
    def autoencoder(
        context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
    ) -> MaterializeResult:
        """Audio autoencoder trained on the training split's log-mels (MSE); checkpoint and loss history."""
        from dataclasses import asdict

        import torch

        from s2i_models.loaders import spectrogram_batch
        from s2i_models.train.autoencoder import train_autoencoder
        from s2i_models.translate import load_autoencoder

        settings = profile.load()
        if settings.autoencoder.pretrained == "authors":
            return authors_autoencoder(context, settings, store, autoencoder_key, dim)
        config = autoencoder_config(settings)
        folder = store.folder(autoencoder_key)
        inputs = {key: upstream_fingerprint(store, key) for key in ("shards", "spectrogram_stats")}
        expected = fingerprint(AUTOENCODER_VERSION, asdict(config), inputs)
        if (cached := reuse(context, folder, expected)) is not None:
            return cached

        timer = Timer()
        device = torch_device.resolve()
        stats = load_stats(store)
        context.log.info(
            f"{autoencoder_key}: {split_size(store, 'train')} training and {split_size(store, 'val')} validation "
            f"spectrograms on {device}"
        )
        batches = training_batches(
            store,
            "train",
            device,
            ("mels",),
            batch_size=config.batch_size,
            seed=config.seed,
            log=context.log.info,
        )
        val_batches = training_batches(
            store, "val", device, ("mels",), batch_size=config.batch_size, shuffle=False
        )
        run_dir = work_dir(folder, asdict(config) | inputs)
        result = train_autoencoder(
            config,
            batches,
            val_batches,
            stats,
            run_dir,
            device=device,
            resume=True,
            on_epoch=lambda record: context.log.info(
                f"{autoencoder_key} " + _epoch_line(record, config.epochs)
            ),
        )
        drop_other_work_dirs(folder, run_dir)
        history = pd.DataFrame(result.history)
        write_parquet_atomic(folder / "history.parquet", history)

        model = load_autoencoder(result.final_checkpoint, dim)
        val = load_shards(store, "val")
        picks = _one_per_class(val.meta, count=1)
        inputs_scaled = spectrogram_batch(torch.from_numpy(val.mels[picks]), stats)  # (P, 1, 128, 100)
        with torch.no_grad():
            recon, _ = model(inputs_scaled)
        originals = inputs_scaled[:, 0].transpose(1, 2).numpy()
        recons = recon[:, 0].transpose(1, 2).numpy()
        metadata = {
            **_history_metadata(history, ["train_loss", "val_loss"]),
            "resumed_from_epoch": result.resumed_from or 0,
            "device": device,
            "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
            "seconds": timer.seconds,
            "loss_curve": png_markdown(
                loss_curves_png(
                    history.epoch.tolist(),
                    {k: history[k].tolist() for k in ("train_loss", "val_loss") if k in history},
                    f"autoencoder, dim {dim}: MSE",
                ),
                "loss curve",
            ),
            "reconstructions": png_markdown(
                spectrogram_pairs_png(originals, recons, [val.meta[i]["class_name"] for i in picks]),
                "reconstructions",
            ),
            "checkpoint_path": str(result.final_checkpoint),
        }
        manifest = write_manifest(
            folder,
            expected,
            settings=asdict(config),
            inputs=inputs,
            files=[result.final_checkpoint, folder / "history.parquet"],
            metadata=metadata,
            checkpoint=str(result.final_checkpoint.relative_to(folder)),
        )
        return result_from(manifest)

    @asset(
        name=embeddings_key,
        group_name="models",
        code_version=EMBEDDINGS_VERSION,
        deps=[autoencoder_key, "shards", "spectrogram_stats"],
        pool=GPU_POOL,
        op_tags=GPU_OP_TAGS,
        kinds={"pytorch", "numpy"},
    )
    def audio_embeddings(
        context: AssetExecutionContext, store: ArtifactStore, torch_device: TorchDevice
    ) -> MaterializeResult:
        """Frozen-encoder embeddings of every segment of every split, in shard order (`{split}.npy`)."""
        folder = store.folder(embeddings_key)
        inputs = {
            key: upstream_fingerprint(store, key) for key in (autoencoder_key, "shards", "spectrogram_stats")
        }
        expected = fingerprint(EMBEDDINGS_VERSION, {"dim": dim}, inputs)
        if (cached := reuse(context, folder, expected)) is not None:
            return cached
        timer = Timer()
        device = torch_device.resolve()
        encoder = load_encoder(store, autoencoder_key, dim, device)
        stats = load_stats(store)
        files, metadata = [], {}
        for split in SPLITS:
            data = load_shards(store, split)
            embeddings = encode(encoder, data.mels, stats, device)
            with atomic_open(folder / f"{split}.npy") as stream:
                np.save(stream, embeddings)
            keys = pd.DataFrame(data.meta)[["clip_id", "class_name", "segment"]]
            write_parquet_atomic(folder / f"{split}_keys.parquet", keys)
            files += [folder / f"{split}.npy", folder / f"{split}_keys.parquet"]
            metadata[f"{split}_embeddings"] = len(embeddings)
            metadata[f"{split}_saturated_fraction"] = round(float((np.abs(embeddings) > 0.99).mean()), 4)
            metadata[f"{split}_std"] = round(float(embeddings.std(axis=0).mean()), 4)
        metadata.update({"dim": dim, "device": device, "seconds": timer.seconds})
        manifest = write_manifest(
            folder, expected, settings={"dim": dim}, inputs=inputs, files=files, metadata=metadata
        )
        return result_from(manifest)

    @asset(
        name=gan_key,
        group_name="models",
        code_version=GAN_VERSION,
        deps=[embeddings_key, "shards"],
        pool=GPU_POOL,
        op_tags=GPU_OP_TAGS,
        kinds={"pytorch"},
    )
    def gan(
        context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
    ) -> MaterializeResult:
        """Conditional GAN (Algorithm 1): generator/discriminator checkpoints every N epochs, loss history."""
        from dataclasses import asdict

        from s2i_models.train.gan import train_gan

        settings = profile.load()
        config = gan_config(settings)
        folder = store.folder(gan_key)
        inputs = {key: upstream_fingerprint(store, key) for key in (embeddings_key, "shards")}
        settings_used = {k: v for k, v in asdict(config).items() if k != "compile"}  # speed, not results
        # Judges change the history (per-epoch informativity), not the weights: in the fingerprint, not in
        # the training folder's key, so adding judges re-records without retraining what is done.
        expected = fingerprint(GAN_VERSION, settings_used | judges_fingerprint(settings), inputs)
        if (cached := reuse(context, folder, expected)) is not None:
            return cached

        timer = Timer()
        device = torch_device.resolve()
        embeddings = np.load(store.folder(embeddings_key) / "train.npy")
        if len(embeddings) != split_size(store, "train"):
            raise RuntimeError(
                f"{embeddings_key} has {len(embeddings)} training embeddings but the shards hold "
                f"{split_size(store, 'train')} samples: re-materialize {embeddings_key}."
            )
        context.log.info(f"{gan_key}: {len(embeddings)} training pairs on {device}")
        batches = training_batches(
            store,
            "train",
            device,
            ("frames",),
            embeddings=embeddings,
            batch_size=config.batch_size,
            seed=config.seed,
            log=context.log.info,
        )
        run_dir = work_dir(folder, asdict(config) | inputs)
        judge, judged_by = epoch_judge(settings, store, embeddings_key, device)
        if judge is not None:
            context.log.info(
                f"{gan_key}: informativity of the test sounds at every epoch, judged by {judged_by}"
            )
        result = train_gan(
            config,
            batches,
            run_dir,
            device=device,
            resume=True,
            on_epoch=lambda record: context.log.info(f"{gan_key} " + _epoch_line(record, config.epochs)),
            judge=judge,
        )
        drop_other_work_dirs(folder, run_dir)
        history = pd.DataFrame(result.history)
        write_parquet_atomic(folder / "history.parquet", history)

        grid = generated_grid(store, embeddings_key, result.final_checkpoint, config, settings, device)
        (folder / "generated_val.png").write_bytes(grid)
        smooth = 50 if len(history) >= 200 else 0
        metadata = {
            **_history_metadata(history, ["pixel_loss", "adversarial_batch_loss", "discriminator_loss"]),
            "checkpoints": len(result.checkpoints),
            "resumed_from_epoch": result.resumed_from or 0,
            "device": device,
            "seconds": timer.seconds,
            "pixel_loss_curve": png_markdown(
                loss_curves_png(
                    history.epoch.tolist(),
                    {"training pixel loss": history.pixel_loss.tolist()},
                    f"GAN, dim {dim}: training pixel loss (Eq. 3)",
                    smooth=smooth,
                ),
                "pixel loss",
            ),
            "losses": png_markdown(
                loss_curves_png(
                    history.epoch.tolist(),
                    {
                        k: history[k].tolist()
                        for k in ("adversarial_batch_loss", "adversarial_ma_loss", "discriminator_loss")
                    },
                    f"GAN, dim {dim}: adversarial (G) and discriminator losses",
                ),
                "adversarial losses",
            ),
            "generated_validation_sounds": png_markdown(grid, "generated images for validation sounds"),
            "checkpoints_path": str(result.final_checkpoint.parent),
            "informativity_mode": f"every epoch, judged by {judged_by}"
            if judge
            else "saved checkpoints (no judges)",
        }
        if "informativity" in history and history.informativity.notna().any():
            judged = history[history.informativity.notna()]
            metadata["informativity_last"] = round(float(judged.informativity.iloc[-1]), 4)
            metadata["informativity_best"] = round(float(judged.informativity.max()), 4)
            metadata["judge_share_of_epoch"] = round(
                float(judged.judge_seconds.sum() / (judged.seconds.sum() + judged.judge_seconds.sum())), 4
            )
            curves = {
                settings.classes.get(c.removeprefix("informativity_"), c): judged[c].tolist()
                for c in judged.columns
                if c.startswith("informativity_")
            }
            metadata["informativity_curve"] = png_markdown(
                loss_curves_png(
                    judged.epoch.tolist(), curves, f"GAN, dim {dim}: informativity of test sounds per epoch"
                ),
                "informativity per epoch",
            )
        manifest = write_manifest(
            folder,
            expected,
            settings=asdict(config),
            inputs=inputs,
            files=[*result.checkpoints, folder / "history.parquet", folder / "generated_val.png"],
            metadata=metadata,
            checkpoints=[str(p.relative_to(folder)) for p in result.checkpoints],
        )
        return result_from(manifest)

    checks = _model_checks(dim, autoencoder_key, embeddings_key, gan_key)
    return [autoencoder, audio_embeddings, gan], checks


# ---- helpers the assets and checks share ------------------------------------------------------------------------


def _epoch_line(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        if key != "epoch" and isinstance(value, float) and value == value:
            parts.append(f"{key} {value:.4g}")
    return ", ".join(parts)


def _one_per_class(meta: list[dict], count: int) -> list[int]:
    """Indices of the first `count` samples of each class, in class order (fixed, so previews compare)."""
    chosen: dict[str, list[int]] = {}
    for index, item in enumerate(meta):
        picks = chosen.setdefault(item["class_name"], [])
        if len(picks) < count:
            picks.append(index)
    return [i for name in sorted(chosen) for i in chosen[name]]


def authors_autoencoder(
    context: AssetExecutionContext, settings: Profile, store: ArtifactStore, key: str, dim: int
) -> MaterializeResult:
    """`autoencoder_{dim}` as the authors' released autoencoder of that size: converted, not trained."""
    import torch

    from pipelines.data.files import sha256_file
    from s2i_models.authors import authors_file, autoencoder_checkpoint, epoch_of
    from s2i_models.checkpoint import save_atomic
    from s2i_models.loaders import spectrogram_batch
    from s2i_models.translate import load_autoencoder

    folder = store.folder(key)
    source = authors_file(settings.authors_models, "autoencoder", dim)
    inputs = {
        "authors_file": f"{source.name}:{sha256_file(source)}",
        **{name: upstream_fingerprint(store, name) for name in ("shards", "spectrogram_stats")},
    }
    expected = fingerprint(AUTOENCODER_VERSION, {"dim": dim, "pretrained": "authors"}, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached
    timer = Timer()
    checkpoint_path = folder / "autoencoder.pt"
    save_atomic(autoencoder_checkpoint(source), checkpoint_path)
    model = load_autoencoder(checkpoint_path, dim)
    stats = load_stats(store)
    val = load_shards(store, "val")
    # The authors' reconstruction error on (at most 512) validation spectrograms, dropout off.
    probe = torch.from_numpy(val.mels[:512])
    with torch.no_grad():
        scaled = spectrogram_batch(probe, stats)
        val_loss = float(torch.nn.functional.mse_loss(model(scaled)[0], scaled))
        picks = _one_per_class(val.meta, count=1)
        originals = spectrogram_batch(torch.from_numpy(val.mels[picks]), stats)
        recons = model(originals)[0]
    history = pd.DataFrame([{"epoch": epoch_of(source), "train_loss": val_loss, "val_loss": val_loss}])
    write_parquet_atomic(folder / "history.parquet", history)
    context.log.info(
        f"{key}: the authors' {source.name}; validation MSE {val_loss:.5f} on {len(probe)} spectrograms"
    )
    metadata = {
        "pretrained": "authors",
        "authors_file_path": str(source),
        "authors_epoch": epoch_of(source),
        "val_loss": round(val_loss, 6),
        "val_spectrograms_measured": len(probe),
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "reconstructions": png_markdown(
            spectrogram_pairs_png(
                originals[:, 0].transpose(1, 2).numpy(),
                recons[:, 0].transpose(1, 2).numpy(),
                [val.meta[i]["class_name"] for i in picks],
            ),
            "reconstructions",
        ),
        "seconds": timer.seconds,
        "checkpoint_path": str(checkpoint_path),
    }
    manifest = write_manifest(
        folder,
        expected,
        settings={"dim": dim, "pretrained": "authors"},
        inputs=inputs,
        files=[checkpoint_path, folder / "history.parquet"],
        metadata=metadata,
        checkpoint=checkpoint_path.name,
    )
    return result_from(manifest)


def epoch_judge(settings: Profile, store: ArtifactStore, embeddings_key: str, device: str):
    """(judge, what judges) for a GAN's training loop when judges exist before it trains, else (None, "")."""
    from s2i_models.scoring import EpochJudge

    evaluation = settings.evaluation
    if evaluation.classifiers == "authors":
        from s2i_models.authors import load_authors_classifiers

        judges = load_authors_classifiers(settings.authors_models, settings.class_names, device)
        described = f"the authors' classifiers C1-C5 in {settings.authors_models}"
    elif evaluation.judges is not None:
        from s2i_models.checkpoint import load_checkpoint
        from s2i_models.train.classifier import load_classifier

        judges = {}
        for name in settings.class_names:
            path = evaluation.judges / f"{name}.pt"
            if not path.is_file():
                raise FileNotFoundError(
                    f"evaluation.judges: {path} is missing; the folder must hold an informativity classifier "
                    f"<class>.pt per class (an earlier run's informativity_classifiers folder)"
                )
            judges[name] = load_classifier(load_checkpoint(path), device)
        described = f"the classifiers in {evaluation.judges}"
    else:
        return None, ""
    keys = pd.read_parquet(store.folder(embeddings_key) / "test_keys.parquet")
    embeddings = np.load(store.folder(embeddings_key) / "test.npy")
    return EpochJudge(embeddings, keys.class_name, judges, seed=settings.seed, device=device), described


def judges_fingerprint(settings: Profile) -> dict:
    """What the per-epoch judges are, for the GAN's fingerprint (the files' names, sizes and times)."""
    evaluation = settings.evaluation
    if evaluation.classifiers == "authors":
        from s2i_models.authors import authors_file

        files = [
            authors_file(settings.authors_models, "classifier", class_name=n) for n in settings.class_names
        ]
    elif evaluation.judges is not None:
        files = [evaluation.judges / f"{n}.pt" for n in settings.class_names]
    else:
        return {}
    stamps = []
    for path in files:
        status = path.stat() if path.is_file() else None
        stamps.append(
            f"{path.name}:{status.st_size}:{status.st_mtime_ns}" if status else f"{path.name}:missing"
        )
    return {"judges": stamps}


def load_encoder(store: ArtifactStore, autoencoder_key: str, dim: int, device: str):
    from s2i_models.translate import load_autoencoder

    folder = store.folder(autoencoder_key)
    manifest = read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(f"`{autoencoder_key}` has not been materialized: materialize it first")
    return load_autoencoder(folder / manifest.data["checkpoint"], dim, device)


def encode(model, mels: np.ndarray, stats: dict, device: str, batch_size: int = 256) -> np.ndarray:
    """(N, 100, 128) unscaled log-mels -> (N, dim) float32 embeddings (encoder in eval mode)."""
    import torch

    from s2i_models.loaders import spectrogram_batch

    outputs = []
    with torch.no_grad():
        for start in range(0, len(mels), batch_size):
            batch = torch.from_numpy(mels[start : start + batch_size]).to(device)
            outputs.append(model.encode(spectrogram_batch(batch, stats)).float().cpu().numpy())
    return np.concatenate(outputs)


def generated_grid(
    store, embeddings_key, checkpoint_path, config, settings: Profile, device: str, samples: int = 3
) -> bytes:
    """Fixed validation sounds: the true frame, then `samples` MC-dropout translations of the sound."""
    import torch

    from s2i_models.loaders import images_to_uint8
    from s2i_models.translate import load_generator

    val = load_shards(store, "val")
    embeddings = np.load(store.folder(embeddings_key) / "val.npy")
    picks = _one_per_class(val.meta, settings.gan.preview_sounds_per_class)
    generator = load_generator(checkpoint_path, config.dim, device)
    torch.manual_seed(settings.seed)
    x = torch.from_numpy(embeddings[picks]).to(device)
    with torch.no_grad():
        generated = [images_to_uint8(generator(x)).cpu().numpy() for _ in range(samples)]
    rows = [[val.frames[index]] + [g[row] for g in generated] for row, index in enumerate(picks)]
    titles = [settings.classes.get(val.meta[i]["class_name"], val.meta[i]["class_name"]) for i in picks]
    return image_grid_png(rows, titles, ["true frame"] + [f"generated {s + 1}" for s in range(samples)])


def _model_checks(dim: int, autoencoder_key: str, embeddings_key: str, gan_key: str):
    @asset_check(asset=autoencoder_key, name="weights_finite_and_loss_lower", blocking=True)
    def autoencoder_check(store: ArtifactStore) -> AssetCheckResult:
        """The final weights are finite and the training loss ended lower than it started."""
        from s2i_models.checkpoint import load_checkpoint

        folder = store.folder(autoencoder_key)
        manifest = read_manifest(folder)
        state = load_checkpoint(folder / manifest.data["checkpoint"])["model"]
        bad = [
            name
            for name, tensor in state.items()
            if tensor.is_floating_point() and not tensor.isfinite().all()
        ]
        history = pd.read_parquet(folder / "history.parquet")
        lower = bool(history.train_loss.iloc[-1] < history.train_loss.iloc[0]) if len(history) > 1 else True
        return AssetCheckResult(
            passed=not bad and lower,
            metadata={
                "non_finite_tensors": bad[:20],
                "loss_first": float(history.train_loss.iloc[0]),
                "loss_last": float(history.train_loss.iloc[-1]),
            },
        )

    @asset_check(asset=embeddings_key, name="shapes_and_range", blocking=True)
    def embeddings_check(store: ArtifactStore) -> AssetCheckResult:
        """Every split has (N, dim) finite embeddings in [-1, 1], N = the split's samples."""
        folder = store.folder(embeddings_key)
        problems, counts = [], {}
        for split in SPLITS:
            values = np.load(folder / f"{split}.npy")
            keys = pd.read_parquet(folder / f"{split}_keys.parquet")
            counts[split] = len(values)
            if values.shape != (len(keys), dim):
                problems.append(f"{split}: shape {values.shape}, expected ({len(keys)}, {dim})")
            elif not np.isfinite(values).all() or np.abs(values).max() > 1.0 + 1e-6:
                problems.append(f"{split}: values not finite or outside [-1, 1]")
        return AssetCheckResult(passed=not problems, metadata={"counts": counts, "problems": problems})

    @asset_check(asset=gan_key, name="weights_finite_output_shape_loss_lower", blocking=True)
    def gan_check(store: ArtifactStore) -> AssetCheckResult:
        """Every checkpoint's weights are finite, G maps (1, dim) to (1, 3, 96, 96), pixel loss ended lower."""
        import torch

        from s2i_models.checkpoint import load_checkpoint
        from s2i_models.translate import build_generator

        folder = store.folder(gan_key)
        manifest = read_manifest(folder)
        problems = []
        for name in manifest.data["checkpoints"]:
            checkpoint = load_checkpoint(folder / name)
            for part in ("generator", "discriminator"):
                for key, tensor in checkpoint[part].items():
                    if tensor.is_floating_point() and not tensor.isfinite().all():
                        problems.append(f"{name}: {part}.{key} not finite")
        generator = build_generator(checkpoint["config"], dim)
        generator.load_state_dict(checkpoint["generator"])
        with torch.no_grad():
            shape = tuple(generator.eval()(torch.zeros(1, dim)).shape)
        if shape != (1, 3, 96, 96):
            problems.append(f"generator output {shape}, expected (1, 3, 96, 96)")
        history = pd.read_parquet(folder / "history.parquet")
        if len(history) > 1 and not history.pixel_loss.iloc[-1] < history.pixel_loss.iloc[0]:
            problems.append(
                f"pixel loss did not fall: {history.pixel_loss.iloc[0]:.4f} -> {history.pixel_loss.iloc[-1]:.4f}"
            )
        return AssetCheckResult(
            passed=not problems, metadata={"problems": problems[:20], "output_shape": list(shape)}
        )

    return [autoencoder_check, embeddings_check, gan_check]


model_assets = []
model_checks = []
for _dim in DIMS:
    _assets, _checks = build_model_assets(_dim)
    model_assets += _assets
    model_checks += _checks
