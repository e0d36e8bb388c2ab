"""Asset checks. Blocking ones stop downstream assets that would otherwise be built on wrong data.

numpy, pandas and the data libraries are imported inside the checks, so loading the definitions stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from pipelines.assets.features import segments_cache_dir
from pipelines.data.artifact_manifest import read_manifest
from pipelines.profile import S2IDataSource
from pipelines.resources import ArtifactStore, S2IProfile

if TYPE_CHECKING:
    import pandas as pd


@asset_check(asset="segments", blocking=True)
def segments_are_finite_and_shaped(profile: S2IProfile, store: ArtifactStore) -> AssetCheckResult:
    """Every cached frame is (S, S, 3) uint8 and every log-mel (100, 128) with no NaN or inf."""
    import numpy as np
    import pandas as pd

    from pipelines.data.segments import read_cached

    size = profile.load().features.frame_size
    table = pd.read_parquet(store.folder("segments") / "segments.parquet")
    cache_dir = segments_cache_dir(store)
    problems = []
    # A clip's cache holds one entry per second up to its last (an s2i_data video may lack some windows).
    counts = table.groupby("clip_id", sort=False).segment.max() + 1
    for clip_id, expected in counts.items():
        frames, mels = read_cached(cache_dir, str(clip_id))
        if frames.shape != (expected, size, size, 3) or frames.dtype != np.uint8:
            problems.append(
                f"{clip_id}: frames {frames.shape} {frames.dtype}, expected ({expected}, {size}, {size}, 3) uint8"
            )
        if mels.shape != (expected, 100, 128):
            problems.append(f"{clip_id}: log-mels {mels.shape}, expected ({expected}, 100, 128)")
        elif not np.isfinite(mels).all():
            problems.append(f"{clip_id}: log-mel has NaN or inf")
    return AssetCheckResult(
        passed=not problems,
        metadata={"clips_checked": len(counts), "problems": problems[:20]},
        description="; ".join(problems[:5]) or None,
    )


@asset_check(asset="splits", blocking=True)
def split_counts_exact(profile: S2IProfile, store: ArtifactStore) -> AssetCheckResult:
    """Each class has exactly the profile's segment count in each split (s2i_data: the authors' split, whole)."""
    import pandas as pd

    from pipelines.data.splits import split_problems

    settings = profile.load()
    table = pd.read_parquet(store.folder("splits") / "splits.parquet")
    if isinstance(settings.source, S2IDataSource):
        return _authors_split_kept(settings.class_names, table, store)
    sizes = dict(settings.splits.items())
    problems = [p for p in split_problems(table, sizes, settings.class_names) if "video" not in p]
    return AssetCheckResult(passed=not problems, metadata={"expected": sizes, "problems": problems[:20]})


def _authors_split_kept(classes: list[str], table: pd.DataFrame, store: ArtifactStore) -> AssetCheckResult:
    """s2i_data: every segment is in the split the authors gave it; the paper's counts are reported."""
    import pandas as pd

    from pipelines.data.s2i_data import PAPER_SEGMENTS_PER_CLASS, split_counts

    segments = pd.read_parquet(store.folder("segments") / "segments.parquet")
    segments = segments[segments.class_name.isin(classes)]
    merged = segments.merge(table, on=["clip_id", "segment"], how="outer", suffixes=("_authors", ""))
    problems = [
        f"{row.clip_id} second {row.segment}: authors' split {row.split_authors}, split table {row.split}"
        for row in merged[merged.split_authors.astype(str) != merged.split.astype(str)].head(20).itertuples()
    ]
    counts = split_counts(table, classes)
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "expected": "the authors' split of every segment",
            "paper_segments_per_class": dict(PAPER_SEGMENTS_PER_CLASS),
            "matches_paper": bool(counts.matches.all()),
            "problems": problems,
        },
    )


@asset_check(asset="splits", blocking=True)
def splits_video_disjoint(profile: S2IProfile, store: ArtifactStore) -> AssetCheckResult:
    """No video has segments in two splits, and no segment appears twice."""
    import pandas as pd

    table = pd.read_parquet(store.folder("splits") / "splits.parquet")
    in_several = int((table.groupby("clip_id").split.nunique() > 1).sum())
    duplicates = int(table.duplicated(["clip_id", "segment"]).sum())
    metadata = {"videos_in_several_splits": in_several, "duplicate_segments": duplicates}
    if isinstance(profile.load().source, S2IDataSource) and duplicates == 0:
        # The authors' split is kept as published: a video in two splits is reported (a warning), and
        # blocks nothing.
        metadata["split_source"] = "authors (s2i_data)"
        return AssetCheckResult(passed=in_several == 0, metadata=metadata, severity=AssetCheckSeverity.WARN)
    return AssetCheckResult(passed=in_several == 0 and duplicates == 0, metadata=metadata)


@asset_check(asset="shards", blocking=True)
def shards_readable(store: ArtifactStore) -> AssetCheckResult:
    """Every shard reads with `webdataset.WebDataset`, and samples per split match the split table."""
    import pandas as pd
    import webdataset as wds

    from pipelines.data.splits import SPLITS

    folder = store.folder("shards")
    table = pd.read_parquet(store.folder("splits") / "splits.parquet")
    manifest = read_manifest(folder)
    problems, counted = [], {}
    for split in SPLITS:
        paths = sorted(str(p) for p in folder.glob(f"{split}-*.tar"))
        count = 0
        try:
            for sample in wds.WebDataset(paths, shardshuffle=False, empty_check=False):
                if not {"mel.npy", "json"} <= set(sample) or not ({"frame.npy", "frame.png"} & set(sample)):
                    problems.append(f"{sample['__url__']}: sample {sample['__key__']} lacks a member")
                count += 1
        except Exception as error:  # any read failure is what this check reports
            problems.append(f"{split}: {type(error).__name__}: {error}")
        counted[split] = count
        expected = int((table.split == split).sum())
        if count != expected:
            problems.append(f"{split}: {count} samples in shards, {expected} in the split table")
    if manifest is not None:
        for name in manifest.files:
            if not (folder / name).is_file():
                problems.append(f"{name} is listed in the manifest but missing")
    return AssetCheckResult(
        passed=not problems,
        metadata={"samples": counted, "problems": problems[:20]},
        severity=AssetCheckSeverity.ERROR,
    )
