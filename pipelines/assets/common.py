"""What every asset shares: upstream fingerprints, reuse of an unchanged output, metadata helpers, and the
conversion of the library's plain results (`pipelines.data.steps`) into Dagster's.

One writer per artifact: `reuse` (which every asset calls on its own folder before it computes) takes the
folder's writer lock (`pipelines.data.locks`: a flock on `<folder>/.lock`, held by this process) and keeps it
while the asset computes; `result_from` (which every asset returns through) gives it back, and so does the
kernel when the process dies. A second run of the same asset, from anywhere that sees the data folder, fails
at once with "gan_512 is being written by run <id> since <time> ..." (or waits `S2I_LOCK_WAIT_S` seconds),
unless the output it wants is already there, which it then reuses.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from pipelines.data import locks
from pipelines.data.artifact_manifest import (
    Manifest,
    manifest_problem,
    read_manifest,
    reusable_manifest,
    write_manifest,
)
from pipelines.data.steps import CheckOutcome, StepError, StepOutput
from pipelines.resources import ArtifactStore


class MissingUpstream(RuntimeError):
    pass


def upstream_fingerprint(store: ArtifactStore, asset_key: str) -> str:
    folder = store.folder(asset_key)
    manifest = read_manifest(folder)
    if manifest is None:
        problem = manifest_problem(folder)
        if problem not in (None, "missing"):
            raise MissingUpstream(
                f"`{asset_key}`'s manifest is damaged ({problem}): materialize `{asset_key}` again, it moves "
                f"the damaged file aside and rebuilds (dagster asset materialize -m pipelines --select {asset_key})."
            )
        raise MissingUpstream(
            f"`{asset_key}` has not been materialized under {folder}: materialize it first "
            f"(dagster asset materialize -m pipelines --select {asset_key})."
        )
    return manifest.fingerprint


def _step_key(context: AssetExecutionContext) -> str | None:
    try:
        return context.get_step_execution_context().step.key
    except Exception:  # noqa: BLE001 - a context built for a direct invocation has no step
        return None


def hold_writer_lock(context: AssetExecutionContext, folder: Path) -> locks.WriterLock:
    """Take `folder`'s writer lock for this step (fail at once, or wait `S2I_LOCK_WAIT_S`), until
    `result_from` or `release_writer_lock`, or this process's end. For an asset that does not call `reuse`."""
    locks.release_all()  # a process runs one step at a time: what an earlier, failed step kept goes now
    try:
        lock = locks.acquire(
            folder,
            run_id=context.run.run_id,
            step=_step_key(context),
            wait_s=locks.wait_seconds_from_env(),
            log=context.log.info,
        )
    except locks.ArtifactBusy as error:
        raise Failure(str(error), metadata={"holder": MetadataValue.json(error.holder)}) from None
    _release_with_step(context, lock)
    return lock


def _release_with_step(context: AssetExecutionContext, lock: locks.WriterLock) -> None:
    """Also give the lock back when the step's context is collected (a step that failed in a process that
    lives on, e.g. `dagster.materialize` in a notebook); a step that succeeds gives it back in `result_from`."""
    try:
        weakref.finalize(context, lock.release)
    except TypeError:  # not weak-referenceable: the next step or the process's end releases it
        pass


def release_writer_lock(folder: Path) -> None:
    locks.release_lock(folder)


def reuse(context: AssetExecutionContext, folder: Path, expected: str) -> MaterializeResult | None:
    """A result built from the existing manifest when it matches, else None: the asset computes, holding
    `folder`'s writer lock until it returns through `result_from`.

    When another live run holds the lock, a matching output is still reused (it is complete: the manifest is
    written last); otherwise this fails at once naming that run, or waits for it (`S2I_LOCK_WAIT_S`).
    """
    # A process runs one step at a time: locks that an earlier, failed step of this process kept go now.
    locks.release_all()
    lock = locks.try_lock(folder, run_id=context.run.run_id, step=_step_key(context))
    if lock is not None:
        _release_with_step(context, lock)
    else:
        manifest = reusable_manifest(folder, expected, log=context.log.warning)
        if manifest is not None:
            context.log.info(
                f"{locks.describe(folder.name, locks.read_holder(folder))}, but its current output matches "
                f"(fingerprint {expected}); reusing {folder}"
            )
            return result_from(manifest, reused=True)
        hold_writer_lock(context, folder)
    manifest = reusable_manifest(folder, expected, log=context.log.warning, repair=True)
    if manifest is None:
        return None
    context.log.info(
        f"{folder.name}: inputs and settings unchanged (fingerprint {expected}); reusing {folder}"
    )
    return result_from(manifest, reused=True)


def result_from(
    manifest: Manifest, reused: bool = False, extra: Mapping[str, Any] | None = None
) -> MaterializeResult:
    """The asset's result from its manifest; the folder's writer lock, if this process holds it, goes back."""
    if manifest.folder is not None:
        locks.release_lock(manifest.folder)
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
    if outcome.warn_only and "severity" not in options:
        options = {**options, "severity": AssetCheckSeverity.WARN}
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
