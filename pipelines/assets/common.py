"""What every asset shares: upstream fingerprints, reuse of an unchanged output, metadata helpers, and the
conversion of the library's plain results (`pipelines.data.steps`) into Dagster's."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import AssetCheckResult, AssetExecutionContext, Failure, MaterializeResult, MetadataValue

from pipelines.data.artifact_manifest import Manifest, read_manifest, reusable_manifest, write_manifest
from pipelines.data.steps import CheckOutcome, StepError, StepOutput
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


def materialized(
    folder: Path, expected: str, output: StepOutput, *, settings: Any, inputs: dict[str, str], timer: Timer
) -> MaterializeResult:
    """Writes the manifest of what a library step wrote (its metadata plus `seconds`) and returns the result."""
    manifest = write_manifest(
        folder,
        expected,
        settings=settings,
        inputs=inputs,
        files=output.files,
        metadata={**output.metadata, "seconds": timer.seconds},
        **output.manifest,
    )
    return result_from(manifest)


@contextmanager
def user_errors_fail() -> Iterator[None]:
    """A library `StepError` (the user can fix it) stops the step as a Dagster `Failure`, same message."""
    try:
        yield
    except StepError as error:
        raise Failure(str(error)) from error


def check_result(outcome: CheckOutcome, **options: Any) -> AssetCheckResult:
    """A library check's verdict as an `AssetCheckResult` (`options`: severity and the like)."""
    return AssetCheckResult(
        passed=outcome.passed, metadata=outcome.metadata, description=outcome.description, **options
    )


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


class Timer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.start, 2)
