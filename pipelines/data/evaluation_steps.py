"""The steps under the informativity evaluation (paper §5.3-5.4; SPEC §5-6), without Dagster: candidates,
labels, classifiers, per-dim informativity, and the report.

informativity_candidates -> informativity_labels -> informativity_classifiers -> informativity_{dim} -> s2i_report

Each step reads and writes the asset folders (`ArtifactFolders`), returns a `StepOutput` and raises
`StepError` for what the user can fix; `pipelines/assets/evaluation.py` fingerprints, reuses and records.
Evaluation reads a GAN's checkpoints from its training folder, not only from a finished `gan_{dim}`: the
nightly schedule can follow a training run still in progress. Each checkpoint's informativity is cached
under its own key, so a re-run evaluates only the checkpoints it has not seen.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.data.artifact_manifest import fingerprint
from pipelines.data.candidates import (
    COLUMNS,
    ClassDraw,
    balanced_pairs,
    balanced_selection,
    candidate_batch,
    candidate_digest,
    candidate_id,
    expected_pairs_from_answers,
    image_seed,
    label_shortfall,
    png_bytes,
    sha256_bytes,
    sound_order,
    sounds_per_class,
    spread_order,
)
from pipelines.data.classes import PAPER_CLASSIFIER_ACCURACY
from pipelines.data.files import atomic_open, write_json_atomic, write_parquet_atomic
from pipelines.data.previews import image_grid_png, loss_curves_png, png_markdown
from pipelines.data.progress import Progress
from pipelines.data.steps import ArtifactFolders, CheckOutcome, StepError, StepOutput, markdown_table
from pipelines.data.training_steps import load_shards

if TYPE_CHECKING:
    from pipelines.profile import EvaluationSettings, Profile
    from s2i_models.train.classifier import ClassifierConfig

Log = Callable[[str], object]

MIN_VIDEOS_TO_SPLIT = 5  # fewer source videos in a class: its classifier's split is by sound
BASELINE_EPOCH = 0  # the untrained generator's row in an informativity history
REPORT_SOUNDS_PER_CLASS = 4  # Figures 9/10: test sounds per class
REPORT_SAMPLES = 4  # translations per sound


# ---- GAN checkpoints and embeddings -----------------------------------------------------------------------------


def gan_checkpoints(folders: ArtifactFolders, dim: int) -> list[tuple[int, Path]]:
    """(epoch, path) of every saved checkpoint of gan_{dim}'s newest training folder, by epoch; [] if none."""
    from s2i_models.train.gan import CHECKPOINT_NAME, list_checkpoints

    runs = [
        (max(p.stat().st_mtime_ns for p in found), run)
        for run in folders.folder(f"gan_{dim}").glob("train/*")
        if (found := list_checkpoints(run))
    ]
    if not runs:
        return []
    newest = max(runs)[1]
    return [(int(CHECKPOINT_NAME.fullmatch(p.name).group(1)), p) for p in list_checkpoints(newest)]


def require_checkpoints(folders: ArtifactFolders, dim: int) -> list[tuple[int, Path]]:
    """`gan_checkpoints`, or a `StepError` that says how to train the GAN when it has none."""
    found = gan_checkpoints(folders, dim)
    if not found:
        raise StepError(
            f"gan_{dim} has no saved checkpoint under {folders.folder(f'gan_{dim}') / 'train'}: train it first "
            f"(dagster asset materialize -m pipelines --select '*gan_{dim}')"
        )
    return found


def checkpoint_stamp(path: Path) -> str:
    """Identifies a checkpoint file's content cheaply (checkpoints are written once, atomically)."""
    status = path.stat()
    return f"{path.name}:{status.st_size}:{status.st_mtime_ns}"


def candidate_sources(
    folders: ArtifactFolders, evaluation: EvaluationSettings
) -> list[tuple[int, int, Path]]:
    """(dim, epoch, path) of every checkpoint candidates may come from, dim by dim in draw order: first the
    `checkpoints_per_dim` evenly spaced ones of the dim's GAN (every class draws those), then the others in
    an order that spreads them (`spread_order`; a class short of informative candidates draws those next)."""
    sources = []
    for dim in evaluation.candidate_dims:
        found = require_checkpoints(folders, dim)
        sources += [(dim, *found[i]) for i in spread_order(len(found), evaluation.checkpoints_per_dim)]
    return sources


def epoch_informativity(folders: ArtifactFolders, dim: int, class_names: list[str]) -> pd.DataFrame | None:
    """The per-epoch informativity a GAN's training loop recorded (`epoch`, `class_name`, `informativity`),
    or None when it trained without judges."""
    path = folders.folder(f"gan_{dim}") / "history.parquet"
    if not path.is_file():
        return None
    columns = [f"informativity_{name}" for name in class_names]
    history = pd.read_parquet(path)
    if not set(columns) <= set(history.columns) or history[columns].isna().all().all():
        return None
    long = history[["epoch", *columns]].melt("epoch", var_name="class_name", value_name="informativity")
    long["class_name"] = long.class_name.str.removeprefix("informativity_")
    return long.dropna().reset_index(drop=True)


