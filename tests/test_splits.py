import numpy as np
import pandas as pd
import pytest

from pipelines.data.splits import SPLITS, SplitError, make_splits, split_problems


def synthetic_segments(
    videos_per_class: int = 30, classes=("dog", "fireworks"), seed: int = 0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for class_name in classes:
        for video in range(videos_per_class):
            for segment in range(int(rng.integers(1, 11))):  # 1..10 usable seconds, like VEGAS clips
                rows.append((f"{class_name}-video_{video:05d}", class_name, segment))
    return pd.DataFrame(rows, columns=["clip_id", "class_name", "segment"])


SIZES = {"train": 60, "val": 12, "test": 15}


def test_exact_counts_and_video_disjoint():
    segments = synthetic_segments()
    table = make_splits(segments, SIZES, seed=7)
    counts = table.groupby(["class_name", "split"]).size()
    for class_name in ("dog", "fireworks"):
        for split in SPLITS:
            assert counts[(class_name, split)] == SIZES[split]
    assert (table.groupby("clip_id").split.nunique() == 1).all()
    assert not table.duplicated(["clip_id", "segment"]).any()
    assert split_problems(table, SIZES, ["dog", "fireworks"]) == []
    # Every chosen segment exists in the input.
    merged = table.merge(segments, on=["clip_id", "class_name", "segment"], how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_seeded_and_deterministic():
    segments = synthetic_segments()
    first = make_splits(segments, SIZES, seed=7)
    again = make_splits(
        segments.sample(frac=1.0, random_state=3), SIZES, seed=7
    )  # input order must not matter
    other = make_splits(segments, SIZES, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_too_small_class_is_named():
    segments = synthetic_segments(videos_per_class=30, classes=("dog",))
    small = synthetic_segments(videos_per_class=4, classes=("fireworks",))
    with pytest.raises(
        SplitError, match=r"class 'fireworks' is too small: 4 videos give \d+ usable segments"
    ):
        make_splits(pd.concat([segments, small]), SIZES, seed=1)


def test_problems_are_reported():
    table = make_splits(synthetic_segments(), SIZES, seed=7)
    broken = table.copy()
    broken.loc[broken.index[0], "split"] = "test"  # moves one segment of a train video into test
    problems = split_problems(broken, SIZES, ["dog", "fireworks"])
    assert any("expected 60" in p for p in problems)
    assert any("has segments in" in p for p in problems)
