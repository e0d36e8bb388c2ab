"""The steps under the model assets `autoencoder_{dim}`, `audio_embeddings_{dim}` and `gan_{dim}`, without
Dagster: load a split, call `s2i_models`, write the history and previews, and say what to show.

Each step reads and writes the asset folders (`ArtifactFolders`) and returns a `StepOutput`; the assets
in `pipelines/assets/training.py` fingerprint, reuse and record it. Training state lives in
`<asset>/train/<settings key>/`: the key leaves out `epochs`, so raising `epochs` in the profile resumes
from the last checkpoint instead of starting over, and a killed run resumes where it stopped.

torch is imported inside the functions that use it, like everywhere in `pipelines`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.data.artifact_manifest import fingerprint, read_manifest
from pipelines.data.files import atomic_open, write_parquet_atomic
from pipelines.data.previews import image_grid_png, loss_curves_png, png_markdown, spectrogram_pairs_png
from pipelines.data.shards import SplitArrays, load_split
from pipelines.data.splits import SPLITS
from pipelines.data.steps import ArtifactFolders, CheckOutcome, StepOutput

if TYPE_CHECKING:
    from pipelines.profile import Profile
    from s2i_models.scoring import EpochJudge
    from s2i_models.train.autoencoder import AutoencoderConfig
    from s2i_models.train.gan import GanConfig

Log = Callable[[str], object]

BYTES_PER_SAMPLE = {"frames": 96 * 96 * 3, "mels": 100 * 128 * 2}  # uint8 frames, float16 log-mels


# ---- data ---------------------------------------------------------------------------------------------------


def load_shards(folders: ArtifactFolders, split: str) -> SplitArrays:
    """A split's frames, log-mels and sample records, read from its shards into memory."""
    from pipelines.data.shards import current_shards

    paths = current_shards(folders.folder("shards")).paths(split)
    if not paths:
        raise FileNotFoundError(
            f"no {split} shards under {folders.folder('shards')}: materialize `shards` first"
        )
    return load_split(paths)


def split_size(folders: ArtifactFolders, split: str) -> int:
    from pipelines.data.shards import current_shards

    return current_shards(folders.folder("shards")).samples(split)


def training_batches(
    folders: ArtifactFolders,
    split: str,
    device: str,
    fields: tuple[str, ...],
    *,
    embeddings: np.ndarray | None = None,
    log: Log | None = None,
    **options: Any,
):
    """The split held in (device) memory when it fits in half of what is free, else streamed from its shards."""
    import torch

    from s2i_models.loaders import InMemoryBatches, ShardStream, fits_in_memory

    count = split_size(folders, split)
    per_sample = sum(BYTES_PER_SAMPLE[field] for field in fields)
    if fits_in_memory(count, per_sample, device):
        data = load_shards(folders, split)
        arrays = {"frames": data.frames, "mels": data.mels}
        tensors = {field: torch.from_numpy(arrays[field]) for field in fields}
        if embeddings is not None:
            tensors["embeddings"] = torch.from_numpy(embeddings)
        return InMemoryBatches(device=device, **tensors, **options)
    if log:
        log(
            f"{split}: {count} samples x {per_sample} bytes do not fit in {device} memory; streaming the shards"
        )
    from pipelines.data.shards import current_shards

    # One consistent set for the whole stream: a new `shards` materialization switches sets, not files.
    paths = current_shards(folders.folder("shards")).paths(split)
    return ShardStream(paths, device=device, fields=fields, embeddings=embeddings, **options)


def load_stats(folders: ArtifactFolders) -> dict:
    return json.loads((folders.folder("spectrogram_stats") / "stats.json").read_text())


def work_dir(folder: Path, settings: dict) -> Path:
    """Where training state lives; every other settings key's state is removed once this one finishes."""
    from s2i_models.train import RUN_OPTIONS

    key = fingerprint("work", {k: v for k, v in settings.items() if k not in RUN_OPTIONS}, {})
    return folder / "train" / key


def drop_other_work_dirs(folder: Path, keep: Path) -> None:
    for other in (folder / "train").glob("*"):
        if other != keep and other.is_dir():
            shutil.rmtree(other)


