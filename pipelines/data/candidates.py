"""Candidate images for informativity labelling (paper §5.3), and the balanced labelled set drawn from them.

A candidate is one translation of a validation sound by one generator checkpoint (its *source*). Every
source translates the same sounds the same number of times, so each contributes the same number of
candidates: a generator leaves a fingerprint, and a classifier must not learn to tell sources apart.
The table's row order is the labelling order: shuffled with the profile's seed, so a person labelling
from the top sees classes and sources mixed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

CANDIDATES_FOLDER = "informativity_candidates"
COLUMNS = (
    "candidate_id",
    "image",
    "class_name",
    "clip_id",
    "segment",
    "dim",
    "epoch",
    "checkpoint",
    "sample",
    "sha256",
)
INFORMATIVE, NON_INFORMATIVE = 1, 0


def evenly_spaced(items: Sequence[str], count: int) -> list[str]:
    """`count` items spread evenly over `items`, always ending with the last: [.., .., last]."""
    if count >= len(items):
        return list(items)
    return [items[(len(items) * (i + 1)) // count - 1] for i in range(count)]


def sounds_per_class(keys: pd.DataFrame, count: int | None, seed: int) -> np.ndarray:
    """Row indices of up to `count` sounds of each class (seeded choice), in row order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for _, rows in keys.groupby("class_name", sort=True):
        index = rows.index.to_numpy()
        if count is not None and count < len(index):
            index = np.sort(rng.choice(index, size=count, replace=False))
        chosen.append(index)
    return np.sort(np.concatenate(chosen))


def png_bytes(image: np.ndarray) -> bytes:
    """(96, 96, 3) uint8 -> PNG bytes (deterministic: PIL writes no time stamp)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def labelling_order(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(count)


def balanced_selection(table: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """Up to `per_class` informative and as many non-informative rows per class, sources taking turns.

    `table` has columns class_name, source, label (1/0). Per class, n = min(per_class, informative,
    non-informative); each label's n rows are dealt round-robin over the sources (each source's rows in
    seeded order), so every source gives as equal a share as its rows allow. Returns the chosen rows with a
    fresh index, ordered by class, label, then the dealing order.
    """
    rng = np.random.default_rng(seed)
    picks = []
    for _, rows in table.groupby("class_name", sort=True):
        counts = rows["label"].value_counts()
        n = min(per_class, int(counts.get(INFORMATIVE, 0)), int(counts.get(NON_INFORMATIVE, 0)))
        for label in (INFORMATIVE, NON_INFORMATIVE):
            queues = [
                list(rng.permutation(group.index.to_numpy()))
                for _, group in rows[rows["label"] == label].groupby("source", sort=True)
            ]
            dealt: list[int] = []
            while len(dealt) < n:
                for queue in queues:
                    if queue and len(dealt) < n:
                        dealt.append(queue.pop(0))
            picks.extend(dealt)
    return table.loc[picks].reset_index(drop=True)
