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
import math
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
    """Up to `per_class` informative and as many non-informative rows per class, every source giving the same
    number of each label.

    `table` has columns class_name, source, label (1/0). The paper keeps the same number of selected images
    per model for both labels, so that a model's fingerprint (its blur, its artifacts) cannot tell the label:
    per class, a source can give at most k = min(its informative rows, its non-informative rows) of each.
    Sources take turns, each giving one informative and one non-informative row (each label's rows in
    seeded order) while it has a pair left, until `per_class` pairs are chosen or no source has a pair.
    Returns the chosen rows with a fresh index, ordered by class, label, then the dealing order.
    """
    rng = np.random.default_rng(seed)
    picks = []
    for _, rows in table.groupby("class_name", sort=True):
        queues = {label: {} for label in (INFORMATIVE, NON_INFORMATIVE)}
        for source, group in rows.groupby("source", sort=True):
            for label in queues:
                queues[label][source] = list(rng.permutation(np.array(group.index[group["label"] == label])))
        dealt: dict[int, list[int]] = {INFORMATIVE: [], NON_INFORMATIVE: []}
        while len(dealt[INFORMATIVE]) < per_class:
            paired = [s for s in queues[INFORMATIVE] if queues[INFORMATIVE][s] and queues[NON_INFORMATIVE][s]]
            if not paired:
                break
            for source in paired:
                if len(dealt[INFORMATIVE]) == per_class:
                    break
                for label in dealt:
                    dealt[label].append(queues[label][source].pop(0))
        picks.extend(dealt[INFORMATIVE] + dealt[NON_INFORMATIVE])
    return table.loc[picks].reset_index(drop=True)


def label_shortfall(
    labelled: pd.DataFrame, chosen: pd.DataFrame, per_class: int, class_names: Sequence[str], unlabelled=None
) -> dict[str, str]:
    """Per class short of `per_class` balanced pairs, the message that says so and what to do.

    `labelled` are the labelled candidates (class_name, source, label), `chosen` the balanced selection;
    `unlabelled` (optional) maps a class to its candidates still without a label.
    """
    messages = {}
    for name in class_names:
        reached = int(((chosen["class_name"] == name) & (chosen["label"] == INFORMATIVE)).sum())
        if reached >= per_class:
            continue
        rows = labelled[labelled["class_name"] == name]
        # Informative pairs gained per labelled candidate so far: how many more to label, at that rate.
        rate = reached / len(rows) if len(rows) else 0.0
        more = math.ceil((per_class - reached) / rate) if rate > 0 else None
        left = None if unlabelled is None else int(unlabelled.get(name, 0))
        if more is not None and (left is None or more <= left):
            fix = f"label {more} more candidates or add models"
        else:
            fix = (
                f"add models (evaluation.candidate_dims, checkpoints_per_dim) or sounds "
                f"(candidate_sounds_per_class): {left if left is not None else 'too few'} unlabelled candidates "
                "left cannot reach it"
            )
        messages[name] = f"class {name}: {reached} of {per_class} informative labels; {fix}"
    return messages