# ---- settings ---------------------------------------------------------------------------------------------------


def autoencoder_config(settings: Profile, dim: int) -> AutoencoderConfig:
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
        compile=ae.compile,
        step=ae.step,
        memory_format=ae.memory_format,
        sgd=ae.sgd,
        seed=settings.seed,
    )


def gan_config(settings: Profile, dim: int) -> GanConfig:
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
        step=gan.step,
        memory_format=gan.memory_format,
        sgd=gan.sgd,
        seed=settings.seed,
    )


def judges_fingerprint(settings: Profile) -> dict:
    """What a GAN's result depends on beyond its `GanConfig`, for its fingerprint: the per-epoch judges (the
    files' names, sizes and times) and the releases `gan.init_from` starts training from (their checksums).
    Without either it is {}, so fingerprints made before these settings existed stay valid."""
    from pipelines.data.release import init_fingerprints

    starts = init_fingerprints(settings)
    return _judges_fingerprint(settings) | ({"init_from": starts} if starts else {})


def _judges_fingerprint(settings: Profile) -> dict:
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


# ---- autoencoder_{dim} ------------------------------------------------------------------------------------------


def train_autoencoder_step(
    folders: ArtifactFolders, config: AutoencoderConfig, inputs: dict[str, str], device: str, log: Log
) -> StepOutput:
    """Trains `autoencoder_{dim}` on the training split's log-mels (MSE), resuming its training folder;
    writes the loss history; metadata with the loss curve and reconstructions of validation sounds."""
    import torch

    from s2i_models.loaders import spectrogram_batch
    from s2i_models.train.autoencoder import train_autoencoder
    from s2i_models.translate import load_autoencoder

    dim = config.dim
    key = f"autoencoder_{dim}"
    folder = folders.folder(key)
    stats = load_stats(folders)
    log(
        f"{key}: {split_size(folders, 'train')} training and {split_size(folders, 'val')} validation "
        f"spectrograms on {device}"
    )
    batches = training_batches(
        folders, "train", device, ("mels",), batch_size=config.batch_size, seed=config.seed, log=log
    )
    val_batches = training_batches(
        folders, "val", device, ("mels",), batch_size=config.batch_size, shuffle=False
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
        on_epoch=lambda record: log(f"{key} " + epoch_line(record, config.epochs)),
    )
    drop_other_work_dirs(folder, run_dir)
    history = pd.DataFrame(result.history)
    write_parquet_atomic(folder / "history.parquet", history)

    model = load_autoencoder(result.final_checkpoint, dim)
    val = load_shards(folders, "val")
    picks = one_per_class(val.meta, count=1)
    inputs_scaled = spectrogram_batch(torch.from_numpy(val.mels[picks]), stats)  # (P, 1, 128, 100)
    with torch.no_grad():
        recon, _ = model(inputs_scaled)
    originals = inputs_scaled[:, 0].transpose(1, 2).numpy()
    recons = recon[:, 0].transpose(1, 2).numpy()
    metadata = {
        **history_metadata(history, ["train_loss", "val_loss"]),
        "resumed_from_epoch": result.resumed_from or 0,
        "device": device,
        "parameters_millions": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
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
        "tensorboard_path": str(run_dir / "tensorboard"),
    }
    return StepOutput(
        files=[result.final_checkpoint, folder / "history.parquet"],
        metadata=metadata,
        manifest={"checkpoint": str(result.final_checkpoint.relative_to(folder))},
    )


