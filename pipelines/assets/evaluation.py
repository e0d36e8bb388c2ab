"""Informativity evaluation (paper §5.3-5.4; SPEC §5-6): candidates, labels, classifiers, per-dim
informativity, and the report.

informativity_candidates -> informativity_labels -> informativity_classifiers -> informativity_{dim} -> s2i_report

The work is in `pipelines.data.evaluation_steps`; these assets read the profile, fingerprint their inputs,
reuse an unchanged output, call one step and record what it wrote. The library (numpy, pandas, torch) is
imported inside the assets, so loading the definitions stays fast.
"""

# No `from __future__ import annotations` here: Dagster compares an asset's `context` annotation with
# the class itself, so hints of names imported only for type checking are quoted instead.
from pathlib import Path
from typing import TYPE_CHECKING

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

from pipelines.assets.common import (
    Timer,
    check_result,
    materialized,
    reuse,
    upstream_fingerprint,
    user_errors_fail,
)
from pipelines.assets.training import DIMS
from pipelines.data.artifact_manifest import fingerprint, read_manifest
from pipelines.gpu import GPU_OP_TAGS, GPU_POOL
from pipelines.resources import ArtifactStore, S2IProfile, TorchDevice

if TYPE_CHECKING:
    from torch import nn

CANDIDATES_VERSION = "2"
LABELS_VERSION = "3"
CLASSIFIERS_VERSION = "2"
INFORMATIVITY_VERSION = "3"
REPORT_VERSION = "2"

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


def gan_checkpoints(store: ArtifactStore, dim: int) -> list[tuple[int, Path]]:
    """(epoch, path) of every saved checkpoint of gan_{dim}'s newest training folder, by epoch; [] if none."""
    from pipelines.data import evaluation_steps

    return evaluation_steps.gan_checkpoints(store.artifact_folders(), dim)


def load_classifiers(store: ArtifactStore, class_names: list[str], device: str) -> dict[str, "nn.Module"]:
    """The informativity classifiers in the store's `informativity_classifiers/`, by class, on `device`."""
    from pipelines.data import evaluation_steps

    return evaluation_steps.load_classifiers(store.artifact_folders(), class_names, device)


# ---- candidates and labels --------------------------------------------------------------------------------------


