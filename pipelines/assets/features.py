"""`segments` (frames + log-mels of every usable second) and `spectrogram_stats` (training split only).

pandas and the data libraries are imported inside the assets, so loading the definitions stays fast.
"""

# No `from __future__ import annotations` here: Dagster compares an asset's `context` annotation with
# the class itself, so hints of names imported only for type checking are quoted instead.
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import AssetExecutionContext, MaterializeResult, asset

from pipelines.assets.common import Timer, hold_writer_lock, result_from, reuse, upstream_fingerprint
from pipelines.assets.ingest import S2I_RECORDS
from pipelines.data.artifact_manifest import fingerprint, read_manifest, write_manifest
from pipelines.data.files import write_json_atomic, write_parquet_atomic
from pipelines.data.steps import markdown_table
from pipelines.gpu import CPU_OP_TAGS
from pipelines.profile import S2IDataSource
from pipelines.resources import ArtifactStore, S2IProfile

if TYPE_CHECKING:
    import pandas as pd

SEGMENTS_VERSION = "1"
STATS_VERSION = "1"


def segment_cache_dir(store: ArtifactStore, feature_fingerprint: str) -> Path:
    return store.folder("segments") / "clips" / feature_fingerprint


def _preview(segments: "pd.DataFrame", cache_dir: Path, per_class: int = 2) -> str:
    """Frames beside their log-mels: the middle second of the first `per_class` clips of each class."""
    from pipelines.data.previews import frames_and_spectrograms_png, png_markdown
    from pipelines.data.segments import read_cached

    # The middle of the seconds a clip has (an s2i_data video may lack some windows).
    middles = segments.groupby(["class_name", "clip_id"], sort=True).segment.agg(
        lambda seconds: sorted(seconds)[(len(seconds) - 1) // 2]
    )
    picks = middles.reset_index().groupby("class_name", sort=True).head(per_class)
    frames, mels, titles = [], [], []
    for row in picks.itertuples(index=False):
        clip_frames, clip_mels = read_cached(cache_dir, row.clip_id)
        second = int(row.segment)
        frames.append(clip_frames[second])
        mels.append(clip_mels[second])
        titles.append(f"{row.class_name}\n{row.clip_id.removeprefix(row.class_name + '-')} s{second}")
    return png_markdown(frames_and_spectrograms_png(frames, mels, titles), "frames and log-mels")


def _s2i_data_segments(source: S2IDataSource, store: ArtifactStore, feature_settings: dict, context):
    """The authors' segments, copied from their batch files into the per-clip cache (no extraction)."""
    import pandas as pd

    from pipelines.data.s2i_data import fill_segment_caches, segment_table
    from pipelines.data.segments import SKIPPED_COLUMNS

    records = pd.read_parquet(store.folder("vegas_clips") / S2I_RECORDS)
    # Its own cache folder: the bytes come from the batches, not from ffmpeg and a log-mel.
    cache_dir = segment_cache_dir(
        store, fingerprint(SEGMENTS_VERSION, {**feature_settings, "source_kind": source.kind}, {})
    )
    counts = fill_segment_caches(source.root, records, cache_dir, log=context.log.info)
    return segment_table(records), pd.DataFrame(columns=SKIPPED_COLUMNS), counts, cache_dir


@asset(
    group_name="features",
    code_version=SEGMENTS_VERSION,
    deps=["vegas_clips"],
    kinds={"ffmpeg", "torchaudio"},
    op_tags=CPU_OP_TAGS,  # a pod sized for the extraction pool (Kubernetes)
)
def segments(context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore) -> MaterializeResult:
    """Every usable 1 s segment: central 96x96 frame and 100x128 log-mel, cached per clip on disk."""
    import pandas as pd

    from pipelines.data.segments import ClipJob, extract_segments

    settings = profile.load()
    folder = store.folder("segments")
    feature_settings = settings.model_dump(mode="json", include={"features"})
    inputs = {"vegas_clips": upstream_fingerprint(store, "vegas_clips")}
    expected = fingerprint(SEGMENTS_VERSION, feature_settings, inputs)
    missing = _missing_cache_entries(folder, expected)
    if missing:  # set aside as damaged by a reader, or deleted: extract them again (the rest is cached)
        context.log.warning(
            f"segments: {len(missing)} per-clip cache entries are missing (e.g. {missing[0]}); rebuilding them"
        )
        hold_writer_lock(context, folder)
    elif (cached := reuse(context, folder, expected)) is not None:
        return cached

    timer = Timer()
    clips = pd.read_parquet(store.folder("vegas_clips") / "clips.parquet")
    if isinstance(settings.source, S2IDataSource):
        table, skipped, counts, cache_dir = _s2i_data_segments(
            settings.source, store, feature_settings, context
        )
    else:
        usable = clips[clips.status == "ok"]
        jobs = [ClipJob(r.clip_id, r.class_name, r.path, r.source) for r in usable.itertuples(index=False)]
        cache_dir = segment_cache_dir(store, fingerprint(SEGMENTS_VERSION, feature_settings, {}))
        table, skipped, counts = extract_segments(
            jobs,
            cache_dir,
            workers=settings.workers,
            frame_size=settings.features.frame_size,
            sample_rate=settings.features.sample_rate,
            log=context.log.info,
        )
    ingest_failures = clips[clips.status != "ok"][["clip_id", "class_name", "source", "reason"]].assign(
        detail="", stage="ingest"
    )
    skipped = pd.concat([ingest_failures, skipped.assign(stage="extraction")], ignore_index=True)
    table = table.assign(cache=[f"clips/{cache_dir.name}/{c}.npz" for c in table.clip_id])
    write_parquet_atomic(folder / "segments.parquet", table)
    write_parquet_atomic(folder / "skipped_clips.parquet", skipped)

    by_reason = skipped.groupby(["stage", "reason"]).size().rename("clips").reset_index()
    per_class = table.groupby("class_name").agg(clips=("clip_id", "nunique"), segments=("segment", "size"))
    metadata = {
        **counts,
        "clips_skipped": len(skipped),
        "skipped_by_reason": markdown_table(by_reason),
        "per_class": markdown_table(per_class.reset_index()),
        "seconds": timer.seconds,
        "clips_per_second": round(counts["clips"] / max(timer.seconds, 1e-6), 2),
        "table_path": str(folder / "segments.parquet"),
        "skipped_table_path": str(folder / "skipped_clips.parquet"),
    }
    if len(table):
        metadata["preview"] = _preview(table, cache_dir)
    manifest = write_manifest(
        folder,
        expected,
        settings=feature_settings,
        inputs=inputs,
        files=[folder / "segments.parquet", folder / "skipped_clips.parquet"],
        metadata=metadata,
        cache_dir=str(cache_dir.relative_to(folder)),
    )
    return result_from(manifest)


@asset(group_name="features", code_version=STATS_VERSION, deps=["segments", "splits"], kinds={"numpy"})
def spectrogram_stats(
    context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore
) -> MaterializeResult:
    """Log-mel scaling statistics (global min/max, per-band mean/std) from the training split only."""
    import pandas as pd

    folder = store.folder("spectrogram_stats")
    # s2i_data spectrograms are 8-bit: the fixed range 0..255 is the authors' normalisation, not measured.
    fixed_uint8 = isinstance(profile.load().source, S2IDataSource)
    used = {"method": "uint8"} if fixed_uint8 else {}
    inputs = {key: upstream_fingerprint(store, key) for key in ("segments", "splits")}
    expected = fingerprint(STATS_VERSION, used, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached
    timer = Timer()
    splits = pd.read_parquet(store.folder("splits") / "splits.parquet")
    train = splits[splits.split == "train"]
    if fixed_uint8:
        from pipelines.data.s2i_data import uint8_stats

        context.log.info("spectrogram_stats: s2i_data source, fixed 8-bit range 0..255 (x / 255 * 2 - 1)")
        stats = uint8_stats(len(train))
    else:
        from pipelines.data.segments import iter_segments
        from pipelines.data.stats import spectrogram_stats as compute_stats

        cache_dir = segments_cache_dir(store)
        rebuild = segment_rebuilder(profile.load(), store, cache_dir, log=context.log.info)
        stats = compute_stats(
            mel for _row, _frame, mel in iter_segments(train, cache_dir, rebuild, log=context.log.warning)
        )
        stats["segments"] = len(train)
    write_json_atomic(folder / "stats.json", stats)
    metadata = {
        "train_segments": len(train),
        "method": stats["method"],
        "min": stats["min"],
        "max": stats["max"],
        **({"mean": stats["mean"]} if "mean" in stats else {}),
        "seconds": timer.seconds,
        "stats_path": str(folder / "stats.json"),
    }
    manifest = write_manifest(
        folder, expected, settings=used, inputs=inputs, files=[folder / "stats.json"], metadata=metadata
    )
    return result_from(manifest)


def segment_rebuilder(settings, store: ArtifactStore, cache_dir: Path, log=None):
    """clip_id -> writes that clip's cache entry again (after a reader found it damaged or missing), the
    way `segments` made it: extraction of the clip, or the s2i_data batches it came from."""
    import pandas as pd

    def say(message: str) -> None:
        if log is not None:
            log(message)

    if isinstance(settings.source, S2IDataSource):
        from pipelines.data.s2i_data import fill_segment_caches

        records = pd.read_parquet(store.folder("vegas_clips") / S2I_RECORDS)

        def rebuild_from_batches(clip_id: str) -> None:
            rows = records[records.clip_id == clip_id]
            if rows.empty:
                raise FileNotFoundError(f"clip {clip_id} is not in the s2i_data record index")
            fill_segment_caches(settings.source.root, rows, cache_dir)
            say(f"rebuilt the segment cache entry of {clip_id} from the s2i_data batches")

        return rebuild_from_batches

    from pipelines.data.segments import ClipJob, process_clip

    clips = pd.read_parquet(store.folder("vegas_clips") / "clips.parquet").set_index("clip_id")

    def rebuild_by_extraction(clip_id: str) -> None:
        row = clips.loc[clip_id]
        job = ClipJob(clip_id, row.class_name, row.path, row.source)
        outcome = process_clip(job, cache_dir, settings.features.frame_size, settings.features.sample_rate)
        if outcome.segments == 0:
            raise RuntimeError(
                f"clip {clip_id} gave no segments when its cache entry was rebuilt ({outcome.reason}: "
                f"{outcome.detail}); its source changed since `segments` ran: materialize `segments` again"
            )
        say(f"rebuilt the segment cache entry of {clip_id} by extracting {row.path}")

    return rebuild_by_extraction


def _missing_cache_entries(folder: Path, expected: str) -> list[Path]:
    """The per-clip cache entries that the `segments` table (when it is the one `expected`) needs and that
    are not there, one stat each: a reader moved them aside as damaged, or they were deleted."""
    import pandas as pd

    manifest = read_manifest(folder)
    table_path = folder / "segments.parquet"
    if manifest is None or manifest.fingerprint != expected or not table_path.is_file():
        return []
    try:
        clip_ids = pd.read_parquet(table_path, columns=["clip_id"]).clip_id.unique()
    except (OSError, ValueError):
        return []  # a damaged table: `reuse` checks it against the manifest
    cache_dir = folder / manifest.data["cache_dir"]
    return [path for c in clip_ids if not (path := cache_dir / f"{c}.npz").is_file()]


def segments_cache_dir(store: ArtifactStore) -> Path:
    """The per-clip cache the current `segments` materialization points at."""
    folder = store.folder("segments")
    manifest = read_manifest(folder)
    if manifest is None:
        raise RuntimeError("`segments` has not been materialized: materialize it first.")
    return folder / manifest.data["cache_dir"]
