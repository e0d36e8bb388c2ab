"""Informativity evaluation (paper §5.3-5.4; SPEC §5-6): candidates, labels, classifiers, per-dim
informativity, and the report.

informativity_candidates -> informativity_labels -> informativity_classifiers -> informativity_{dim} -> s2i_report

Evaluation reads a GAN's checkpoints from its training folder, not only from a finished `gan_{dim}`: the
nightly schedule can follow a training run still in progress. Each checkpoint's informativity is cached
under its own key, so a re-run evaluates only the checkpoints it has not seen.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AutomationCondition,
    Failure,
    MaterializeResult,
    asset,
    asset_check,
)

from pipelines.assets.common import Timer, markdown_table, result_from, reuse, upstream_fingerprint
from pipelines.assets.training import DIMS, load_shards
from pipelines.data.artifact_manifest import fingerprint, write_manifest
from pipelines.data.candidates import (
    balanced_selection,
    evenly_spaced,
    label_shortfall,
    labelling_order,
    png_bytes,
    sha256_bytes,
    sounds_per_class,
)
from pipelines.data.classes import PAPER_CLASSIFIER_ACCURACY
from pipelines.data.files import atomic_open, write_json_atomic, write_parquet_atomic
from pipelines.data.previews import image_grid_png, loss_curves_png, png_markdown
from pipelines.data.progress import Progress
from pipelines.gpu import GPU_OP_TAGS, GPU_POOL
from pipelines.resources import ArtifactStore, S2IProfile, TorchDevice

CANDIDATES_VERSION = "1"
LABELS_VERSION = "2"
CLASSIFIERS_VERSION = "2"
INFORMATIVITY_VERSION = "3"
REPORT_VERSION = "2"
MIN_VIDEOS_TO_SPLIT = 5  # fewer source videos in a class: its classifier's split is by sound
BASELINE_EPOCH = 0  # the untrained generator's row in an informativity history

# Re-evaluate when an upstream asset (a GAN, its embeddings, the classifiers) has new data, once that run
# has finished; a missing upstream never triggers a run that would fail.
ON_NEW_UPSTREAM = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("upstream updated")
# The report shows whatever dims exist, so a missing dim does not hold it back.
ON_ANY_UPSTREAM = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("an evaluated dim updated")


# ---- GAN checkpoints ------------------------------------------------------------------------------------------


def gan_checkpoints(store: ArtifactStore, dim: int) -> list[tuple[int, Path]]:
    """(epoch, path) of every saved checkpoint of gan_{dim}'s newest training folder, by epoch; [] if none."""
    from s2i_models.train.gan import CHECKPOINT_NAME, list_checkpoints

    runs = [
        (max(p.stat().st_mtime_ns for p in found), run)
        for run in store.folder(f"gan_{dim}").glob("train/*")
        if (found := list_checkpoints(run))
    ]
    if not runs:
        return []
    newest = max(runs)[1]
    return [(int(CHECKPOINT_NAME.fullmatch(p.name).group(1)), p) for p in list_checkpoints(newest)]


def require_checkpoints(store: ArtifactStore, dim: int) -> list[tuple[int, Path]]:
    found = gan_checkpoints(store, dim)
    if not found:
        raise Failure(
            f"gan_{dim} has no saved checkpoint under {store.folder(f'gan_{dim}') / 'train'}: train it first "
            f"(dagster asset materialize -m pipelines --select '*gan_{dim}')"
        )
    return found


def checkpoint_stamp(path: Path) -> str:
    """Identifies a checkpoint file's content cheaply (checkpoints are written once, atomically)."""
    status = path.stat()
    return f"{path.name}:{status.st_size}:{status.st_mtime_ns}"


def epoch_informativity(store: ArtifactStore, dim: int, class_names: list[str]) -> pd.DataFrame | None:
    """The per-epoch informativity a GAN's training loop recorded (`epoch`, `class_name`, `informativity`),
    or None when it trained without judges."""
    path = store.folder(f"gan_{dim}") / "history.parquet"
    if not path.is_file():
        return None
    columns = [f"informativity_{name}" for name in class_names]
    history = pd.read_parquet(path)
    if not set(columns) <= set(history.columns) or history[columns].isna().all().all():
        return None
    long = history[["epoch", *columns]].melt("epoch", var_name="class_name", value_name="informativity")
    long["class_name"] = long.class_name.str.removeprefix("informativity_")
    return long.dropna().reset_index(drop=True)