def convert_authors_autoencoder(folders: ArtifactFolders, dim: int, source: Path, log: Log) -> StepOutput:
    """`autoencoder_{dim}` as the authors' released autoencoder `source`: converted, not trained; its
    reconstruction error on validation spectrograms is the history."""
    import torch

    from s2i_models.authors import autoencoder_checkpoint, epoch_of
    from s2i_models.checkpoint import save_atomic
    from s2i_models.loaders import spectrogram_batch
    from s2i_models.translate import load_autoencoder

    key = f"autoencoder_{dim}"
    folder = folders.folder(key)
    checkpoint_path = folder / "autoencoder.pt"
    save_atomic(autoencoder_checkpoint(source), checkpoint_path)
    model = load_autoencoder(checkpoint_path, dim)
    stats = load_stats(folders)
    val = load_shards(folders, "val")
    # The authors' reconstruction error on (at most 512) validation spectrograms, dropout off.
    probe = torch.from_numpy(val.mels[:512])
    with torch.no_grad():
        scaled = spectrogram_batch(probe, stats)
        val_loss = float(torch.nn.functional.mse_loss(model(scaled)[0], scaled))
        picks = one_per_class(val.meta, count=1)
        originals = spectrogram_batch(torch.from_numpy(val.mels[picks]), stats)
        recons = model(originals)[0]
    history = pd.DataFrame([{"epoch": epoch_of(source), "train_loss": val_loss, "val_loss": val_loss}])
    write_parquet_atomic(folder / "history.parquet", history)
    log(f"{key}: the authors' {source.name}; validation MSE {val_loss:.5f} on {len(probe)} spectrograms")
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
        "checkpoint_path": str(checkpoint_path),
    }
    return StepOutput(
        files=[checkpoint_path, folder / "history.parquet"],
        metadata=metadata,
        manifest={"checkpoint": checkpoint_path.name},
    )


# ---- audio_embeddings_{dim} -------------------------------------------------------------------------------------


def load_encoder(folders: ArtifactFolders, autoencoder_key: str, dim: int, device: str):
    from s2i_models.translate import load_autoencoder

    folder = folders.folder(autoencoder_key)
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


def write_audio_embeddings(folders: ArtifactFolders, dim: int, device: str) -> StepOutput:
    """`audio_embeddings_{dim}`: the frozen encoder's embeddings of every segment of every split, in shard
    order (`{split}.npy`), with their keys (`{split}_keys.parquet`)."""
    folder = folders.folder(f"audio_embeddings_{dim}")
    encoder = load_encoder(folders, f"autoencoder_{dim}", dim, device)
    stats = load_stats(folders)
    files, metadata = [], {}
    for split in SPLITS:
        data = load_shards(folders, split)
        embeddings = encode(encoder, data.mels, stats, device)
        with atomic_open(folder / f"{split}.npy") as stream:
            np.save(stream, embeddings)
        keys = pd.DataFrame(data.meta)[["clip_id", "class_name", "segment"]]
        write_parquet_atomic(folder / f"{split}_keys.parquet", keys)
        files += [folder / f"{split}.npy", folder / f"{split}_keys.parquet"]
        metadata[f"{split}_embeddings"] = len(embeddings)
        metadata[f"{split}_saturated_fraction"] = round(float((np.abs(embeddings) > 0.99).mean()), 4)
        metadata[f"{split}_std"] = round(float(embeddings.std(axis=0).mean()), 4)
    metadata.update({"dim": dim, "device": device})
    return StepOutput(files=files, metadata=metadata)


# ---- gan_{dim} -------------------------------------------------------------------------------------------------


def epoch_judge(
    settings: Profile, folders: ArtifactFolders, embeddings_key: str, device: str
) -> tuple[EpochJudge | None, str]:
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
    keys = pd.read_parquet(folders.folder(embeddings_key) / "test_keys.parquet")
    embeddings = np.load(folders.folder(embeddings_key) / "test.npy")
    return EpochJudge(embeddings, keys.class_name, judges, seed=settings.seed, device=device), described


def generated_grid(
    folders: ArtifactFolders,
    embeddings_key: str,
    checkpoint_path: Path,
    config: GanConfig,
    settings: Profile,
    device: str,
    samples: int = 3,
) -> bytes:
    """Fixed validation sounds: the true frame, then `samples` MC-dropout translations of the sound."""
    import torch

    from s2i_models.loaders import images_to_uint8
    from s2i_models.translate import load_generator

    val = load_shards(folders, "val")
    embeddings = np.load(folders.folder(embeddings_key) / "val.npy")
    picks = one_per_class(val.meta, settings.gan.preview_sounds_per_class)
    generator = load_generator(checkpoint_path, config.dim, device)
    torch.manual_seed(settings.seed)
    x = torch.from_numpy(embeddings[picks]).to(device)
    with torch.no_grad():
        generated = [images_to_uint8(generator(x)).cpu().numpy() for _ in range(samples)]
    rows = [[val.frames[index]] + [g[row] for g in generated] for row, index in enumerate(picks)]
    titles = [settings.classes.get(val.meta[i]["class_name"], val.meta[i]["class_name"]) for i in picks]
    return image_grid_png(rows, titles, ["true frame"] + [f"generated {s + 1}" for s in range(samples)])


