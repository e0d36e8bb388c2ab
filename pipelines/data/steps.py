"""What the library's pipeline steps hand the Dagster layer, in plain Python (no Dagster, DESIGN §1).

A step (`pipelines.data.training_steps`, `pipelines.data.evaluation_steps`) reads and writes asset folders
through `ArtifactFolders`, returns a `StepOutput` (the files it wrote, the metadata to show) or a check's
`CheckOutcome`, and raises `StepError` for a problem the user can fix. `pipelines/assets` turns these into
the manifest, `MaterializeResult`, `AssetCheckResult` and `Failure`.

Standard library only: the Dagster layer imports this module when the definitions load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ArtifactFolders:
    """Artifacts live under `root`, a folder per asset key: what the `store` resource points at."""

    root: Path

    def folder(self, asset_key: str) -> Path:
        path = self.root / asset_key
        path.mkdir(parents=True, exist_ok=True)
        return path


class StepError(RuntimeError):
    """A problem the user can fix (train first, label more); the message says what to do."""


@dataclass
class StepOutput:
    """What a step wrote (`files`, checksummed in the manifest), what to show (`metadata`, plain JSON-able
    values; strings starting with '|' or '![' are markdown) and other manifest fields (`manifest`)."""

    files: list[Path]
    metadata: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckOutcome:
    """An asset check's verdict: passed or not, what it measured, and a one-line description."""

    passed: bool
    metadata: dict[str, Any]
    description: str | None = None
    warn_only: bool = False  # a failure that should not stop what depends on the asset (WARN severity)


def markdown_table(frame: pd.DataFrame, max_rows: int = 30) -> str:
    """The first `max_rows` rows of a table as markdown (cells cut at 80 characters, '|' escaped)."""
    if frame.empty:
        return "| (none) |\n|---|\n"
    shown = frame.head(max_rows)
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "---|" * len(shown.columns)
    rows = [
        "| " + " | ".join(str(v).replace("|", "/")[:80] for v in row) + " |"
        for row in shown.itertuples(index=False)
    ]
    more = [f"| ... {len(frame) - max_rows} more |"] if len(frame) > max_rows else []
    return "\n".join([header, rule, *rows, *more])