@asset(
    group_name="evaluation",
    code_version=CANDIDATES_VERSION,
    deps=[f"gan_{dim}" for dim in DIMS] + [f"audio_embeddings_{dim}" for dim in DIMS] + ["shards"],
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    kinds={"pytorch"},
)
def informativity_candidates(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore, torch_device: TorchDevice
) -> MaterializeResult:
    """Translations of validation sounds by GAN checkpoints (equal numbers each), enough per class for its labels."""
    from pipelines.data.answers import answers_path
    from pipelines.data.evaluation_steps import candidate_sources, checkpoint_stamp, generate_candidates

    settings = profile.load()
    evaluation = settings.evaluation
    folders = store.artifact_folders()
    with user_errors_fail():
        sources = candidate_sources(folders, evaluation)
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
                "labels",
                "labels_per_class",
            },
        ),
    }
    # How much each class draws depends on how its candidates are judged: the oracle (fitted on the shards)
    # or a person's answers so far.
    book_path = answers_path(folders.root)
    _add_judgement(store, evaluation, book_path, inputs, config)
    folder = store.folder("informativity_candidates")
    expected = fingerprint(CANDIDATES_VERSION, config, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    device = torch_device.resolve(context)
    with user_errors_fail():
        output = generate_candidates(
            folders, settings, sources, device, log=context.log.info, book_path=book_path
        )
    return materialized(folder, expected, output, settings=config, inputs=inputs, timer=timer)


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
    from pipelines.data.answers import answers_path
    from pipelines.data.evaluation_steps import label_candidates

    settings = profile.load()
    evaluation = settings.evaluation
    folders = store.artifact_folders()
    inputs = {"informativity_candidates": upstream_fingerprint(store, "informativity_candidates")}
    config = {
        "seed": settings.seed,
        **evaluation.model_dump(mode="json", include={"labels", "labels_per_class", "min_labels_per_class"}),
    }
    book_path = answers_path(folders.root)
    _add_judgement(store, evaluation, book_path, inputs, config)
    folder = store.folder("informativity_labels")
    expected = fingerprint(LABELS_VERSION, config, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    with user_errors_fail():
        output = label_candidates(
            folders, settings, book_path, log=context.log.info, warn=context.log.warning
        )
    return materialized(folder, expected, output, settings=config, inputs=inputs, timer=timer)


@asset_check(asset=informativity_labels, name="labels_reach_target", blocking=False)
def labels_reach_target(store: ArtifactStore) -> AssetCheckResult:
    """Every class has `labels_per_class` informative and as many non-informative labels (no silent shortfall)."""
    from pipelines.data.evaluation_steps import check_labels_reach_target

    return check_result(
        check_labels_reach_target(store.artifact_folders()), severity=AssetCheckSeverity.ERROR
    )


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

    from pipelines.data.evaluation_steps import train_informativity_classifiers
    from s2i_models.train.classifier import ClassifierConfig

    settings = profile.load()
    config = ClassifierConfig(**settings.evaluation.classifier.model_dump(), seed=settings.seed)
    folder = store.folder("informativity_classifiers")
    inputs = {"informativity_labels": upstream_fingerprint(store, "informativity_labels")}
    expected = fingerprint(CLASSIFIERS_VERSION, asdict(config), inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    device = torch_device.resolve(context)
    output = train_informativity_classifiers(
        store.artifact_folders(), settings, config, device, log=context.log.info
    )
    return materialized(folder, expected, output, settings=asdict(config), inputs=inputs, timer=timer)


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
    from pipelines.data.evaluation_steps import convert_authors_classifiers
    from pipelines.data.files import sha256_file
    from s2i_models.authors import authors_file

    settings = profile.load()
    folder = store.folder("informativity_classifiers")
    sources = {
        name: authors_file(settings.authors_models, "classifier", class_name=name)
        for name in settings.class_names
    }
    inputs = {name: f"{path.name}:{sha256_file(path)}" for name, path in sources.items()}
    used = {"classifiers": "authors"}
    expected = fingerprint(CLASSIFIERS_VERSION, used, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached
    timer = Timer()
    output = convert_authors_classifiers(store.artifact_folders(), settings, sources, log=context.log.info)
    return materialized(folder, expected, output, settings=used, inputs=inputs, timer=timer)


@asset_check(asset="informativity_classifiers", name="each_beats_chance", blocking=True)
def classifiers_beat_chance(store: ArtifactStore) -> AssetCheckResult:
    """Every class's classifier is right on more held-out images than always giving the commoner label."""
    from pipelines.data.evaluation_steps import check_classifiers_beat_chance

    return check_result(check_classifiers_beat_chance(store.artifact_folders()))


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
        from pipelines.data.evaluation_steps import (
            checkpoint_stamp,
            evaluate_informativity,
            require_checkpoints,
        )

        settings = profile.load()
        evaluation = settings.evaluation
        folders = store.artifact_folders()
        with user_errors_fail():
            checkpoints = require_checkpoints(folders, dim)
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
        device = torch_device.resolve(context)
        output = evaluate_informativity(
            folders, settings, dim, checkpoints, per_checkpoint_key, device, log=context.log.info
        )
        return materialized(folder, expected, output, settings=config, inputs=inputs, timer=timer)

    @asset_check(asset=key, name="every_checkpoint_evaluated", blocking=True)
    def every_checkpoint_evaluated(store: ArtifactStore) -> AssetCheckResult:
        """Every saved checkpoint has an informativity in [0, 1] for every class."""
        from pipelines.data.evaluation_steps import check_every_checkpoint_evaluated

        return check_result(check_every_checkpoint_evaluated(store.artifact_folders(), dim))

    return informativity, every_checkpoint_evaluated


informativity_assets = []
informativity_checks = []
for _dim in DIMS:
    _asset, _check = build_informativity_asset(_dim)
    informativity_assets.append(_asset)
    informativity_checks.append(_check)


# ---- the report ------------------------------------------------------------------------------------------------------


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
    from pipelines.data.evaluation_steps import build_report

    settings = profile.load()
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
    # A few translations for Figures 9/10: the CPU does them in seconds, and the report never waits for a
    # GPU that a GAN holds for hours.
    device = "cpu"
    with user_errors_fail():
        output = build_report(
            store.artifact_folders(), settings, evaluated, DIMS, device, log=context.log.info
        )
    return materialized(folder, expected, output, settings=config, inputs=inputs, timer=timer)


def _add_judgement(store: ArtifactStore, evaluation, book_path: Path, inputs: dict, config: dict) -> None:
    """Into a fingerprint's `inputs` and `config`: what judges the candidates (the oracle, fitted on the shards,
    and its margin; or the person's answer book at `book_path`, by content)."""
    from pipelines.data.candidates import sha256_bytes

    if evaluation.labels == "oracle":
        inputs["shards"] = upstream_fingerprint(store, "shards")
        config["oracle_margin"] = evaluation.oracle_margin
    else:
        inputs["answers"] = sha256_bytes(book_path.read_bytes()) if book_path.is_file() else "none"
