"""`vegas_clips`: the clip table, from a local VEGAS copy, the synthetic demo, or a yt-dlp manifest."""

import math

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, asset

from pipelines.assets.common import Timer, markdown_table, result_from
from pipelines.data.artifact_manifest import fingerprint, read_manifest, write_manifest
from pipelines.data.files import write_parquet_atomic
from pipelines.data.vegas import CLIP_COLUMNS, ClipRecord, scan_local
from pipelines.profile import DemoSource, LocalSource, Profile, YoutubeSource
from pipelines.resources import ArtifactStore, S2IProfile

CODE_VERSION = "1"


def _demo_clips(settings: Profile, source: DemoSource, folder, log) -> list[ClipRecord]:
    from pipelines.data.demo import generate_demo

    root = folder / "demo"
    generate_demo(
        root, settings.class_names, source.clips_per_class, settings.seed, workers=settings.workers, log=log
    )
    return scan_local(root, settings.class_names)


def _youtube_clips(settings: Profile, source: YoutubeSource, folder, log) -> list[ClipRecord]:
    from pipelines.data.manifest import read_manifest as read_clip_manifest
    from pipelines.media.download import download_clips
    from pipelines.media.mp4 import mp4_duration

    rows = read_clip_manifest(source.manifest, settings.class_names)
    log(f"manifest {source.manifest}: {len(rows)} valid rows; fetching with yt-dlp")
    results = download_clips(
        rows,
        folder / "youtube",
        workers=source.download_workers,
        retries=source.retries,
        timeout_s=source.timeout_s,
        log=log,
    )
    records = []
    for result in results:
        ok = result.path is not None and result.status != "failed"
        duration = mp4_duration(result.path) if ok else None
        records.append(
            ClipRecord(
                clip_id=result.clip_id,
                class_name=result.class_name,
                path=str(result.path) if ok else "",
                source=result.url,
                duration=float("nan") if duration is None else round(duration, 3),
                status="ok" if ok else "failed",
                reason="" if ok else f"{result.reason}: {result.detail}".strip(": "),
            )
        )
    return records


@asset(group_name="ingest", code_version=CODE_VERSION, kinds={"python", "parquet"})
def vegas_clips(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore
) -> MaterializeResult:
    """The clip table: one row per video (clip_id, class_name, path, source, duration, status, reason)."""
    settings = profile.load()
    folder = store.folder("vegas_clips")
    timer = Timer()
    source = settings.source
    if isinstance(source, DemoSource):
        records = _demo_clips(settings, source, folder, context.log.info)
    elif isinstance(source, LocalSource):
        records = scan_local(source.root, settings.class_names)
    elif isinstance(source, YoutubeSource):
        records = _youtube_clips(settings, source, folder, context.log.info)
    else:  # pragma: no cover - the profile's validation admits no other kind
        raise ValueError(f"unknown source kind {source!r}")

    table = pd.DataFrame([r.row() for r in records], columns=CLIP_COLUMNS)
    # The table itself is the input fingerprint: listing, sizes and durations.
    listing = pd.util.hash_pandas_object(table, index=False).sum() if len(table) else 0
    expected = fingerprint(
        CODE_VERSION,
        settings.model_dump(mode="json", include={"source", "classes", "seed"}),
        {"listing": str(listing)},
    )
    previous = read_manifest(folder)
    if previous is not None and previous.fingerprint == expected and (folder / "clips.parquet").is_file():
        context.log.info(
            f"vegas_clips: clip table unchanged ({len(table)} clips); keeping {folder / 'clips.parquet'}"
        )
        return result_from(previous, reused=True)

    write_parquet_atomic(folder / "clips.parquet", table)
    per_class = table.groupby("class_name").size().rename("clips").reset_index()
    failed = table[table.status != "ok"]
    durations = table.duration.dropna()
    metadata = {
        "clips": len(table),
        "clips_ok": int((table.status == "ok").sum()),
        "clips_failed": len(failed),
        "per_class": markdown_table(per_class),
        "failed_by_reason": markdown_table(failed.groupby("reason").size().rename("clips").reset_index()),
        "mean_duration_s": round(float(durations.mean()), 2) if len(durations) else math.nan,
        "source_kind": source.kind,
        "seconds": timer.seconds,
        "table_path": str(folder / "clips.parquet"),
    }
    manifest = write_manifest(
        folder,
        expected,
        settings=settings.model_dump(mode="json", include={"source", "classes", "seed"}),
        inputs={"listing": str(listing)},
        files=[folder / "clips.parquet"],
        metadata=metadata,
    )
    return result_from(manifest)