def embeddings_of(store: ArtifactStore, dim: int, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    folder = store.folder(f"audio_embeddings_{dim}")
    return np.load(folder / f"{split}.npy"), pd.read_parquet(folder / f"{split}_keys.parquet")


# ---- candidates and labels --------------------------------------------------------------------------------------


@asset(
    group_name="evaluation",
    code_version=CANDIDATES_VERSION,
    deps=[f"gan_{dim}" for dim in DIMS] + [f"audio_embeddings_{dim}" for dim in DIMS],
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    kinds={"pytorch"},
)
def informativity_candidates(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
) -> MaterializeResult:
    """Translations of validation sounds by several GAN checkpoints (equal numbers each), with provenance."""
    from s2i_models.translate import generate, load_generator

    settings = profile.load()
    evaluation = settings.evaluation
    sources = []
    for dim in evaluation.candidate_dims:
        found = dict((str(path), epoch) for epoch, path in require_checkpoints(store, dim))
        sources += [
            (dim, found[path], Path(path))
            for path in evenly_spaced(list(found), evaluation.checkpoints_per_dim)
        ]
    inputs = {
        **{
            f"audio_embeddings_{d}": upstream_fingerprint(store, f"audio_embeddings_{d}")
            for d in evaluation.candidate_dims
        },
        "checkpoints": ",".join(f"{dim}/{checkpoint_stamp(path)}" for dim, _, path in sources),
    }
    config = {
        "seed": settings.seed,
        **evaluation.model_dump(
            mode="json",
            include={
                "candidate_dims",
                "checkpoints_per_dim",
                "candidate_sounds_per_class",
                "candidate_samples",
            },
        ),
    }
    folder = store.folder("informativity_candidates")
    expected = fingerprint(CANDIDATES_VERSION, config, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    device = torch_device.resolve()
    rows, images = [], []
    progress = Progress(len(sources), "candidates", log=context.log.info, unit="checkpoints")
    for index, (dim, epoch, path) in enumerate(sources):
        embeddings, keys = embeddings_of(store, dim, "val")
        chosen = sounds_per_class(keys, evaluation.candidate_sounds_per_class, settings.seed)
        generated = generate(
            load_generator(path, dim, device),
            embeddings[chosen],
            evaluation.candidate_samples,
            seed=settings.seed + index,
            device=device,
        )  # (S, samples, 96, 96, 3)
        for position, row in enumerate(chosen):
            for sample in range(evaluation.candidate_samples):
                rows.append(
                    {
                        "class_name": keys.class_name[row],
                        "clip_id": keys.clip_id[row],
                        "segment": int(keys.segment[row]),
                        "dim": dim,
                        "epoch": epoch,
                        "checkpoint": str(path.relative_to(store.folder(f"gan_{dim}").parent)),
                        "sample": sample,
                    }
                )
                images.append(generated[position, sample])
        progress.advance()

    order = labelling_order(len(rows), settings.seed)
    table = pd.DataFrame([rows[i] for i in order])
    stacked = np.stack([images[i] for i in order])  # (N, 96, 96, 3)
    table.insert(0, "candidate_id", [f"c{i:06d}" for i in range(len(table))])
    table.insert(1, "image", [f"images/{cid}.png" for cid in table.candidate_id])
    hashes = []
    (folder / "images").mkdir(exist_ok=True)
    for path in (folder / "images").glob("*.png"):  # an earlier candidate set's images
        path.unlink()
    for relative, image in zip(table.image, stacked, strict=True):
        data = png_bytes(image)
        with atomic_open(folder / relative) as stream:
            stream.write(data)
        hashes.append(sha256_bytes(data))
    table["sha256"] = hashes
    with atomic_open(folder / "images.npy") as stream:
        np.save(stream, stacked)
    write_parquet_atomic(folder / "candidates.parquet", table)

    per_source = table.groupby(["dim", "epoch"]).size().rename("candidates").reset_index()
    metadata = {
        "candidates": len(table),
        "sources": len(sources),
        "per_source": markdown_table(per_source),
        "per_class": table.class_name.value_counts().sort_index().to_dict(),
        "examples": png_markdown(_examples_grid(table, stacked, settings.classes), "candidates"),
        "device": device,
        "seconds": timer.seconds,
    }
    manifest = write_manifest(
        folder,
        expected,
        settings=config,
        inputs=inputs,
        files=[folder / "candidates.parquet", folder / "images.npy"],
        metadata=metadata,
    )
    return result_from(manifest)


def _examples_grid(table: pd.DataFrame, images: np.ndarray, classes: dict, per_row: int = 6) -> bytes:
    rows, titles = [], []
    for name in sorted(table.class_name.unique()):
        picks = np.flatnonzero(table.class_name.to_numpy() == name)[:per_row]
        rows.append([images[i] for i in picks])
        titles.append(classes.get(name, name))
    return image_grid_png(rows, titles, [])


@asset(
    group_name="evaluation",
    code_version=LABELS_VERSION,
    deps=["informativity_candidates", "shards"],
    kinds={"numpy"},
)
def informativity_labels(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore
) -> MaterializeResult:
    """A balanced labelled set per class (informative / not), from a person (`s2i label`) or the demo's oracle."""
    from pipelines.data.answers import AnswerBook, answers_path
    from pipelines.data.demo_oracle import fit_demo_oracle

    settings = profile.load()
    evaluation = settings.evaluation
    candidates_folder = store.folder("informativity_candidates")
    inputs = {"informativity_candidates": upstream_fingerprint(store, "informativity_candidates")}
    config = {
        "seed": settings.seed,
        **evaluation.model_dump(mode="json", include={"labels", "labels_per_class", "min_labels_per_class"}),
    }
    if evaluation.labels == "oracle":
        inputs["shards"] = upstream_fingerprint(store, "shards")
        config["oracle_margin"] = evaluation.oracle_margin
    else:
        book_path = answers_path(Path(store.root).expanduser())
        inputs["answers"] = sha256_bytes(book_path.read_bytes()) if book_path.is_file() else "none"
    folder = store.folder("informativity_labels")
    expected = fingerprint(LABELS_VERSION, config, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    table = pd.read_parquet(candidates_folder / "candidates.parquet")
    table["row"] = np.arange(len(table))  # its image in images.npy
    table["source"] = [f"gan_{d}@{e}" for d, e in zip(table.dim, table.epoch, strict=True)]
    images = np.load(candidates_folder / "images.npy", mmap_mode="r")
    metadata: dict = {}
    unlabelled: dict[str, int] = {}  # the oracle labels every candidate
    if evaluation.labels == "oracle":
        if settings.source.kind != "demo":
            context.log.warning(
                "evaluation.labels is `oracle` on a real data set: the oracle is a stand-in fitted for the demo's "
                "synthetic scenes, not a judge of real pictures. For results to compare with the paper's, set "
                "`labels: person` and label with `s2i label`."
            )
        train, test = load_shards(store, "train"), load_shards(store, "test")
        oracle = fit_demo_oracle(
            train.frames,
            [m["class_name"] for m in train.meta],
            margin=evaluation.oracle_margin,
            seed=settings.seed,
        )
        real = oracle.evaluate(test.frames, [m["class_name"] for m in test.meta])
        context.log.info(f"demo oracle on the real test frames: {real}")
        table["margin"] = oracle.margins(np.asarray(images), table.class_name.tolist())
        table["label"] = (table.margin >= evaluation.oracle_margin).astype(np.int64)
        metadata.update({f"oracle_real_test_{k}": v for k, v in real.items()})
    else:
        answers = AnswerBook(book_path).answers()
        table["answer"] = [answers.get(h, {}).get("label") for h in table.sha256]
        answered = table.answer.isin(["informative", "non_informative", "skip"])
        unlabelled = table[~answered].class_name.value_counts().to_dict()
        table = table[table.answer.isin(["informative", "non_informative"])].copy()
        table["label"] = (table.answer == "informative").astype(np.int64)
        metadata["answers_path"] = str(book_path)

    available = (
        table.groupby(["class_name", "label"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=settings.class_names, columns=[0, 1], fill_value=0)
    )
    chosen = balanced_selection(table, evaluation.labels_per_class, settings.seed)
    pairs = (chosen.label == 1).groupby(chosen.class_name).sum().reindex(settings.class_names, fill_value=0)
    short = available[pairs < evaluation.min_labels_per_class]
    if len(short):
        detail = ", ".join(
            f"{name}: {row[1]} informative / {row[0]} not, {pairs[name]} of each from the same models"
            for name, row in short.iterrows()
        )
        what_to_do = (
            "label more with `s2i label` (it shows progress per class), then materialize informativity_labels again"
            if evaluation.labels == "person"
            else "add candidates (evaluation.checkpoints_per_dim, candidate_samples) or train the GANs longer"
        )
        raise Failure(
            f"informativity_labels: need at least {evaluation.min_labels_per_class} informative and as many "
            f"non-informative images per class, as many of each from every model; have {detail}. {what_to_do}."
        )
    shortfall = label_shortfall(
        table,
        chosen,
        evaluation.labels_per_class,
        settings.class_names,
        unlabelled if unlabelled or evaluation.labels == "person" else None,
    )
    for message in shortfall.values():
        context.log.warning(f"informativity_labels: {message}")
    write_json_atomic(folder / "shortfall.json", shortfall)
    columns = [
        "candidate_id",
        "class_name",
        "clip_id",
        "segment",
        "dim",
        "epoch",
        "source",
        "sha256",
        "label",
    ]
    columns += ["margin"] if "margin" in chosen else []
    write_parquet_atomic(folder / "labels.parquet", chosen[columns])

    counts = chosen.groupby(["class_name", "label"]).size().unstack(fill_value=0)
    summary = pd.DataFrame(
        {
            "class": [settings.classes.get(n, n) for n in counts.index],
            "informative": counts.get(1, 0).to_numpy(),
            "non_informative": counts.get(0, 0).to_numpy(),
            "candidates informative": [
                f"{available.loc[n, 1]}/{available.loc[n].sum()}" for n in counts.index
            ],
        }
    )
    metadata.update(
        {
            "labels": len(chosen),
            "source_of_labels": evaluation.labels,
            "per_class": markdown_table(summary),
            "per_source": {
                f"{source} ({'informative' if label else 'not'})": int(count)
                for (source, label), count in chosen.groupby(["source", "label"]).size().items()
            },
            "target_reached": not shortfall,
            "shortfall": "\n".join(shortfall.values()) or "none: every class reached its target",
            "examples": png_markdown(_labelled_grid(chosen, images, settings.classes), "labelled"),
            "seconds": timer.seconds,
        }
    )
    manifest = write_manifest(
        folder,
        expected,
        settings=config,
        inputs=inputs,
        files=[folder / "labels.parquet", folder / "shortfall.json"],
        metadata=metadata,
    )
    return result_from(manifest)


@asset_check(asset=informativity_labels, name="labels_reach_target", blocking=False)
def labels_reach_target(store: ArtifactStore) -> AssetCheckResult:
    """Every class has `labels_per_class` informative and as many non-informative labels (no silent shortfall)."""
    shortfall = json.loads((store.folder("informativity_labels") / "shortfall.json").read_text())
    return AssetCheckResult(
        passed=not shortfall,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(shortfall.values()) or "every class reached its target",
        metadata={"classes_short": sorted(shortfall)},
    )


def _labelled_grid(chosen: pd.DataFrame, images, classes: dict, count: int = 3) -> bytes:
    """Per class: `count` informative images, then `count` non-informative ones (`row` = index in `images`)."""
    rows, titles = [], []
    for name, group in chosen.groupby("class_name", sort=True):
        picks = [*group[group.label == 1].row[:count], *group[group.label == 0].row[:count]]
        rows.append([np.asarray(images[row]) for row in picks])
        titles.append(classes.get(name, name))
    columns = [f"informative {i + 1}" for i in range(count)] + [f"not {i + 1}" for i in range(count)]
    return image_grid_png(rows, titles, columns)


# ---- classifiers ---------------------------------------------------------------------------------------------------


@asset(
    group_name="evaluation",
    code_version=CLASSIFIERS_VERSION,
    deps=["informativity_labels", "informativity_candidates"],
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    kinds={"pytorch"},
)
def informativity_classifiers(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
) -> MaterializeResult:
    """One binary informative / non-informative classifier per class (SPEC §5), with held-out accuracy."""
    from dataclasses import asdict

    from s2i_models.checkpoint import save_atomic
    from s2i_models.train.classifier import ClassifierConfig, train_classifier

    settings = profile.load()
    config = ClassifierConfig(**settings.evaluation.classifier.model_dump(), seed=settings.seed)
    folder = store.folder("informativity_classifiers")
    inputs = {"informativity_labels": upstream_fingerprint(store, "informativity_labels")}
    expected = fingerprint(CLASSIFIERS_VERSION, asdict(config), inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    device = torch_device.resolve()
    labels = pd.read_parquet(store.folder("informativity_labels") / "labels.parquet")
    candidates_folder = store.folder("informativity_candidates")
    position = {
        cid: i for i, cid in enumerate(pd.read_parquet(candidates_folder / "candidates.parquet").candidate_id)
    }
    all_images = np.load(candidates_folder / "images.npy", mmap_mode="r")
    results, histories, files, held_out = [], [], [], []
    for name in settings.class_names:
        rows = labels[labels.class_name == name]
        images = np.stack([all_images[position[cid]] for cid in rows.candidate_id])
        # No sound's translations on both sides of the split, nor a video's when there are enough videos
        # (MIN_VIDEOS_TO_SPLIT) to hold a fifth of them out.
        split_by = "video" if rows.clip_id.nunique() >= MIN_VIDEOS_TO_SPLIT else "sound"
        groups = rows.clip_id if split_by == "video" else rows.clip_id + "@" + rows.segment.astype(str)
        result = train_classifier(images, rows.label.to_numpy(), config, device, groups=groups.to_numpy())
        save_atomic(result.state(), folder / f"{name}.pt")
        files.append(folder / f"{name}.pt")
        histories += [{"class_name": name, **record} for record in result.history]
        held_out.append(
            rows[["candidate_id"]].assign(held_out=np.isin(np.arange(len(rows)), result.test_index))
        )
        results.append(
            {
                "class_name": name,
                "images": len(rows),
                "train": len(result.train_index),
                "test": len(result.test_index),
                "split_by": split_by,
                "test_videos": int(rows.clip_id.iloc[result.test_index].nunique()),
                "test_accuracy": round(result.test_accuracy, 4),
                "chance": round(result.chance, 4),
                "paper_accuracy": PAPER_CLASSIFIER_ACCURACY.get(name, float("nan")),
            }
        )
        context.log.info(
            f"informativity classifier {name}: held-out accuracy {result.test_accuracy:.3f} ({len(result.test_index)} images)"
        )
    history = pd.DataFrame(histories)
    write_parquet_atomic(folder / "history.parquet", history)
    write_parquet_atomic(folder / "split.parquet", pd.concat(held_out, ignore_index=True))
    table = pd.DataFrame(results)
    write_parquet_atomic(folder / "accuracy.parquet", table)
    files += [folder / "history.parquet", folder / "accuracy.parquet", folder / "split.parquet"]
    curves = {
        settings.classes.get(n, n): rows.test_accuracy.tolist()
        for n, rows in history.groupby("class_name", sort=False)
    }
    metadata = {
        "accuracy": markdown_table(
            table.assign(class_name=[settings.classes.get(n, n) for n in table.class_name])
        ),
        **{f"accuracy_{row['class_name']}": row["test_accuracy"] for row in results},
        "mean_accuracy": round(float(table.test_accuracy.mean()), 4),
        "held_out_accuracy_curves": png_markdown(
            loss_curves_png(
                list(range(1, config.epochs + 1)), curves, "informativity classifiers: held-out accuracy"
            ),
            "accuracy",
        ),
        "device": device,
        "seconds": timer.seconds,
    }
    manifest = write_manifest(
        folder, expected, settings=asdict(config), inputs=inputs, files=files, metadata=metadata
    )
    return result_from(manifest)


@asset(
    name="informativity_classifiers",
    group_name="evaluation",
    code_version=CLASSIFIERS_VERSION,
    kinds={"pytorch"},
)
def authors_informativity_classifiers(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore
) -> MaterializeResult:
    """The paper's own judges C1-C5 (`evaluation.classifiers: authors`), converted from the authors' files."""
    from pipelines.data.files import sha256_file
    from s2i_models.authors import authors_file, classifier_checkpoint
    from s2i_models.checkpoint import save_atomic

    settings = profile.load()
    folder = store.folder("informativity_classifiers")
    sources = {
        name: authors_file(settings.authors_models, "classifier", class_name=name)
        for name in settings.class_names
    }
    inputs = {name: f"{path.name}:{sha256_file(path)}" for name, path in sources.items()}
    expected = fingerprint(CLASSIFIERS_VERSION, {"classifiers": "authors"}, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached
    timer = Timer()
    results, files = [], []
    for name, path in sources.items():
        checkpoint = classifier_checkpoint(path, name)
        save_atomic(checkpoint, folder / f"{name}.pt")
        files.append(folder / f"{name}.pt")
        results.append(
            {
                "class_name": name,
                "file": path.name,
                "test_accuracy": checkpoint["test_accuracy"],
                "chance": 0.5,
            }
        )
        context.log.info(f"informativity classifier {name}: the authors' {path.name}")
    table = pd.DataFrame(results)
    write_parquet_atomic(folder / "accuracy.parquet", table)
    files.append(folder / "accuracy.parquet")
    metadata = {
        "classifiers": "authors",
        "accuracy": markdown_table(
            table.assign(class_name=[settings.classes.get(n, n) for n in table.class_name])
        ),
        "accuracy_source": "reported by the paper (§5.3), not measured here",
        **{f"accuracy_{row['class_name']}": row["test_accuracy"] for row in results},
        "authors_models_path": str(settings.authors_models),
        "seconds": timer.seconds,
    }
    manifest = write_manifest(
        folder, expected, settings={"classifiers": "authors"}, inputs=inputs, files=files, metadata=metadata
    )
    return result_from(manifest)


@asset_check(asset="informativity_classifiers", name="each_beats_chance", blocking=True)
def classifiers_beat_chance(store: ArtifactStore) -> AssetCheckResult:
    """Every class's classifier is right on more held-out images than always giving the commoner label."""
    table = pd.read_parquet(store.folder("informativity_classifiers") / "accuracy.parquet")
    losing = table[table.test_accuracy <= table.chance]
    return AssetCheckResult(
        passed=losing.empty,
        metadata={
            "not_beating_chance": losing.class_name.tolist(),
            "accuracy": dict(zip(table.class_name, table.test_accuracy.astype(float), strict=True)),
        },
    )


def load_classifiers(store: ArtifactStore, class_names: list[str], device: str) -> dict:
    from s2i_models.checkpoint import load_checkpoint
    from s2i_models.train.classifier import load_classifier

    folder = store.folder("informativity_classifiers")
    return {name: load_classifier(load_checkpoint(folder / f"{name}.pt"), device) for name in class_names}


# ---- informativity per dim ---------------------------------------------------------------------------------------


def build_informativity_asset(dim: int):
    key = f"informativity_{dim}"

    @asset(
        name=key,
        group_name="evaluation",
        code_version=INFORMATIVITY_VERSION,
        deps=[f"gan_{dim}", f"audio_embeddings_{dim}", "informativity_classifiers"],
        pool=GPU_POOL,
        op_tags=GPU_OP_TAGS,
        kinds={"pytorch"},
        automation_condition=ON_NEW_UPSTREAM,
    )
    def informativity(
        context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
    ) -> MaterializeResult:
        """Informativity per class at every saved checkpoint of the GAN, the paper's two summaries, the baseline."""
        from pipelines.data.report import informativity_history_png
        from s2i_models.checkpoint import load_checkpoint
        from s2i_models.evaluation import discriminator_update_epochs, summarize, window_mean
        from s2i_models.scoring import score_translations
        from s2i_models.translate import build_generator, load_generator

        settings = profile.load()
        evaluation = settings.evaluation
        checkpoints = require_checkpoints(store, dim)
        inputs = {
            name: upstream_fingerprint(store, name)
            for name in (f"audio_embeddings_{dim}", "informativity_classifiers")
        }
        per_checkpoint_key = fingerprint(
            INFORMATIVITY_VERSION, {"samples": evaluation.test_samples, "seed": settings.seed}, inputs
        )
        inputs["checkpoints"] = ",".join(checkpoint_stamp(path) for _, path in checkpoints)
        gan_history = store.folder(f"gan_{dim}") / "history.parquet"
        if gan_history.is_file():  # per-epoch informativity, when the training loop judged
            inputs["gan_history"] = checkpoint_stamp(gan_history)
        config = {
            "seed": settings.seed,
            **evaluation.model_dump(mode="json", include={"test_samples", "window", "moving_average_epochs"}),
        }
        folder = store.folder(key)
        expected = fingerprint(INFORMATIVITY_VERSION, config, inputs)
        if (cached := reuse(context, folder, expected)) is not None:
            return cached

        timer = Timer()
        device = torch_device.resolve()
        embeddings, keys = embeddings_of(store, dim, "test")
        class_names = keys.class_name.to_numpy()
        classifiers = load_classifiers(store, settings.class_names, device)
        cache = folder / "per_checkpoint"
        cache.mkdir(exist_ok=True)

        used: set[Path] = set()

        def evaluate(epoch: int, stamp: str, make_generator) -> dict:
            path = cache / f"{epoch:05d}-{fingerprint('cache', stamp, {'key': per_checkpoint_key})}.json"
            used.add(path)
            if path.is_file():
                return json.loads(path.read_text())
            shares = score_translations(
                make_generator(),
                embeddings,
                class_names,
                classifiers,
                evaluation.test_samples,
                settings.seed,
                device,
            )
            write_json_atomic(path, shares)
            return shares

        last_config = load_checkpoint(checkpoints[-1][1])["config"]
        torch_seed = settings.seed

        def untrained():
            import torch

            torch.manual_seed(torch_seed)
            return build_generator(last_config, dim).to(device).eval()

        baseline = evaluate(
            BASELINE_EPOCH, f"untrained:{json.dumps(last_config, sort_keys=True)}", untrained
        )["informativity"]
        rows = []
        progress = Progress(len(checkpoints), key, log=context.log.info, unit="checkpoints")
        for epoch, path in checkpoints:
            shares = evaluate(epoch, checkpoint_stamp(path), lambda p=path: load_generator(p, dim, device))
            rows += [
                {
                    "epoch": epoch,
                    "class_name": name,
                    "informativity": value,
                    "cross_class": shares["cross_class"][name],
                }
                for name, value in shares["informativity"].items()
            ]
            progress.advance()
        history = pd.DataFrame(rows)
        every_epoch = epoch_informativity(store, dim, settings.class_names)
        if every_epoch is not None:
            # Judged in the training loop at every epoch: the paper's measurement. The checkpoints' scores
            # still give the cross-class control at their epochs.
            history = every_epoch.merge(
                history[["epoch", "class_name", "cross_class"]], on=["epoch", "class_name"], how="left"
            )
        mode = "every epoch, in training" if every_epoch is not None else "saved checkpoints"
        updates = discriminator_update_epochs(
            int(history.epoch.max()),
            last_config["discriminator_every"],
            last_config.get("discriminator_unit", "epoch"),
        )
        summary = summarize(
            history,
            update_epochs=updates,
            window=evaluation.window,
            moving_average_epochs=evaluation.moving_average_epochs,
        )
        per_epoch = summary.pop("per_epoch")
        write_parquet_atomic(folder / "history.parquet", per_epoch)
        mean_by_epoch = per_epoch.groupby("epoch").informativity.mean()
        baseline = {**baseline, "average": float(np.mean(list(baseline.values())))}
        summary.update(
            {
                "dim": dim,
                "baseline": baseline,
                "epochs_evaluated": sorted(int(e) for e in history.epoch.unique()),
                "mode": mode,
                "best_epoch": int(mean_by_epoch.idxmax()),
                "cross_class_window_average": window_mean(per_epoch, "cross_class", evaluation.window),
                "moving_average_epochs": evaluation.moving_average_epochs,
                "test_sounds": int(len(keys)),
                "test_samples": evaluation.test_samples,
            }
        )
        write_json_atomic(folder / "summary.json", summary)
        for stale in set(cache.glob("*.json")) - used:  # checkpoints or classifiers no longer in use
            stale.unlink()

        table = _summary_table(summary, settings.classes)
        metadata = {
            "summary": markdown_table(table),
            "window_average": summary["window_average"]["average"],
            "max_moving_average": summary["max_moving_average"]["average"],
            "baseline_average": baseline["average"],
            "best_epoch": summary["best_epoch"],
            "checkpoints_evaluated": len(checkpoints),
            "epochs_evaluated": int(history.epoch.nunique()),
            "mode": mode,
            "history": png_markdown(
                informativity_history_png({dim: per_epoch}, settings.classes, {dim: baseline}),
                "informativity history",
            ),
            "device": device,
            "seconds": timer.seconds,
        }
        manifest = write_manifest(
            folder,
            expected,
            settings=config,
            inputs=inputs,
            files=[folder / "history.parquet", folder / "summary.json"],
            metadata=metadata,
        )
        return result_from(manifest)

    @asset_check(asset=key, name="every_checkpoint_evaluated", blocking=True)
    def every_checkpoint_evaluated(store: ArtifactStore) -> AssetCheckResult:
        """Every saved checkpoint has an informativity in [0, 1] for every class."""
        folder = store.folder(key)
        history = pd.read_parquet(folder / "history.parquet")
        summary = json.loads((folder / "summary.json").read_text())
        missing = sorted(set(summary["epochs_evaluated"]) - set(history.epoch))
        values = history.informativity.to_numpy()
        in_range = bool(np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all())
        return AssetCheckResult(
            passed=not missing and in_range,
            metadata={"epochs_missing": missing, "values_in_range": in_range, "rows": len(history)},
        )

    return informativity, every_checkpoint_evaluated


def _summary_table(summary: dict, classes: dict) -> pd.DataFrame:
    names = [n for n in summary["window_average"] if n != "average"] + ["average"]

    def percent(value):
        return "–" if value is None else f"{100 * value:.1f} %"

    return pd.DataFrame(
        {
            "class": [classes.get(n, n) for n in names],
            f"average epochs {summary['window'][0]}-{summary['window'][1]}": [
                percent(summary["window_average"].get(n)) for n in names
            ],
            f"max {summary['moving_average_epochs']}-epoch moving average": [
                percent(summary["max_moving_average"].get(n)) for n in names
            ],
            "untrained baseline": [percent(summary["baseline"].get(n)) for n in names],
            "other classes' sounds (control)": [
                percent(summary["cross_class_window_average"].get(n)) for n in names
            ],
        }
    )


informativity_assets = []
informativity_checks = []
for _dim in DIMS:
    _asset, _check = build_informativity_asset(_dim)
    informativity_assets.append(_asset)
    informativity_checks.append(_check)


# ---- the report ------------------------------------------------------------------------------------------------------

REPORT_SOUNDS_PER_CLASS = 4  # Figures 9/10: test sounds per class
REPORT_SAMPLES = 4  # translations per sound


@asset(
    group_name="evaluation",
    code_version=REPORT_VERSION,
    deps=[f"informativity_{dim}" for dim in DIMS] + [f"gan_{dim}" for dim in DIMS] + ["shards"],
    kinds={"html"},
    automation_condition=ON_ANY_UPSTREAM,
)
def s2i_report(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
) -> MaterializeResult:
    """The paper's Figures 7-10 and the summary table from every evaluated dim, in the data folder's s2i_report/."""
    from pipelines.data import report
    from pipelines.data.artifact_manifest import read_manifest
    from s2i_models.translate import generate, load_generator

    settings = profile.load()
    evaluation = settings.evaluation
    evaluated = [dim for dim in DIMS if read_manifest(store.folder(f"informativity_{dim}")) is not None]
    if not evaluated:
        raise Failure(
            "s2i_report: no dim has been evaluated yet: materialize an informativity_{dim} first, e.g. "
            "dagster asset materialize -m pipelines --select informativity_512"
        )
    inputs = {
        f"informativity_{dim}": upstream_fingerprint(store, f"informativity_{dim}") for dim in evaluated
    }
    inputs.update(
        {f"gan_{dim}": m.fingerprint for dim in evaluated if (m := read_manifest(store.folder(f"gan_{dim}")))}
    )
    inputs["shards"] = upstream_fingerprint(store, "shards")
    config = {"seed": settings.seed, "classes": settings.classes, "profile": settings.name}
    folder = store.folder("s2i_report")
    expected = fingerprint(REPORT_VERSION, config, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    device = torch_device.resolve()
    summaries, histories, pixel_losses, problems = report.read_evaluations(
        Path(store.root).expanduser(), evaluated
    )
    notes = [f"dim {dim}: {problem}" for dim, problem in problems.items()]
    notes += [
        f"dim {dim}: not evaluated yet (materialize informativity_{dim})"
        for dim in DIMS
        if dim not in evaluated
    ]
    evaluated = sorted(summaries)
    if not evaluated:
        raise Failure("s2i_report: no evaluated dim could be read: " + "; ".join(notes))
    ma_epochs = evaluation.moving_average_epochs

    def headline(dim: int) -> float:
        value = summaries[dim]["window_average"]["average"]
        return -1.0 if value is None else value

    best_dim = max(evaluated, key=headline)
    dims_summary = {}
    for dim in evaluated:
        s = summaries[dim]
        final_loss = (
            report.final_moving_average(pixel_losses[dim], "pixel_loss", ma_epochs)
            if dim in pixel_losses
            else None
        )
        if s["window_average"].get("average") is None:
            notes.append(f"dim {dim}: no evaluated epoch in the window {list(evaluation.window)}")
        dims_summary[str(dim)] = {
            "mode": s.get("mode", "saved checkpoints"),
            "window_average": s["window_average"],
            "max_moving_average": s["max_moving_average"],
            "baseline": s["baseline"],
            "cross_class": s.get("cross_class_window_average", {}),
            "ratio_to_baseline": {
                name: (None if value is None or not s["baseline"].get(name) else value / s["baseline"][name])
                for name, value in s["window_average"].items()
            },
            "final_pixel_loss": final_loss,
            "epochs_evaluated": s["epochs_evaluated"],
            "best_epoch": s["best_epoch"],
            "replaced_epochs": s["replaced_epochs"],
        }
    summary = {
        "profile": settings.name,
        "classes": settings.classes,
        "window": list(evaluation.window),
        "moving_average_epochs": ma_epochs,
        "dims": dims_summary,
        "best_dim": best_dim,
        "notes": notes,
    }

    figures = {
        "figure7_informativity_history": report.informativity_history_png(
            histories, settings.classes, {d: summaries[d]["baseline"] for d in evaluated}, smooth_epochs=0
        ),
        "figure7_informativity_vs_dim": report.informativity_vs_dim_png(
            {d: summaries[d] for d in evaluated}, settings.classes
        ),
    }
    if pixel_losses:
        figures["figure8_pixel_loss"] = report.pixel_loss_png(pixel_losses, ma_epochs)
        figures["figure8_pixel_loss_vs_dim"] = report.pixel_loss_vs_dim_png(
            {d: dims_summary[str(d)]["final_pixel_loss"] for d in pixel_losses}
        )
    # Figures 9/10: test sounds of each class, their true frames and translations by the best dim's best
    # epoch, or the saved checkpoint nearest to it (per-epoch evaluation scores epochs with no checkpoint).
    best_epoch = summaries[best_dim].get("best_epoch")
    saved = dict(gan_checkpoints(store, best_dim))
    if saved and best_epoch is not None:
        epoch = min(saved, key=lambda e: (abs(e - best_epoch), -e))
        if epoch != best_epoch:
            notes.append(
                f"Figures 9/10: dim {best_dim}'s best epoch {best_epoch} has no saved checkpoint; "
                f"they show epoch {epoch}, the nearest saved one"
            )
        generator = load_generator(saved[epoch], best_dim, device)
        embeddings, keys = embeddings_of(store, best_dim, "test")
        test = load_shards(store, "test")
        chosen = sounds_per_class(keys, REPORT_SOUNDS_PER_CLASS, settings.seed)
        translated = generate(
            generator, embeddings[chosen], REPORT_SAMPLES, seed=settings.seed, device=device
        )
        for name in settings.class_names:
            rows = [i for i, row in enumerate(chosen) if keys.class_name[row] == name]
            if rows:
                figures[f"figure9_translations_{name}"] = report.translations_png(
                    [test.frames[chosen[i]] for i in rows],
                    [list(translated[i]) for i in rows],
                    f"{settings.classes.get(name, name)}: test sounds, dim {best_dim}, epoch {epoch}",
                    [f"{keys.clip_id[chosen[i]]} s{keys.segment[chosen[i]]}" for i in rows],
                )
    else:
        notes.append(
            f"Figures 9/10: gan_{best_dim} has no saved checkpoint on disk any more; re-materialize gan_{best_dim}"
        )
    table = report.summary_table_markdown(summary, settings.classes)
    written = report.write_report(folder, figures, summary, table, f"s2i report: profile {settings.name}")

    metadata = {
        "summary": table,
        "best_dim": best_dim,
        "dims_evaluated": evaluated,
        "notes": "\n".join(f"- {note}" for note in notes) or "none",
        **{name: png_markdown(png, name) for name, png in figures.items()},
        "index_path": str(folder / "index.html"),
        "seconds": timer.seconds,
    }
    context.log.info(f"s2i report: {folder / 'index.html'}")
    manifest = write_manifest(
        folder,
        expected,
        settings=config,
        inputs=inputs,
        files=[p for p in written if p.is_file()],
        metadata=metadata,
    )
    return result_from(manifest)