def train_gan_step(
    folders: ArtifactFolders,
    settings: Profile,
    config: GanConfig,
    inputs: dict[str, str],
    device: str,
    log: Log,
) -> StepOutput:
    """Trains `gan_{dim}` (Algorithm 1) on the training frames and their sounds' embeddings, resuming its
    training folder and judging every epoch when judges exist; writes the history and a preview grid."""
    import torch

    from s2i_models.train.gan import train_gan

    dim = config.dim
    gan_key, embeddings_key = f"gan_{dim}", f"audio_embeddings_{dim}"
    folder = folders.folder(gan_key)
    embeddings = np.load(folders.folder(embeddings_key) / "train.npy")
    if len(embeddings) != split_size(folders, "train"):
        raise RuntimeError(
            f"{embeddings_key} has {len(embeddings)} training embeddings but the shards hold "
            f"{split_size(folders, 'train')} samples: re-materialize {embeddings_key}."
        )
    log(f"{gan_key}: {len(embeddings)} training pairs on {device}")
    batches = training_batches(
        folders,
        "train",
        device,
        ("frames",),
        embeddings=embeddings,
        batch_size=config.batch_size,
        seed=config.seed,
        log=log,
    )
    init, release = _fine_tuning(folders, settings, config, log)
    # The release (by content) is part of the training folder's key: another release trains in another folder.
    started_from = {"init_from": init["release"]} if init else {}
    run_dir = work_dir(folder, asdict(config) | inputs | started_from)
    judge, judged_by = epoch_judge(settings, folders, embeddings_key, device)
    if judge is not None:
        log(f"{gan_key}: informativity of the test sounds at every epoch, judged by {judged_by}")
    # The image grid TensorBoard shows at every checkpoint: the same validation sounds as generated_val.png.
    val_keys = pd.read_parquet(folders.folder(embeddings_key) / "val_keys.parquet")
    picks = one_per_class(val_keys.to_dict("records"), settings.gan.preview_sounds_per_class)
    preview = torch.from_numpy(np.load(folders.folder(embeddings_key) / "val.npy")[picks])
    result = train_gan(
        config,
        batches,
        run_dir,
        device=device,
        resume=True,
        on_epoch=lambda record: log(f"{gan_key} " + epoch_line(record, config.epochs)),
        judge=judge,
        preview_embeddings=preview,
        init=init,
    )
    drop_other_work_dirs(folder, run_dir)
    history = pd.DataFrame(result.history)
    write_parquet_atomic(folder / "history.parquet", history)
    # What always drawing the training set's mean image would score: the collapse check's yardstick.
    baseline = mean_image_loss_of(folders, "train")

    grid = generated_grid(folders, embeddings_key, result.final_checkpoint, config, settings, device)
    (folder / "generated_val.png").write_bytes(grid)
    smooth = 50 if len(history) >= 200 else 0
    metadata = {
        **history_metadata(history, ["pixel_loss", "adversarial_batch_loss", "discriminator_loss"]),
        "checkpoints": len(result.checkpoints),
        "mean_image_pixel_loss": round(baseline, 5),
        "resumed_from_epoch": result.resumed_from or 0,
        "device": device,
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
        "tensorboard_path": str(run_dir / "tensorboard"),
        "informativity_mode": f"every epoch, judged by {judged_by}"
        if judge
        else "saved checkpoints (no judges)",
    }
    if init is not None:
        metadata.update(init_from_path=str(release), init_from_epoch=init["epoch"])
    if "informativity" in history and history.informativity.notna().any():
        metadata.update(_judged_metadata(history, settings.classes, dim))
    return StepOutput(
        files=[*result.checkpoints, folder / "history.parquet", folder / "generated_val.png"],
        metadata=metadata,
        manifest={
            "checkpoints": [str(p.relative_to(folder)) for p in result.checkpoints],
            "mean_image_pixel_loss": baseline,
        },
    )


