"""`vegas_clips`: the clip table, from a local VEGAS copy, the synthetic demo, a yt-dlp manifest, or the
authors' released batches (s2i_data). pandas is imported inside the functions that use it."""

import math
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, asset

from pipelines.assets.common import Timer, hold_writer_lock, result_from
from pipelines.data.artifact_manifest import fingerprint, read_manifest, write_manifest
from pipelines.data.files import write_parquet_atomic
from pipelines.data.steps import markdown_table
from pipelines.data.vegas import CLIP_COLUMNS, ClipRecord, scan_local
from pipelines.profile import DemoSource, LocalSource, Profile, S2IDataSource, YoutubeSource
from pipelines.resources import ArtifactStore, S2IProfile

CODE_VERSION = "1"
S2I_RECORDS = "s2i_records.parquet"  # s2i_data only: one row per usable record (where its bytes are)


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
        cookies=source.cookies,
        pause_s=source.pause_s,
        max_bot_checks=source.max_bot_checks,
        log=log,
    )
    if results.stopped_early:
        log(results.stop_message)
    records = []
    for result in results:
        ok = result.path is not None and result.status in ("downloaded", "cached")
        duration = mp4_duration(result.path) if ok else None
        records.append(
            ClipRecord(
                clip_id=result.clip_id,
                class_name=result.class_name,
                path=str(result.path) if ok else "",
                source=result.url,
                duration=float("nan") if duration is None else round(duration, 3),
                # "skipped": not tried, the download stopped early (a later run resumes with it)
                status="ok" if ok else ("skipped" if result.status == "skipped" else "failed"),
                reason="" if ok else f"{result.reason}: {result.detail}".strip(": "),
            )
        )
    return records


def _s2i_data_scan(settings: Profile, source: S2IDataSource, log):
    """Validate the whole clone (nothing is written before this passes) and index its records."""
    from pipelines.data.s2i_data import S2IDataError, scan_s2i_data

    if settings.features.frame_size != 96:
        raise S2IDataError(
            f"the s2i_data source holds 96x96 images; features.frame_size is {settings.features.frame_size}: "
            "set it to 96 in the profile."
        )
    scan = scan_s2i_data(source.root, settings.class_names)
    for item in scan.skipped:
        log(f"skipped {item.relative} ({item.reason}): {item.message}")
    log(
        f"s2i_data {source.root}: {len(scan.batches)} batch files, {len(scan.records)} segments of "
        f"{scan.records.clip_id.nunique()} videos; {len(scan.skipped)} batch files skipped"
    )
    return scan


def _s2i_data_metadata(scan, folder: Path) -> dict:
    """Counts per split and class beside the paper's, completeness, and the skipped batch files."""
    import pandas as pd

    from pipelines.data.s2i_data import PAPER_SEGMENTS_PER_CLASS

    summary = scan.summary()
    counts = scan.counts()
    per_class = counts.pivot(index="class_name", columns="split", values="found")[["train", "val", "test"]]
    per_class = per_class.rename(columns=lambda split: f"{split} (paper {PAPER_SEGMENTS_PER_CLASS[split]:,})")
    skipped = pd.DataFrame(
        [(item.relative, item.reason, item.message) for item in scan.skipped],
        columns=["file", "reason", "detail"],
    )
    metadata = {
        **{f"{split}_segments": summary["found_segments"][split] for split in summary["found_segments"]},
        "found_segments": summary["found_segments"],
        "expected_segments": summary["expected_segments"],
        "complete": summary["complete"],
        "per_class_segments": markdown_table(per_class.reindex(scan.classes).reset_index()),
        "batch_files": summary["batch_files"],
        "batch_files_skipped": summary["batch_files_skipped"],
        "skipped_batches_by_reason": summary["skipped_by_reason"],
        "skipped_batches": markdown_table(skipped),
        "videos_in_several_splits": summary["videos_in_several_splits"],
        "duplicate_segments_dropped": summary["duplicate_segments_dropped"],
        "records_of_other_classes": summary["records_of_other_classes"],
        "records_path": str(folder / S2I_RECORDS),
    }
    if "partial_clone" in summary:
        metadata["partial_clone"] = summary["partial_clone"]
    return metadata


@asset(group_name="ingest", code_version=CODE_VERSION, kinds={"python", "parquet"})
def vegas_clips(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore
) -> MaterializeResult:
    """The clip table: one row per video (clip_id, class_name, path, source, duration, status, reason)."""
    import pandas as pd

    settings = profile.load()
    folder = store.folder("vegas_clips")
    hold_writer_lock(context, folder)  # it does not call `reuse`, which takes the lock for the others
    timer = Timer()
    source = settings.source
    scan, extra_inputs = None, {}
    if isinstance(source, DemoSource):
        records = _demo_clips(settings, source, folder, context.log.info)
    elif isinstance(source, LocalSource):
        records = scan_local(source.root, settings.class_names)
    elif isinstance(source, YoutubeSource):
        records = _youtube_clips(settings, source, folder, context.log.info)
    elif isinstance(source, S2IDataSource):
        from pipelines.data.s2i_data import batches_listing, clip_records

        scan = _s2i_data_scan(settings, source, context.log.info)
        records = clip_records(scan)
        # The clip table misses what lies in each file; the files' names, sizes and mtimes cover it.
        extra_inputs["batches"] = batches_listing(scan)
    else:  # pragma: no cover - the profile's validation admits no other kind
        raise ValueError(f"unknown source kind {source!r}")

    table = pd.DataFrame([r.row() for r in records], columns=CLIP_COLUMNS)
    # The table itself is the input fingerprint: listing, sizes and durations.
    listing = pd.util.hash_pandas_object(table, index=False).sum() if len(table) else 0
    inputs = {"listing": str(listing), **extra_inputs}
    expected = fingerprint(
        CODE_VERSION, settings.model_dump(mode="json", include={"source", "classes", "seed"}), inputs
    )
    outputs = [folder / "clips.parquet"] + ([folder / S2I_RECORDS] if scan is not None else [])
    previous = read_manifest(folder)
    if previous is not None and previous.fingerprint == expected and all(p.is_file() for p in outputs):
        context.log.info(
            f"vegas_clips: clip table unchanged ({len(table)} clips); keeping {folder / 'clips.parquet'}"
        )
        return result_from(previous, reused=True)

    if scan is not None:
        write_parquet_atomic(folder / S2I_RECORDS, scan.records)
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
    if scan is not None:
        metadata.update(_s2i_data_metadata(scan, folder))
    manifest = write_manifest(
        folder,
        expected,
        settings=settings.model_dump(mode="json", include={"source", "classes", "seed"}),
        inputs=inputs,
        files=outputs,
        metadata=metadata,
    )
    return result_from(manifest)
