"""Scheduled re-evaluation: nightly (the profile's `evaluation.schedule` cron) re-score every GAN that has
checkpoints and rebuild the report, and re-score a dim as soon as its `gan_{dim}` materializes.

Both only request work: unchanged checkpoints and classifiers are reused from their caches, so a night
with no new checkpoint costs seconds.
"""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from pipelines.assets.evaluation import gan_checkpoints
from pipelines.assets.training import DIMS
from pipelines.resources import ArtifactStore

EVALUATION_ASSETS = [f"informativity_{dim}" for dim in DIMS] + ["s2i_report"]

evaluation_job = define_asset_job(
    "s2i_evaluation_job",
    selection=AssetSelection.assets(*EVALUATION_ASSETS),
    description="Re-score the GANs' checkpoints (informativity_{dim}) and rebuild s2i_report.",
)


def build_evaluation_schedule(cron: str):
    @schedule(
        name="nightly_evaluation",
        job=evaluation_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description="Re-score every GAN with checkpoints on disk (training may still run) and rebuild the report.",
    )
    def nightly_evaluation(context: ScheduleEvaluationContext, store: ArtifactStore):
        dims = [dim for dim in DIMS if gan_checkpoints(store, dim)]
        if not dims:
            return SkipReason("no GAN has saved a checkpoint yet: nothing to evaluate")
        keys = [AssetKey(f"informativity_{dim}") for dim in dims] + [AssetKey("s2i_report")]
        return RunRequest(
            run_key=None,
            asset_selection=keys,
            tags={"s2i/trigger": "nightly", "s2i/dims": ",".join(map(str, dims))},
        )

    return nightly_evaluation


# Evaluates the assets' automation conditions (informativity_{dim}: its GAN, embeddings or classifiers
# updated; s2i_report: an evaluated dim updated) every minute while the daemon runs (`make dev`).
evaluation_automation = AutomationConditionSensorDefinition(
    "evaluation_on_new_gan",
    target=AssetSelection.assets(*EVALUATION_ASSETS),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Re-scores a dim when its gan_{dim} materializes, then rebuilds the report.",
)
