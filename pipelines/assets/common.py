"""What every asset shares: upstream fingerprints, reuse of an unchanged output, metadata helpers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from pipelines.data.artifact_manifest import Manifest, read_manifest, reusable_manifest
from pipelines.resources import ArtifactStore


class MissingUpstream(RuntimeError):
    pass


def upstream_fingerprint(store: ArtifactStore, asset_key: str) -> str:
    manifest = read_manifest(store.folder(asset_key))
    if manifest is None:
        raise MissingUpstream(
            f"`{asset_key}` has not been materialized under {store.folder(asset_key)}: materialize it first "
            f"(dagster asset materialize -m pipelines --select {asset_key})."
        )
    return manifest.fingerprint


def reuse(context: AssetExecutionContext, folder: Path, expected: str) -> MaterializeResult | None:
    """A result built from the existing manifest when it matches, else None (and the asset computes)."""
    manifest = reusable_manifest(folder, expected)
    if manifest is None:
        return None
    context.log.info(
        f"{folder.name}: inputs and settings unchanged (fingerprint {expected}); reusing {folder}"
    )
    return result_from(manifest, reused=True)


def result_from(
    manifest: Manifest, reused: bool = False, extra: Mapping[str, Any] | None = None
) -> MaterializeResult:
    metadata = dict(manifest.data.get("metadata", {}))
    metadata["fingerprint"] = manifest.fingerprint
    metadata["reused"] = reused
    metadata.update(extra or {})
    return MaterializeResult(metadata=to_metadata(metadata))


def to_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    """Plain JSON-able values -> Dagster metadata; strings starting with '|' or '![' render as markdown."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str) and (value.startswith("|") or value.startswith("![")):
            out[key] = MetadataValue.md(value)
        elif isinstance(value, str) and key.endswith("_path"):
            out[key] = MetadataValue.path(value)
        elif isinstance(value, float):
            out[key] = MetadataValue.float(value)
        elif isinstance(value, bool):
            out[key] = MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = MetadataValue.int(value)
        elif isinstance(value, dict | list):
            out[key] = MetadataValue.json(value)
        else:
            out[key] = value
    return out


def markdown_table(frame: pd.DataFrame, max_rows: int = 30) -> str:
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


class Timer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.start, 2)
