"""The Dagster code location: `dagster dev` / `dagster asset materialize -m pipelines`.

Loading stays fast and torch-free: assets import heavy libraries inside their bodies.
"""

from __future__ import annotations

import gc

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from pipelines.executor import select_executor
from pipelines.profile import Profile, load_profile
from pipelines.resources import default_resources

# `import dagster` leaves ~110,000 long-lived objects and no garbage. Building the asset graph (the imports
# below) allocates enough to set off full collections that scan them all, ~70 ms of the load on a 2-core
# machine, and free nothing; in the permanent generation they are skipped by every later collection.
gc.freeze()

from pipelines import checks  # noqa: E402 - after the freeze, which is what makes building the assets fast
from pipelines.assets import dataset, evaluation, features, ingest, training  # noqa: E402
from pipelines.schedules import build_evaluation_schedule, evaluation_automation, evaluation_job  # noqa: E402

_resources = default_resources()
# Fail at load, not mid-run, when the profile is invalid: the message names the key and the value.
_profile = load_profile(_resources["profile"].profile)


def build_assets(profile: Profile) -> tuple[list, list]:
    """The assets and checks of the graph a profile runs. With `evaluation.classifiers: authors` the
    informativity judges are the authors' C1-C5: the candidate and labelling steps are not in the graph."""
    if profile.evaluation.classifiers == "authors":
        judges, labelling_checks = [evaluation.authors_informativity_classifiers], []
    else:
        judges = [
            evaluation.informativity_candidates,
            evaluation.informativity_labels,
            evaluation.informativity_classifiers,
        ]
        labelling_checks = [evaluation.labels_reach_target]
    assets = [
        *load_assets_from_modules([ingest, features, dataset]),
        *training.model_assets,
        *judges,
        *evaluation.informativity_assets,
        evaluation.s2i_report,
    ]
    asset_checks = [
        *load_asset_checks_from_modules([checks]),
        *training.model_checks,
        evaluation.classifiers_beat_chance,
        *labelling_checks,
        *evaluation.informativity_checks,
    ]
    return assets, asset_checks


all_assets, all_checks = build_assets(_profile)

s2i_job = define_asset_job(
    "s2i_job", selection=AssetSelection.all(), description="Every asset of the pipeline, in order."
)

defs = Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[s2i_job, evaluation_job],
    schedules=[build_evaluation_schedule(_profile.evaluation.schedule)],
    sensors=[evaluation_automation],
    resources=_resources,
    executor=select_executor(),  # S2I_EXECUTOR: multiprocess (default), in_process or k8s
)
