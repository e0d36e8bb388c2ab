"""The used-videos list of each kind of source, and the coverage table."""

from __future__ import annotations

import pandas as pd

from pipelines.data.coverage import coverage, coverage_summary, used_videos
from pipelines.data.manifest import ManifestRow


def test_used_videos_name_each_source_kind_and_section():
    splits = pd.DataFrame(
        [
            ("yt1_00004000", "dog", 0, "train"),
            ("yt1_00004000", "dog", 1, "train"),
            ("c002_s00417", "dog", 3, "test"),
            ("c002_s00417", "dog", 5, "test"),
            ("dog-video_00012", "dog", 2, "val"),
        ],
        columns=["clip_id", "class_name", "segment", "split"],
    )
    clips = pd.DataFrame(
        [
            ("yt1_00004000", "https://www.youtube.com/watch?v=yt1", 6.0, "ok"),
            (
                "c002_s00417",
                "s2i_data:batches/audio_visual/spectrograms_to_images/test_batch_001.bin",
                2.0,
                "ok",
            ),
            ("dog-video_00012", "dog/videos/video_00012.mp4", 9.5, "ok"),
        ],
        columns=["clip_id", "source", "duration", "status"],
    )
    row = ManifestRow(2, "dog", "https://www.youtube.com/watch?v=yt1", "yt1", 4.0, 10.0, "yt1_00004000")
    used = used_videos(splits, clips, [row]).set_index("video_id")
    assert used.loc["yt1", ["start_seconds", "end_seconds", "split", "segments"]].tolist() == [
        4.0,
        10.0,
        "train",
        2,
    ]
    assert used.loc["c002_s00417", ["start_seconds", "end_seconds", "split"]].tolist() == [3.0, 6.0, "test"]
    assert used.loc["video_00012", ["start_seconds", "end_seconds", "split"]].tolist() == [0.0, 9.5, "val"]


def test_coverage_counts_what_was_asked_obtained_and_used():
    clips = pd.DataFrame(
        {"clip_id": list("abcd"), "class_name": ["dog"] * 4, "status": ["ok", "ok", "failed", "skipped"]}
    )
    segments = pd.DataFrame({"class_name": ["dog"] * 7})
    splits = pd.DataFrame({"class_name": ["dog"] * 5})
    table = coverage(clips, segments, splits, ["dog", "fireworks"])
    dog = table.set_index("class_name").loc["dog"].to_dict()
    assert dog == {
        "clips_asked": 4,
        "clips_obtained": 2,
        "clips_failed": 1,
        "clips_not_tried": 1,
        "usable_segments": 7,
        "segments_in_splits": 5,
    }
    assert table.set_index("class_name").loc["fireworks"].clips_asked == 0
    summary = coverage_summary(table)
    assert summary["segments_in_splits"] == 5 and summary["paper_segments"] == 61345
