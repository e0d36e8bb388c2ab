"""Imported once by the multiprocess executor's forkserver (pipelines/executor.py), so that every step forked
from it starts with Dagster, torch and the step libraries already loaded.

The assets import these lazily, so that loading the definitions (the UI, the code server, the CLI) stays fast;
a step process, which needs them anyway, gets them here for free.
"""

from __future__ import annotations

import pandas  # noqa: F401
import torch  # noqa: F401

import pipelines.data.evaluation_steps  # noqa: F401
import pipelines.data.previews  # noqa: F401
import pipelines.data.report  # noqa: F401
import pipelines.data.segments  # noqa: F401
import pipelines.data.shards  # noqa: F401
import pipelines.data.training_steps  # noqa: F401
import pipelines.media.logmel  # noqa: F401
import s2i_models.train.autoencoder  # noqa: F401
import s2i_models.train.classifier  # noqa: F401
import s2i_models.train.gan  # noqa: F401

# Resolve the repository and the asset job once here too: every forked step inherits the result instead of
# rebuilding the asset graph before it starts.
from pipelines.definitions import defs  # noqa: E402

defs.get_repository_def().get_all_jobs()