def embeddings_of(folders: ArtifactFolders, dim: int, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    folder = folders.folder(f"audio_embeddings_{dim}")
    return np.load(folder / f"{split}.npy"), pd.read_parquet(folder / f"{split}_keys.parquet")


# ---- candidates and labels --------------------------------------------------------------------------------------


def fit_oracle(folders: ArtifactFolders, settings: Profile) -> tuple[Any, dict[str, float]]:
    """The demo's stand-in for a person (`labels: oracle`, pipelines/data/demo/oracle.py: it judges the object,
    not the background), fitted with the profile's seed, and how it judges the real test frames (top answer
    right; informative)."""
    from pipelines.data.demo.oracle import load_or_fit_demo_oracle

    margin = settings.evaluation.oracle_margin
    train, test = load_shards(folders, "train"), load_shards(folders, "test")
    # Fitted once (about 20 s of CPU) and reused by every step that judges while its inputs stay the same.
    oracle = load_or_fit_demo_oracle(
        folders.folder("informativity_candidates") / "demo_oracle.npz",
        train.frames,
        [m["class_name"] for m in train.meta],
        margin=margin,
        seed=settings.seed,
    )
    # margin > 0: the class beats every other answer; >= margin: informative.
    real = oracle.margins(test.frames, [m["class_name"] for m in test.meta])
    return oracle, {
        "top_answer_accuracy": round(float((real > 0).mean()), 4),
        "informative_share": round(float((real >= margin).mean()), 4),
    }


def generate_candidates(
    folders: ArtifactFolders,
    settings: Profile,
    sources: Sequence[tuple[int, int, Path]],
    device: str,
    log: Log,
    book_path: Path | None = None,
) -> StepOutput:
    """Translations of validation sounds by GAN checkpoints, each class drawing enough for its target of
    balanced labels where the pool allows: `candidates.parquet` (provenance, image file, sha256; `margin`
    with the oracle) in labelling order, `images/<id>.png`, `images.npy` and `draws.json` (per class: what
    it drew, the pairs it gives or is expected to give, whether the pool is exhausted).

    `sources`: `candidate_sources` (per dim in draw order). Every class starts from the base draw (its
    first `candidate_sounds_per_class` sounds, by the first `checkpoints_per_dim` checkpoints of each dim).
    A class short of `labels_per_class` balanced pairs then draws its next sounds, once all are drawn its
    next checkpoints, until it reaches the target or the pool is exhausted. Pairs are counted with the
    oracle's labels (`labels: oracle`, judged as the images are made) or, for a person, estimated from the
    answers in `book_path` (a class with no answer yet keeps the base draw); a person's draw never shrinks
    below a candidate of the previous set that has an answer.
    """
    from pipelines.data.answers import read_answers

    evaluation = settings.evaluation
    target = evaluation.labels_per_class
    folder = folders.folder("informativity_candidates")
    by_dim: dict[int, list[tuple[int, Path]]] = {}
    for dim, epoch, path in sources:
        by_dim.setdefault(dim, []).append((epoch, path))
    pool = _SoundPool(folders, list(by_dim), settings.seed)
    checkpoints_available = max(len(found) for found in by_dim.values())
    draws = {
        name: ClassDraw(
            sounds=min(evaluation.candidate_sounds_per_class or len(order), len(order)),
            sounds_available=len(order),
            checkpoints=min(evaluation.checkpoints_per_dim, checkpoints_available),
            checkpoints_available=checkpoints_available,
        )
        for name, order in pool.sounds.items()
    }
    oracle, answers, metadata = None, {}, {}
    if evaluation.labels == "oracle":
        oracle, real = fit_oracle(folders, settings)
        log(f"demo oracle on the real test frames: {real}")
        write_json_atomic(folder / "oracle.json", real)
        metadata.update({f"oracle_real_test_{k}": v for k, v in real.items()})
    else:
        (folder / "oracle.json").unlink(missing_ok=True)  # an earlier oracle draw's
        answers = read_answers(book_path) if book_path is not None else {}
        _keep_answered(folder / "candidates.parquet", answers, draws, pool, by_dim)

    made = _CandidateImages(folders, settings, by_dim, pool, device, oracle)
    for round_ in itertools.count(1):
        made.extend(draws, log, round_)
        for name, draw in draws.items():
            if draw.done:
                continue
            rows = made.table(name)
            draw.candidates = len(rows)
            if oracle is not None:
                labels = (rows.margin >= evaluation.oracle_margin).astype(int)
                pairs = balanced_pairs(rows.assign(label=labels))
                draw.expected_pairs = float(pairs)
                draw.estimate = f"{pairs} pairs from {int(labels.sum())} informative of {len(rows)} (oracle)"
            else:
                rows = rows.assign(answer=[answers.get(h, {}).get("label") for h in rows.sha256])
                draw.expected_pairs, draw.estimate = expected_pairs_from_answers(rows)
            if draw.expected_pairs is None or draw.expected_pairs >= target:
                draw.done = True
            elif not draw.grow(target):
                draw.done = draw.exhausted = True
        if all(draw.done for draw in draws.values()):
            break

    table, stacked = made.result()
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
    table = table[[*COLUMNS, *(["margin"] if oracle is not None else [])]]
    with atomic_open(folder / "images.npy") as stream:
        np.save(stream, stacked)
    write_parquet_atomic(folder / "candidates.parquet", table)
    write_json_atomic(folder / "draws.json", {name: draw.record() for name, draw in draws.items()})

    per_source = table.groupby(["dim", "epoch"]).size().rename("candidates").reset_index()
    drawn = pd.DataFrame(
        [
            {
                "class": settings.classes.get(name, name),
                "sounds": f"{d.sounds}/{d.sounds_available}",
                "checkpoints per dim": f"{d.checkpoints}/{d.checkpoints_available}",
                "candidates": d.candidates,
                "pairs (expected)": "-" if d.expected_pairs is None else round(d.expected_pairs, 1),
                "estimate": d.estimate,
                "pool exhausted": d.exhausted,
            }
            for name, d in draws.items()
        ]
    )
    metadata |= {
        "candidates": len(table),
        "sources": len(per_source),
        "per_source": markdown_table(per_source),
        "per_class": table.class_name.value_counts().sort_index().to_dict(),
        "draws": markdown_table(drawn),
        "pool_exhausted": sorted(name for name, d in draws.items() if d.exhausted),
        "growth_rounds": round_,
        "examples": png_markdown(_examples_grid(table, stacked, settings.classes), "candidates"),
        "device": device,
    }
    files = [folder / "candidates.parquet", folder / "images.npy", folder / "draws.json"]
    return StepOutput(
        files=files + ([folder / "oracle.json"] if oracle is not None else []), metadata=metadata
    )


class _SoundPool:
    """The validation sounds of every candidate dim: per class in draw order (`sound_order`, from the first
    dim's keys) as (clip_id, segment), and each dim's embedding row of each sound."""

    def __init__(self, folders: ArtifactFolders, dims: list[int], seed: int) -> None:
        self.embeddings, self.rows = {}, {}
        for dim in dims:
            embeddings, keys = embeddings_of(folders, dim, "val")
            self.embeddings[dim] = embeddings
            self.rows[dim] = {
                (c, int(g)): i for i, (c, g) in enumerate(zip(keys.clip_id, keys.segment, strict=True))
            }
            if dim == dims[0]:
                self.sounds = {
                    name: [(keys.clip_id[i], int(keys.segment[i])) for i in order]
                    for name, order in sound_order(keys, seed).items()
                }
        for dim in dims[1:]:
            missing = set(self.rows[dims[0]]) - set(self.rows[dim])
            if missing:
                raise StepError(
                    f"audio_embeddings_{dim} lacks {len(missing)} validation sounds that audio_embeddings_{dims[0]} "
                    f"has (e.g. {sorted(missing)[0]}): materialize audio_embeddings_{dim} again"
                )


def _keep_answered(
    table_path: Path, answers: dict, draws: dict[str, ClassDraw], pool: _SoundPool, by_dim: dict
) -> None:
    """A person's draw never shrinks: each class draws at least up to the last sound and checkpoint (in
    today's orders) of any candidate of the previous set that has an answer."""
    if not table_path.is_file() or not answers:
        return
    previous = pd.read_parquet(table_path)
    previous = previous[previous.sha256.isin(list(answers))]
    ranks = {(dim, epoch): rank for dim, found in by_dim.items() for rank, (epoch, _) in enumerate(found)}
    for name, rows in previous.groupby("class_name"):
        if name not in draws:
            continue
        sound_rank = {sound: rank for rank, sound in enumerate(pool.sounds[name])}
        sounds = [sound_rank.get((c, int(g)), -1) for c, g in zip(rows.clip_id, rows.segment, strict=True)]
        checkpoints = [ranks.get((int(d), int(e)), -1) for d, e in zip(rows.dim, rows.epoch, strict=True)]
        draw = draws[name]
        draw.sounds = max(draw.sounds, max(sounds) + 1)
        draw.checkpoints = max(draw.checkpoints, max(checkpoints) + 1)


class _CandidateImages:
    """The candidates made so far, keyed by digest, extended as draws grow: each (checkpoint, class) pair's
    images in sound order x sample, generated in fixed batches (`candidate_batch`) at fixed positions with a
    seed per image, so drawing more never changes an image already made (nor what a re-run makes)."""

    def __init__(self, folders, settings, by_dim, pool: _SoundPool, device: str, oracle) -> None:
        self.folders, self.seed, self.samples = folders, settings.seed, settings.evaluation.candidate_samples
        self.by_dim, self.pool, self.device, self.oracle = by_dim, pool, device, oracle
        self.batch = candidate_batch(device)
        self.made: dict[tuple[int, int, str], int] = {}  # (dim, checkpoint rank, class) -> images made
        self.rows: dict[str, list[dict]] = {name: [] for name in pool.sounds}
        self.images: dict[str, list[np.ndarray]] = {name: [] for name in pool.sounds}

    def extend(self, draws: dict[str, ClassDraw], log: Log, round_: int) -> None:
        from s2i_models.translate import generate, load_generator

        work = [
            (dim, rank, epoch, path)
            for dim, found in self.by_dim.items()
            for rank, (epoch, path) in enumerate(found)
            if any(self._missing(dim, rank, name, draw) for name, draw in draws.items())
        ]
        progress = Progress(len(work), f"candidates (round {round_})", log=log, unit="checkpoints")
        for dim, rank, epoch, path in work:
            generator = load_generator(path, dim, self.device)
            checkpoint = str(path.relative_to(self.folders.folder(f"gan_{dim}").parent))
            for name, draw in draws.items():
                if not self._missing(dim, rank, name, draw):
                    continue
                done, wanted = self.made.get((dim, rank, name), 0), draw.sounds * self.samples
                start = done - done % self.batch  # a partial batch is made again, whole, at its positions
                sounds = [self.pool.sounds[name][i // self.samples] for i in range(start, wanted)]
                rows = [
                    {
                        "class_name": name,
                        "clip_id": clip_id,
                        "segment": segment,
                        "dim": dim,
                        "epoch": epoch,
                        "checkpoint": checkpoint,
                        "sample": i % self.samples,
                        "digest": candidate_digest(self.seed, dim, epoch, clip_id, segment, i % self.samples),
                    }
                    for i, (clip_id, segment) in zip(range(start, wanted), sounds, strict=True)
                ]
                embeddings = self.pool.embeddings[dim][[self.pool.rows[dim][sound] for sound in sounds]]
                seeds = np.array([[image_seed(row["digest"])] for row in rows], dtype=np.int64)
                images = generate(
                    generator, embeddings, 1, device=self.device, batch_size=self.batch, seeds=seeds
                )[done - start :, 0]  # (new, 96, 96, 3)
                rows = rows[done - start :]
                if self.oracle is not None:
                    for row, margin in zip(
                        rows, self.oracle.margins(images, [name] * len(images)), strict=True
                    ):
                        row["margin"] = float(margin)
                self.rows[name] += rows
                self.images[name] += list(images)
                self.made[(dim, rank, name)] = wanted
            progress.advance()

    def _missing(self, dim: int, rank: int, name: str, draw: ClassDraw) -> bool:
        return rank < draw.checkpoints and self.made.get((dim, rank, name), 0) < draw.sounds * self.samples

    def table(self, name: str) -> pd.DataFrame:
        """One class's candidates so far (with `source`, and `sha256` of their PNG when a person labels)."""
        rows = pd.DataFrame(self.rows[name])
        rows["source"] = [f"gan_{d}@{e}" for d, e in zip(rows.dim, rows.epoch, strict=True)]
        if self.oracle is None:
            self._hash(name)
            rows["sha256"] = [row["sha256"] for row in self.rows[name]]
        return rows

    def _hash(self, name: str) -> None:
        for row, image in zip(self.rows[name], self.images[name], strict=True):
            if "sha256" not in row:
                row["sha256"] = sha256_bytes(png_bytes(image))

    def result(self) -> tuple[pd.DataFrame, np.ndarray]:
        """Every candidate in labelling order (by candidate_id), and their images (N, 96, 96, 3) in that order."""
        rows = [row for name in sorted(self.rows) for row in self.rows[name]]
        images = [image for name in sorted(self.rows) for image in self.images[name]]
        order = sorted(range(len(rows)), key=lambda i: rows[i]["digest"])
        table = pd.DataFrame([rows[i] for i in order])
        table.insert(0, "candidate_id", [candidate_id(d) for d in table.pop("digest")])
        table.insert(1, "image", [f"images/{cid}.png" for cid in table.candidate_id])
        if not table.candidate_id.is_unique:
            raise RuntimeError(
                "informativity_candidates: two candidates share an id (a digest prefix collision)"
            )
        return table, np.stack([images[i] for i in order])


def _examples_grid(table: pd.DataFrame, images: np.ndarray, classes: dict, per_row: int = 6) -> bytes:
    rows, titles = [], []
    for name in sorted(table.class_name.unique()):
        picks = np.flatnonzero(table.class_name.to_numpy() == name)[:per_row]
        rows.append([images[i] for i in picks])
        titles.append(classes.get(name, name))
    return image_grid_png(rows, titles, [])


def label_candidates(
    folders: ArtifactFolders, settings: Profile, book_path: Path, log: Log, warn: Log
) -> StepOutput:
    """A balanced labelled set per class (informative / not), as many of each label from every model: from
    a person's answers in `book_path` (`s2i label`) or, with `labels: oracle`, the demo's oracle.

    `labels.parquet`, and `shortfall.json` (the classes short of `labels_per_class`, each with why); a class
    below `min_labels_per_class` is a `StepError` that says what to do.
    """
    from pipelines.data.answers import AnswerBook

    evaluation = settings.evaluation
    candidates_folder = folders.folder("informativity_candidates")
    folder = folders.folder("informativity_labels")
    table = pd.read_parquet(candidates_folder / "candidates.parquet")
    table["row"] = np.arange(len(table))  # its image in images.npy
    table["source"] = [f"gan_{d}@{e}" for d, e in zip(table.dim, table.epoch, strict=True)]
    images = np.load(candidates_folder / "images.npy", mmap_mode="r")
    metadata: dict[str, Any] = {}
    unlabelled: dict[str, int] = {}  # the oracle labels every candidate
    if evaluation.labels == "oracle":
        if settings.source.kind != "demo":
            warn(
                "evaluation.labels is `oracle` on a real data set: the oracle is a stand-in fitted for the demo's "
                "synthetic scenes, not a judge of real pictures. For results to compare with the paper's, set "
                "`labels: person` and label with `s2i label`."
            )
        stored = candidates_folder / "oracle.json"
        if (
            "margin" in table and stored.is_file()
        ):  # judged as they were drawn: the same oracle, not fitted again
            real = json.loads(stored.read_text())
        else:  # candidates drawn for a person
            oracle, real = fit_oracle(folders, settings)
            table["margin"] = oracle.margins(np.asarray(images), table.class_name.tolist())
        log(f"demo oracle on the real test frames: {real}")
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
    draws_path = candidates_folder / "draws.json"
    draws = json.loads(draws_path.read_text()) if draws_path.is_file() else {}
    exhausted = {name for name, draw in draws.items() if draw.get("exhausted")}
    short = available[pairs < evaluation.min_labels_per_class]
    judged_never = []  # oracle: classes whose whole pool has too few recognisable pictures to train a judge
    if len(short) and evaluation.labels == "oracle" and set(short.index) <= exhausted:
        judged_never = sorted(short.index)
        for name in judged_never:
            warn(
                f"informativity_labels: class {name}: {pairs[name]} informative pictures from the same models in "
                f"the whole pool ({available.loc[name].sum()} candidates), fewer than min_labels_per_class "
                f"{evaluation.min_labels_per_class}: its GANs draw no recognisable object, so no classifier is "
                "trained and every translation of its sounds counts as non-informative"
            )
        chosen = chosen[~chosen.class_name.isin(judged_never)]
        short = short.iloc[0:0]
    if len(short):
        detail = ", ".join(
            f"{name}: {row[1]} informative / {row[0]} not, {pairs[name]} of each from the same models"
            for name, row in short.iterrows()
        )
        if evaluation.labels == "person":
            what_to_do = "label more with `s2i label` (it shows progress per class), then materialize informativity_labels again"
        elif set(short.index) <= exhausted:
            what_to_do = (
                "pool exhausted (every validation sound and checkpoint drawn): add models (evaluation.candidate_dims) "
                "or train the GANs longer"
            )
        else:
            what_to_do = (
                "add candidates (evaluation.checkpoints_per_dim, candidate_samples) or train the GANs longer"
            )
        raise StepError(
            f"informativity_labels: need at least {evaluation.min_labels_per_class} informative and as many "
            f"non-informative images per class, as many of each from every model; have {detail}. {what_to_do}."
        )
    shortfall = label_shortfall(
        table,
        chosen,
        evaluation.labels_per_class,
        settings.class_names,
        unlabelled if unlabelled or evaluation.labels == "person" else None,
        exhausted=exhausted,
    )
    for message in shortfall.values():
        warn(f"informativity_labels: {message}")
    write_json_atomic(folder / "shortfall.json", shortfall)
    write_json_atomic(folder / "never_informative.json", judged_never)
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

    counts = (
        chosen.groupby(["class_name", "label"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=[0, 1], fill_value=0)
    )
    summary = pd.DataFrame(
        {
            "class": [settings.classes.get(n, n) for n in counts.index],
            "informative": counts[1].to_numpy(),
            "non_informative": counts[0].to_numpy(),
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
            "never_informative": ", ".join(judged_never) or "none",
        }
    )
    if len(chosen):
        metadata["examples"] = png_markdown(_labelled_grid(chosen, images, settings.classes), "labelled")
    files = [folder / "labels.parquet", folder / "shortfall.json", folder / "never_informative.json"]
    return StepOutput(files=files, metadata=metadata)


def _labelled_grid(chosen: pd.DataFrame, images, classes: dict, count: int = 3) -> bytes:
    """Per class: `count` informative images, then `count` non-informative ones (`row` = index in `images`)."""
    rows, titles = [], []
    for name, group in chosen.groupby("class_name", sort=True):
        picks = [*group[group.label == 1].row[:count], *group[group.label == 0].row[:count]]
        rows.append([np.asarray(images[row]) for row in picks])
        titles.append(classes.get(name, name))
    columns = [f"informative {i + 1}" for i in range(count)] + [f"not {i + 1}" for i in range(count)]
    return image_grid_png(rows, titles, columns)


def check_labels_reach_target(folders: ArtifactFolders) -> CheckOutcome:
    """Every class has `labels_per_class` informative and as many non-informative labels (no silent shortfall)."""
    shortfall = json.loads((folders.folder("informativity_labels") / "shortfall.json").read_text())
    return CheckOutcome(
        passed=not shortfall,
        metadata={"classes_short": sorted(shortfall)},
        description="; ".join(shortfall.values()) or "every class reached its target",
    )


# ---- classifiers ---------------------------------------------------------------------------------------------------


def train_informativity_classifiers(
    folders: ArtifactFolders, settings: Profile, config: ClassifierConfig, device: str, log: Log
) -> StepOutput:
    """One binary informative / non-informative classifier per class (SPEC §5), `<class>.pt`, with its
    held-out accuracy (`accuracy.parquet`), training history and which labelled images were held out."""
    from s2i_models.checkpoint import save_atomic
    from s2i_models.train.classifier import train_classifier

    folder = folders.folder("informativity_classifiers")
    labels = pd.read_parquet(folders.folder("informativity_labels") / "labels.parquet")
    candidates_folder = folders.folder("informativity_candidates")
    position = {
        cid: i for i, cid in enumerate(pd.read_parquet(candidates_folder / "candidates.parquet").candidate_id)
    }
    all_images = np.load(candidates_folder / "images.npy", mmap_mode="r")
    results, histories, files, held_out = [], [], [], []
    never_path = folders.folder("informativity_labels") / "never_informative.json"
    never = set(json.loads(never_path.read_text())) if never_path.is_file() else set()
    for name in settings.class_names:
        rows = labels[labels.class_name == name]
        if name in never:  # no recognisable picture to learn from: judged never informative (no file)
            results.append({"class_name": name, "images": 0, "split_by": "never informative"})
            log(f"informativity classifier {name}: none (no informative labels); its pictures count as not")
            continue
        images = np.stack([all_images[position[cid]] for cid in rows.candidate_id])
        # No sound's translations on both sides of the split, nor a video's when there are enough videos
        # (MIN_VIDEOS_TO_SPLIT) to hold a fifth of them out.
        split_by = "video" if rows.clip_id.nunique() >= MIN_VIDEOS_TO_SPLIT else "sound"
        groups = rows.clip_id if split_by == "video" else rows.clip_id + "@" + rows.segment.astype(str)
        result = train_classifier(
            images,
            rows.label.to_numpy(),
            config,
            device,
            groups=groups.to_numpy(),
            log_dir=folder / "runs" / name,
        )
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
        log(
            f"informativity classifier {name}: held-out accuracy {result.test_accuracy:.3f} ({len(result.test_index)} images)"
        )
    history = pd.DataFrame(histories)
    write_parquet_atomic(folder / "history.parquet", history)
    split = (
        pd.concat(held_out, ignore_index=True)
        if held_out
        else pd.DataFrame(columns=["candidate_id", "held_out"])
    )
    write_parquet_atomic(folder / "split.parquet", split)
    table = pd.DataFrame(results)
    write_parquet_atomic(folder / "accuracy.parquet", table)
    files += [folder / "history.parquet", folder / "accuracy.parquet", folder / "split.parquet"]
    curves = {
        settings.classes.get(n, n): rows.test_accuracy.tolist()
        for n, rows in (history.groupby("class_name", sort=False) if len(history) else [])
    }
    metadata = {
        "accuracy": markdown_table(
            table.assign(class_name=[settings.classes.get(n, n) for n in table.class_name])
        ),
        **{
            f"accuracy_{row['class_name']}": row["test_accuracy"] for row in results if "test_accuracy" in row
        },
        "mean_accuracy": round(float(table.test_accuracy.mean()), 4) if "test_accuracy" in table else None,
        "held_out_accuracy_curves": png_markdown(
            loss_curves_png(
                list(range(1, config.epochs + 1)), curves, "informativity classifiers: held-out accuracy"
            ),
            "accuracy",
        )
        if curves
        else "no classifier trained: every class judged never informative",
        "device": device,
    }
    return StepOutput(files=files, metadata=metadata)


def convert_authors_classifiers(
    folders: ArtifactFolders, settings: Profile, sources: dict[str, Path], log: Log
) -> StepOutput:
    """The paper's own judges C1-C5 (`sources`: class -> the authors' file), converted to `<class>.pt`, with
    the accuracy the paper reports."""
    from s2i_models.authors import classifier_checkpoint
    from s2i_models.checkpoint import save_atomic

    folder = folders.folder("informativity_classifiers")
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
        log(f"informativity classifier {name}: the authors' {path.name}")
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
    }
    return StepOutput(files=files, metadata=metadata)


# Below this many held-out images a classifier's accuracy is too noisy to call it worse than chance (at 30, a
# 95 % binomial interval is about +-18 points wide): such classes are reported and warned, not failed.
MIN_HELD_OUT_TO_JUDGE = 30


def check_classifiers_beat_chance(folders: ArtifactFolders) -> CheckOutcome:
    """Every class's classifier is right on more held-out images than always giving the commoner label.

    A class with fewer than `MIN_HELD_OUT_TO_JUDGE` held-out images cannot show it either way: it is listed
    under `too_few_held_out` and makes the outcome a warning (nothing stops), never a failure.
    """
    table = pd.read_parquet(folders.folder("informativity_classifiers") / "accuracy.parquet")
    if "test_accuracy" not in table:  # every class judged never informative: nothing to beat chance with
        return CheckOutcome(passed=True, metadata={"not_beating_chance": [], "accuracy": {}})
    table = table[table.test_accuracy.notna()]  # classes judged never informative have no classifier
    # The authors' classifiers come with the paper's accuracy and no held-out count: judged as they are.
    held_out = table["test"] if "test" in table else pd.Series(MIN_HELD_OUT_TO_JUDGE, index=table.index)
    enough = held_out >= MIN_HELD_OUT_TO_JUDGE
    judged, too_few = table[enough], table[~enough]
    losing = judged[judged.test_accuracy <= judged.chance]
    metadata = {
        "not_beating_chance": losing.class_name.tolist(),
        "too_few_held_out": dict(zip(too_few.class_name, held_out[~enough].astype(int), strict=True)),
        "accuracy": dict(zip(table.class_name, table.test_accuracy.astype(float), strict=True)),
    }
    if not losing.empty:
        return CheckOutcome(passed=False, metadata=metadata)
    if not too_few.empty:
        listed = ", ".join(f"{name} ({count})" for name, count in metadata["too_few_held_out"].items())
        return CheckOutcome(
            passed=False,
            metadata=metadata,
            description=(
                f"too few held-out images to tell these classifiers from chance: {listed}; "
                f"label more (at least {MIN_HELD_OUT_TO_JUDGE} held out) to judge them"
            ),
            warn_only=True,
        )
    return CheckOutcome(passed=True, metadata=metadata)


def load_classifiers(folders: ArtifactFolders, class_names: list[str], device: str) -> dict:
    """The informativity classifiers in `informativity_classifiers/`, by class, on `device`."""
    from s2i_models.checkpoint import load_checkpoint
    from s2i_models.train.classifier import NeverInformative, load_classifier

    folder = folders.folder("informativity_classifiers")
    table = pd.read_parquet(folder / "accuracy.parquet") if (folder / "accuracy.parquet").is_file() else None
    never = (
        set()
        if table is None or "split_by" not in table
        else set(table.class_name[table.split_by == "never informative"])
    )
    return {
        name: NeverInformative()
        if name in never
        else load_classifier(load_checkpoint(folder / f"{name}.pt"), device)
        for name in class_names
    }


# ---- informativity per dim ---------------------------------------------------------------------------------------


def evaluate_informativity(
    folders: ArtifactFolders,
    settings: Profile,
    dim: int,
    checkpoints: Sequence[tuple[int, Path]],
    per_checkpoint_key: str,
    device: str,
    log: Log,
) -> StepOutput:
    """Informativity per class at every saved checkpoint of gan_{dim} (or the training loop's per-epoch
    values, when it judged), the paper's two summaries and the untrained baseline: `history.parquet`,
    `summary.json`. Each checkpoint's scores are cached under `per_checkpoint_key` (samples, seed, inputs)."""
    from pipelines.data.report import informativity_history_png
    from s2i_models.checkpoint import load_checkpoint
    from s2i_models.evaluation import discriminator_update_epochs, summarize, window_mean
    from s2i_models.scoring import score_translations
    from s2i_models.translate import build_generator, load_generator

    evaluation = settings.evaluation
    key = f"informativity_{dim}"
    folder = folders.folder(key)
    embeddings, keys = embeddings_of(folders, dim, "test")
    class_names = keys.class_name.to_numpy()
    classifiers = load_classifiers(folders, settings.class_names, device)
    cache = folder / "per_checkpoint"
    cache.mkdir(exist_ok=True)

    used: set[Path] = set()

    def evaluate(epoch: int, stamp: str, make_generator) -> dict:
        path = cache / f"{epoch:05d}-{fingerprint('cache', stamp, {'key': per_checkpoint_key})}.json"
        used.add(path)
        if path.is_file():
            try:
                cached = json.loads(path.read_text())
                if isinstance(cached.get("informativity"), dict) and isinstance(
                    cached.get("cross_class"), dict
                ):
                    return cached
                raise ValueError("not a scores record")
            except (OSError, ValueError, AttributeError) as error:
                log(
                    f"{path}: unreadable cached scores ({error}); moved aside as {path.name}.bad and recomputed"
                )
                path.replace(path.with_name(path.name + ".bad"))
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

    baseline = evaluate(BASELINE_EPOCH, f"untrained:{json.dumps(last_config, sort_keys=True)}", untrained)[
        "informativity"
    ]
    rows = []
    progress = Progress(len(checkpoints), key, log=log, unit="checkpoints")
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
    every_epoch = epoch_informativity(folders, dim, settings.class_names)
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

    table = summary_table(summary, settings.classes)
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
    }
    return StepOutput(files=[folder / "history.parquet", folder / "summary.json"], metadata=metadata)


def summary_table(summary: dict, classes: dict) -> pd.DataFrame:
    """One dim's summary per class: window average, best moving average, baseline, cross-class control."""
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


def check_every_checkpoint_evaluated(folders: ArtifactFolders, dim: int) -> CheckOutcome:
    """Every saved checkpoint has an informativity in [0, 1] for every class."""
    folder = folders.folder(f"informativity_{dim}")
    history = pd.read_parquet(folder / "history.parquet")
    summary = json.loads((folder / "summary.json").read_text())
    missing = sorted(set(summary["epochs_evaluated"]) - set(history.epoch))
    values = history.informativity.to_numpy()
    in_range = bool(np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all())
    return CheckOutcome(
        passed=not missing and in_range,
        metadata={"epochs_missing": missing, "values_in_range": in_range, "rows": len(history)},
    )


# ---- the report ------------------------------------------------------------------------------------------------------


def data_coverage(folders: ArtifactFolders) -> dict:
    """The data set's size against the paper's (from the `splits` metadata), for the report; {} if unknown."""
    from pipelines.data.artifact_manifest import read_manifest

    manifest = read_manifest(folders.folder("splits"))
    metadata = manifest.data.get("metadata", {}) if manifest is not None else {}
    keys = (
        "clips_asked",
        "clips_obtained",
        "segments_in_splits",
        "paper_segments",
        "share_of_paper_segments",
    )
    return {key: metadata[f"coverage_{key}"] for key in keys if f"coverage_{key}" in metadata}


def build_report(
    folders: ArtifactFolders,
    settings: Profile,
    evaluated: Sequence[int],
    all_dims: Sequence[int],
    device: str,
    log: Log,
) -> StepOutput:
    """The paper's Figures 7-10 and the summary table from the `evaluated` dims, in `s2i_report/`; what is
    missing or damaged is listed in the notes (a `StepError` when no evaluated dim can be read)."""
    from pipelines.data import report
    from s2i_models.translate import generate, load_generator

    evaluation = settings.evaluation
    folder = folders.folder("s2i_report")
    summaries, histories, pixel_losses, problems = report.read_evaluations(folders.root, evaluated)
    notes = [f"dim {dim}: {problem}" for dim, problem in problems.items()]
    notes += [
        f"dim {dim}: not evaluated yet (materialize informativity_{dim})"
        for dim in all_dims
        if dim not in evaluated
    ]
    evaluated = sorted(summaries)
    if not evaluated:
        raise StepError("s2i_report: no evaluated dim could be read: " + "; ".join(notes))
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
        "data": data_coverage(folders),
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
    saved = dict(gan_checkpoints(folders, best_dim))
    if saved and best_epoch is not None:
        epoch = min(saved, key=lambda e: (abs(e - best_epoch), -e))
        if epoch != best_epoch:
            notes.append(
                f"Figures 9/10: dim {best_dim}'s best epoch {best_epoch} has no saved checkpoint; "
                f"they show epoch {epoch}, the nearest saved one"
            )
        generator = load_generator(saved[epoch], best_dim, device)
        embeddings, keys = embeddings_of(folders, best_dim, "test")
        test = load_shards(folders, "test")
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
    }
    log(f"s2i report: {folder / 'index.html'}")
    return StepOutput(files=[p for p in written if p.is_file()], metadata=metadata)
