"""`splits` (balanced, video-disjoint) and `shards` (WebDataset tars per split).

numpy, pandas and the data libraries are imported inside the assets, so loading the definitions stays fast.
"""

# No `from __future__ import annotations` here: Dagster compares an asset's `context` annotation with
# the class itself, so hints of names imported only for type checking are quoted instead.
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import AssetExecutionContext, MaterializeResult, asset

from pipelines.assets.common import Timer, result_from, reuse, upstream_fingerprint
from pipelines.assets.features import segments_cache_dir
from pipelines.data.artifact_manifest import fingerprint, write_manifest
from pipelines.data.files import write_parquet_atomic
from pipelines.data.progress import Progress
from pipelines.data.steps import markdown_table
from pipelines.gpu import CPU_OP_TAGS
from pipelines.profile import S2IDataSource
from pipelines.resources import ArtifactStore, S2IProfile

if TYPE_CHECKING:
    import pandas as pd

SPLITS_VERSION = "2"
SHARDS_VERSION = "1"


@asset(group_name="dataset", code_version=SPLITS_VERSION, deps=["segments"], kinds={"parquet"})
def splits(context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore) -> MaterializeResult:
    """Train/val/test segments with exact per-class counts; every video in exactly one split."""
    import pandas as pd

    from pipelines.data.splits import SPLITS, make_splits

    settings = profile.load()
    folder = store.folder("splits")
    authors = isinstance(settings.source, S2IDataSource)
    if authors:  # the published split is kept as it is: `splits` sizes and the seed play no part
        used = {**settings.model_dump(mode="json", include={"classes"}), "split": "authors"}
    else:
        used = settings.model_dump(mode="json", include={"splits", "seed", "classes"})
    inputs = {"segments": upstream_fingerprint(store, "segments")}
    expected = fingerprint(SPLITS_VERSION, used, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached
    timer = Timer()
    segments = pd.read_parquet(store.folder("segments") / "segments.parquet")
    segments = segments[segments.class_name.isin(settings.class_names)]
    missing = sorted(set(settings.class_names) - set(segments.class_name))
    if missing:
        raise ValueError(
            f"classes {missing} have no usable segment; check `vegas_clips` and the skipped-clips table of `segments`."
        )
    extra = {}
    if authors:
        from pipelines.data.s2i_data import authors_splits

        context.log.info(
            "splits: s2i_data source, keeping the authors' train/val/test split of every segment; "
            f"the profile's `splits` sizes ({settings.splits.train}/{settings.splits.val}/{settings.splits.test}) "
            "are not used"
        )
        table = authors_splits(segments)
        extra = _authors_split_metadata(table, settings.class_names)
    else:
        table = make_splits(segments, dict(settings.splits.items()), settings.seed)
    write_parquet_atomic(folder / "splits.parquet", table)
    extra.update(_used_videos(settings, store, folder, segments, table))
    counts = table.pivot_table(index="class_name", columns="split", values="segment", aggfunc="size")
    videos = table.groupby("split").clip_id.nunique()
    metadata = {
        "segments": len(table),
        **{f"{split}_segments": int((table.split == split).sum()) for split in SPLITS},
        **{f"{split}_videos": int(videos.get(split, 0)) for split in SPLITS},
        "per_class": markdown_table(counts[list(SPLITS)].reset_index()),
        "seconds": timer.seconds,
        "table_path": str(folder / "splits.parquet"),
        **extra,
    }
    files = [folder / "splits.parquet", folder / "used_videos.csv"]
    manifest = write_manifest(folder, expected, settings=used, inputs=inputs, files=files, metadata=metadata)
    return result_from(manifest)


def _used_videos(settings, store: ArtifactStore, folder: Path, segments, table) -> dict:
    """Writes `used_videos.csv` (what another person needs to compare or fetch the same data) and returns
    the coverage metadata: clips and segments obtained per class, against what was asked and the paper."""
    import pandas as pd

    from pipelines.data.coverage import coverage, coverage_summary, used_videos
    from pipelines.data.files import atomic_output
    from pipelines.profile import YoutubeSource

    clips = pd.read_parquet(store.folder("vegas_clips") / "clips.parquet")
    manifest_rows = None
    if isinstance(settings.source, YoutubeSource):
        from pipelines.data.manifest import read_manifest as read_clip_manifest

        manifest_rows = read_clip_manifest(settings.source.manifest, settings.class_names)
    videos = used_videos(table, clips, manifest_rows)
    with atomic_output(folder / "used_videos.csv") as temp:
        videos.to_csv(temp, index=False)
    per_class = coverage(clips, segments, table, settings.class_names)
    return {
        "coverage": markdown_table(per_class),
        **{f"coverage_{key}": value for key, value in coverage_summary(per_class).items()},
        "used_videos": len(videos),
        "used_videos_path": str(folder / "used_videos.csv"),
    }


def _authors_split_metadata(table: "pd.DataFrame", classes: list[str]) -> dict:
    """Per split and class: the authors' segments beside the paper's counts, and whether they match."""
    from pipelines.data.s2i_data import PAPER_SEGMENTS_PER_CLASS, split_counts, videos_in_several_splits

    counts = split_counts(table, classes)
    complete = bool(counts.matches.all())
    overlap = videos_in_several_splits(table)
    metadata = {
        "split_source": "authors (s2i_data)",
        "per_class_vs_paper": markdown_table(counts),
        "paper_segments_per_class": dict(PAPER_SEGMENTS_PER_CLASS),
        "matches_paper": {
            split: bool(counts[counts.split == split].matches.all()) for split in PAPER_SEGMENTS_PER_CLASS
        },
        "complete": complete,
        "videos_in_several_splits": overlap,
        "video_disjoint": overlap == 0,
    }
    if not complete:
        short = counts[~counts.matches]
        metadata["partial_clone"] = (
            f"{len(short)} of {len(counts)} (class, split) counts differ from the paper's "
            f"(e.g. {short.iloc[0].class_name}/{short.iloc[0].split}: {short.iloc[0].segments} of "
            f"{short.iloc[0].paper}); the split is the authors' for every segment the clone holds. "
            "See `vegas_clips` for the skipped batch files."
        )
    return metadata


def shard_order(table: "pd.DataFrame", seed: int) -> "pd.DataFrame":
    """A split's rows with its videos in seeded order (classes interleaved), each video's seconds together.

    Keeping a video's seconds adjacent means one cache read per video; shuffling videos mixes classes
    within every shard for streaming readers.
    """
    import numpy as np
    import pandas as pd

    clip_ids = np.array(sorted(table.clip_id.unique()))
    order = np.random.default_rng(seed).permutation(len(clip_ids))
    rank = pd.Series(np.arange(len(clip_ids)), index=clip_ids[order])
    return table.assign(_rank=table.clip_id.map(rank)).sort_values(["_rank", "segment"]).drop(columns="_rank")


def _shard_preview(path: Path, count: int = 10) -> str:
    """The first samples of a training shard, read back from the tar as a training loop sees them."""
    from pipelines.data.previews import frames_and_spectrograms_png, png_markdown
    from pipelines.data.shards import load_split

    loaded = load_split([path])
    titles = [
        f"{m['class_name']}\n{m['clip_id'].split('-', 1)[-1]} s{m['segment']}" for m in loaded.meta[:count]
    ]
    png = frames_and_spectrograms_png(loaded.frames[:count], loaded.mels[:count], titles)
    return png_markdown(png, f"first samples of {path.name}")


@asset(
    group_name="dataset",
    code_version=SHARDS_VERSION,
    deps=["splits", "segments"],
    kinds={"webdataset"},
    op_tags=CPU_OP_TAGS,  # a pod sized for reading every segment and writing the tars (Kubernetes)
)
def shards(context: AssetExecutionContext, profile: S2IProfile, store: ArtifactStore) -> MaterializeResult:
    """WebDataset tars `{train,val,test}-NNNNNN.tar`: `.mel.npy` (unscaled float16), `.frame.npy|png`, `.json`."""
    import pandas as pd

    from pipelines.assets.features import segment_rebuilder
    from pipelines.data.filesets import link_current, manifest_fields, new_set, prune_sets
    from pipelines.data.segments import iter_segments
    from pipelines.data.shards import Sample, batched, sample_key, shard_name, write_shard
    from pipelines.data.splits import SPLITS

    settings = profile.load()
    folder = store.folder("shards")
    used = settings.model_dump(mode="json", include={"shards", "seed"})
    inputs = {key: upstream_fingerprint(store, key) for key in ("splits", "segments")}
    expected = fingerprint(SHARDS_VERSION, used, inputs)
    if (cached := reuse(context, folder, expected)) is not None:
        return cached
    timer = Timer()
    table = pd.read_parquet(store.folder("splits") / "splits.parquet")
    sources = pd.read_parquet(store.folder("segments") / "segments.parquet", columns=["clip_id", "source"])
    table = table.merge(sources.drop_duplicates("clip_id"), on="clip_id", how="left")
    cache_dir = segments_cache_dir(store)
    rebuild = segment_rebuilder(settings, store, cache_dir, log=context.log.info)
    # The new set is written beside the current one (which readers may hold) and switched in by the manifest.
    set_dir = new_set(folder, expected)

    progress = Progress(len(table), "writing shards", log=context.log.info, unit="samples")
    written, per_split = [], {}
    for split_index, split in enumerate(SPLITS):
        rows = shard_order(table[table.split == split], settings.seed + split_index)
        samples = (
            Sample(
                key=sample_key(row.clip_id, row.segment),
                mel=mel,
                frame=frame,
                meta={
                    "clip_id": row.clip_id,
                    "class_name": row.class_name,
                    "segment": int(row.segment),
                    "split": split,
                    "source": row.source,
                    "mel_scaled": False,
                },
            )
            for row, frame, mel in iter_segments(rows, cache_dir, rebuild, log=context.log.warning)
        )
        count = 0
        for index, batch in enumerate(batched(samples, settings.shards.samples_per_shard)):
            path = set_dir / shard_name(split, index)
            write_shard(path, batch, settings.shards.frame_format)
            written.append(path)
            count += len(batch)
            progress.advance(len(batch))
        per_split[split] = {"samples": count, "shards": sum(p.name.startswith(split) for p in written)}

    total_bytes = sum(p.stat().st_size for p in written)
    first_train = next((p for p in written if p.name.startswith("train")), None)
    metadata = {
        "samples": len(table),
        **{f"{split}_samples": per_split[split]["samples"] for split in SPLITS},
        "shards": len(written),
        "megabytes": round(total_bytes / 1e6, 2),
        "frame_format": settings.shards.frame_format,
        "seconds": timer.seconds,
        "shards_path": str(folder),
        "shard_set_path": str(set_dir),
    }
    if first_train is not None:
        metadata["preview"] = _shard_preview(first_train)
    manifest = write_manifest(  # the switch to the new set: one atomic rename of manifest.json
        folder,
        expected,
        settings=used,
        inputs=inputs,
        files=written,
        metadata=metadata,
        splits=per_split,
        **manifest_fields(folder, set_dir),
    )
    link_current(folder, set_dir, written, "*.tar")  # `shards/{split}-NNNNNN.tar` for readers that glob them
    prune_sets(folder, log=context.log.info)
    return result_from(manifest)