def mean_image_loss_of(folders: ArtifactFolders, split: str) -> float:
    """The pixel loss of always drawing `split`'s mean frame, read one shard at a time."""
    from pipelines.data.shards import current_shards
    from s2i_models.collapse import mean_image_loss

    paths = current_shards(folders.folder("shards")).paths(split)
    return mean_image_loss(load_split([path]).frames for path in paths)


def _fine_tuning(
    folders: ArtifactFolders, settings: Profile, config: GanConfig, log: Log
) -> tuple[dict | None, Path | None]:
    """(the state to start from, the release) when `gan.init_from` names a release for this dim, after
    verifying its checksums and that its networks fit the profile; (None, None) otherwise. The state's
    "release" is the release's fingerprint."""
    from pipelines.data.release import gan_init, init_release, release_fingerprint, same_autoencoder

    release = init_release(settings, config.dim)
    if release is None:
        return None, None
    init = gan_init(release, config) | {"release": release_fingerprint(release)}
    log(
        f"gan_{config.dim}: fine-tuning from the release {release} (epoch {init['epoch']}; checksums verified; "
        f"optimizer states {'loaded' if 'optimizer_g' in init else 'not in the release: fresh'})"
    )
    manifest = read_manifest(folders.folder(f"autoencoder_{config.dim}"))
    if manifest is not None and not same_autoencoder(
        release, folders.folder(f"autoencoder_{config.dim}") / manifest.data["checkpoint"]
    ):
        log(
            f"gan_{config.dim}: note: the release's autoencoder is not this data folder's autoencoder_{config.dim}, "
            "so its generator learnt from other embeddings; fine-tuning adapts it to these (for the authors' "
            "networks, autoencoder.pretrained: authors gives the same encoder)"
        )
    return init, release


def _judged_metadata(history: pd.DataFrame, classes: dict[str, str], dim: int) -> dict:
    """The per-epoch informativity the training loop recorded: last, best, the judges' share of the time."""
    judged = history[history.informativity.notna()]
    curves = {
        classes.get(c.removeprefix("informativity_"), c): judged[c].tolist()
        for c in judged.columns
        if c.startswith("informativity_")
    }
    return {
        "informativity_last": round(float(judged.informativity.iloc[-1]), 4),
        "informativity_best": round(float(judged.informativity.max()), 4),
        "judge_share_of_epoch": round(
            float(judged.judge_seconds.sum() / (judged.seconds.sum() + judged.judge_seconds.sum())), 4
        ),
        "informativity_curve": png_markdown(
            loss_curves_png(
                judged.epoch.tolist(), curves, f"GAN, dim {dim}: informativity of test sounds per epoch"
            ),
            "informativity per epoch",
        ),
    }


# ---- checks ------------------------------------------------------------------------------------------------------


def check_autoencoder(folders: ArtifactFolders, dim: int) -> CheckOutcome:
    """The final weights are finite and the training loss ended lower than it started."""
    from s2i_models.checkpoint import load_checkpoint

    folder = folders.folder(f"autoencoder_{dim}")
    manifest = read_manifest(folder)
    state = load_checkpoint(folder / manifest.data["checkpoint"])["model"]
    bad = [
        name for name, tensor in state.items() if tensor.is_floating_point() and not tensor.isfinite().all()
    ]
    history = pd.read_parquet(folder / "history.parquet")
    lower = bool(history.train_loss.iloc[-1] < history.train_loss.iloc[0]) if len(history) > 1 else True
    return CheckOutcome(
        passed=not bad and lower,
        metadata={
            "non_finite_tensors": bad[:20],
            "loss_first": float(history.train_loss.iloc[0]),
            "loss_last": float(history.train_loss.iloc[-1]),
        },
    )


