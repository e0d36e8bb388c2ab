"""Balanced, video-disjoint train/val/test splits of one-second segments (SPEC §1).

Per class, whole videos are dealt to the splits in a seeded order, each to the split that is furthest
from its target (so every split keeps the same share of surplus), then exactly the configured number
of segments is drawn, seeded, from each split's videos. No video has segments in two splits.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
SPLIT_COLUMNS = ["clip_id", "class_name", "segment", "split"]


class SplitError(ValueError):
    pass


def _class_rng(seed: int, class_name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(class_name.encode())])


def make_splits(segments: pd.DataFrame, sizes: Mapping[str, int], seed: int) -> pd.DataFrame:
    """`segments` has one row per usable segment (`clip_id, class_name, segment`); returns `SPLIT_COLUMNS`.

    Raises SplitError naming the class when it has too few segments (or too few videos) for the sizes.
    """
    needed = {split: int(sizes[split]) for split in SPLITS}
    parts = []
    for class_name in sorted(segments["class_name"].unique()):
        rows = segments[segments["class_name"] == class_name]
        per_video = rows.groupby("clip_id")["segment"].apply(sorted).sort_index()
        rng = _class_rng(seed, class_name)
        order = rng.permutation(len(per_video))

        assigned: dict[str, list[str]] = {split: [] for split in SPLITS}
        counts = dict.fromkeys(SPLITS, 0)
        for index in order:
            clip_id = per_video.index[index]
            # The split with the lowest fill ratio takes the video; ties go to the smaller split.
            split = min(SPLITS, key=lambda s: (counts[s] / needed[s], needed[s]))
            assigned[split].append(clip_id)
            counts[split] += len(per_video.iloc[index])

        short = [s for s in SPLITS if counts[s] < needed[s]]
        if short:
            total = int(sum(counts.values()))
            detail = ", ".join(f"{s} got {counts[s]} of {needed[s]}" for s in SPLITS)
            raise SplitError(
                f"class {class_name!r} is too small: {len(per_video)} videos give {total} usable segments, "
                f"the splits need {sum(needed.values())} ({needed['train']}/{needed['val']}/{needed['test']}) "
                f"with every video in a single split ({detail}). Add clips of this class or lower `splits` "
                "in the profile."
            )

        for split in SPLITS:
            pool = [(clip_id, seg) for clip_id in sorted(assigned[split]) for seg in per_video[clip_id]]
            chosen = sorted(rng.choice(len(pool), size=needed[split], replace=False))
            parts.append(
                pd.DataFrame(
                    [(pool[i][0], class_name, int(pool[i][1]), split) for i in chosen], columns=SPLIT_COLUMNS
                )
            )
    if not parts:
        raise SplitError("there are no usable segments to split: check the skipped-clips table of `segments`")
    return in_split_order(pd.concat(parts, ignore_index=True))


def in_split_order(table: pd.DataFrame) -> pd.DataFrame:
    """A splits table sorted train, val, test, then by class, clip and segment, with a fresh index."""
    table = table.assign(split=pd.Categorical(table["split"], categories=SPLITS, ordered=True))
    table = table.sort_values(["split", "class_name", "clip_id", "segment"], kind="stable").reset_index(
        drop=True
    )
    return table.astype({"split": str, "segment": "int32"})


def split_problems(table: pd.DataFrame, sizes: Mapping[str, int], classes: list[str]) -> list[str]:
    """What is wrong with a split table (empty when it is right): counts per class and disjointness."""
    problems = []
    counts = table.groupby(["class_name", "split"]).size()
    for class_name in classes:
        for split in SPLITS:
            got = int(counts.get((class_name, split), 0))
            if got != sizes[split]:
                problems.append(f"{class_name}/{split}: {got} segments, expected {sizes[split]}")
    splits_per_clip = table.groupby("clip_id")["split"].nunique()
    for clip_id in splits_per_clip[splits_per_clip > 1].index[:20]:
        problems.append(
            f"video {clip_id} has segments in {sorted(table[table.clip_id == clip_id].split.unique())}"
        )
    if table.duplicated(["clip_id", "segment"]).any():
        problems.append("some segments appear twice")
    return problems
