"""What a data set holds, for others to compare or fetch the same: the videos used and the coverage.

`used_videos` lists every video that gave a segment to a split: class, video id, where it came from, the
section of it that was used and its split (`used_videos.csv` beside `splits.parquet`). A YouTube video's
id and section are its manifest row's; a local VEGAS file's id is its file name and the section its whole
length; an `s2i_data` video's id is the authors' (`c002_s00417`) and the section spans its windows.
`coverage` sets what was asked beside what was obtained, per class, and against the paper's numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

PAPER_SEGMENTS = 48945 + 5575 + 6825  # the paper's train + val + test (Table 1)
USED_VIDEO_COLUMNS = ["class_name", "video_id", "source", "start_seconds", "end_seconds", "split", "segments"]


def used_videos(
    splits: pd.DataFrame, clips: pd.DataFrame, manifest_rows: Sequence | None = None
) -> pd.DataFrame:
    """One row per (video, split) of `splits`, with the video's id and the section of it that was used.

    `clips` is the clip table (clip_id, source, duration, ...); `manifest_rows` the youtube source's rows
    (`ManifestRow`s: clip_id, ytid, url, start, end) when the clips were downloaded.
    """
    per_video = (
        splits.groupby(["class_name", "clip_id", "split"], sort=True)
        .segment.agg(["size", "min", "max"])
        .reset_index()
    )
    clip_info = clips.set_index("clip_id")
    by_clip = {row.clip_id: row for row in manifest_rows or []}
    rows = []
    for video in per_video.itertuples(index=False):
        source = str(clip_info.source.get(video.clip_id, ""))
        if video.clip_id in by_clip:  # downloaded: the manifest's video and section
            row = by_clip[video.clip_id]
            video_id, start, end = row.ytid or row.url, float(row.start), float(row.end)
        elif source.startswith("s2i_data:"):  # the authors' windows are whole seconds of their video
            video_id, start, end = video.clip_id, float(video.min), float(video.max + 1)
        else:  # a local file: used from its start, for its length
            duration = clip_info.duration.get(video.clip_id, float("nan"))
            video_id, start, end = source.rsplit("/", 1)[-1].rsplit(".", 1)[0], 0.0, float(duration)
        rows.append((video.class_name, video_id, source, start, end, video.split, int(video.size)))
    return pd.DataFrame(rows, columns=USED_VIDEO_COLUMNS)


def coverage(
    clips: pd.DataFrame, segments: pd.DataFrame, splits: pd.DataFrame, classes: Iterable[str]
) -> pd.DataFrame:
    """Per class: clips asked for, obtained, failed and not tried; usable segments; segments in the splits."""
    rows = []
    for name in classes:
        own = clips[clips.class_name == name]
        rows.append(
            {
                "class_name": name,
                "clips_asked": len(own),
                "clips_obtained": int((own.status == "ok").sum()),
                "clips_failed": int((own.status == "failed").sum()),
                "clips_not_tried": int((own.status == "skipped").sum()),
                "usable_segments": int((segments.class_name == name).sum()),
                "segments_in_splits": int((splits.class_name == name).sum()),
            }
        )
    return pd.DataFrame(rows)


def coverage_summary(table: pd.DataFrame) -> dict:
    """Totals of a `coverage` table beside the paper's 61,345 segments (plain JSON values)."""
    total = int(table.segments_in_splits.sum())
    return {
        "clips_asked": int(table.clips_asked.sum()),
        "clips_obtained": int(table.clips_obtained.sum()),
        "usable_segments": int(table.usable_segments.sum()),
        "segments_in_splits": total,
        "paper_segments": PAPER_SEGMENTS,
        "share_of_paper_segments": round(total / PAPER_SEGMENTS, 4),
    }