def check_embeddings(folders: ArtifactFolders, dim: int) -> CheckOutcome:
    """Every split has (N, dim) finite embeddings in [-1, 1], N = the split's samples."""
    folder = folders.folder(f"audio_embeddings_{dim}")
    problems, counts = [], {}
    for split in SPLITS:
        values = np.load(folder / f"{split}.npy")
        keys = pd.read_parquet(folder / f"{split}_keys.parquet")
        counts[split] = len(values)
        if values.shape != (len(keys), dim):
            problems.append(f"{split}: shape {values.shape}, expected ({len(keys)}, {dim})")
        elif not np.isfinite(values).all() or np.abs(values).max() > 1.0 + 1e-6:
            problems.append(f"{split}: values not finite or outside [-1, 1]")
    return CheckOutcome(passed=not problems, metadata={"counts": counts, "problems": problems})


def check_gan(folders: ArtifactFolders, dim: int) -> CheckOutcome:
    """Every checkpoint's weights are finite, G maps (1, dim) to (1, 3, 96, 96), pixel loss ended lower."""
    import torch

    from s2i_models.checkpoint import load_checkpoint
    from s2i_models.translate import build_generator

    folder = folders.folder(f"gan_{dim}")
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
    return CheckOutcome(
        passed=not problems, metadata={"problems": problems[:20], "output_shape": list(shape)}
    )


# Test sounds translated for the spread (evenly over the split): enough for a stable figure.
SPREAD_SOUNDS = 256


def check_gan_learned(folders: ArtifactFolders, dim: int) -> CheckOutcome:
    """The final generator did not collapse: its translations of different test sounds differ (spread against
    the real test frames') and its pixel loss ends clearly below that of always drawing the mean image."""
    from s2i_models.collapse import CollapseVerdict, final_pixel_loss, sound_spread
    from s2i_models.translate import load_generator

    folder = folders.folder(f"gan_{dim}")
    manifest = read_manifest(folder)
    history = pd.read_parquet(folder / "history.parquet")
    baseline = manifest.data.get("mean_image_pixel_loss")
    if baseline is None:  # a GAN trained before the check existed
        baseline = mean_image_loss_of(folders, "train")
    embeddings = np.load(folders.folder(f"audio_embeddings_{dim}") / "test.npy")
    picks = np.unique(np.linspace(0, len(embeddings) - 1, min(SPREAD_SOUNDS, len(embeddings))).astype(int))
    real = load_shards(folders, "test").frames[picks]
    generator = load_generator(folder / manifest.data["checkpoints"][-1], dim)
    verdict = CollapseVerdict(
        pixel_loss=final_pixel_loss(history.pixel_loss.tolist()),
        mean_image_loss=float(baseline),
        sound_spread=sound_spread(generator, embeddings[picks], real),
    )
    return CheckOutcome(
        passed=not verdict.collapsed,
        metadata={
            "problems": verdict.problems,
            "final_pixel_loss": round(verdict.pixel_loss, 5),
            "mean_image_pixel_loss": round(verdict.mean_image_loss, 5),
            "loss_ratio": round(verdict.loss_ratio, 3),
            "sound_spread": round(verdict.sound_spread, 3),
            "test_sounds": len(picks),
        },
    )


# ---- helpers ------------------------------------------------------------------------------------------------------


def history_metadata(history: pd.DataFrame, keys: list[str]) -> dict:
    """Epochs trained, and each loss's first and last value."""
    first, last = history.iloc[0], history.iloc[-1]
    values = {"epochs": int(last["epoch"])}
    for key in keys:
        if key in history and history[key].notna().any():
            values[f"{key}_first"] = round(float(first[key]), 6)
            values[f"{key}_last"] = round(float(last[key]), 6)
    return values


def epoch_line(record: dict, epochs: int) -> str:
    """One log line per epoch: `epoch 3/10, pixel_loss 0.123, ...` (NaN values left out)."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        if key != "epoch" and isinstance(value, float) and value == value:
            parts.append(f"{key} {value:.4g}")
    return ", ".join(parts)


def one_per_class(meta: list[dict], count: int) -> list[int]:
    """Indices of the first `count` samples of each class, in class order (fixed, so previews compare)."""
    chosen: dict[str, list[int]] = {}
    for index, item in enumerate(meta):
        picks = chosen.setdefault(item["class_name"], [])
        if len(picks) < count:
            picks.append(index)
    return [i for name in sorted(chosen) for i in chosen[name]]
