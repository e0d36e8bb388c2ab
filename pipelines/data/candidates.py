"""Candidate images for informativity labelling (paper §5.3), and the balanced labelled set drawn from them.

A candidate is one translation of a validation sound by one generator checkpoint (its *source*). Within a
class every source drawn for it translates the same sounds the same number of times, so each contributes
the same number of candidates: a generator leaves a fingerprint, and a classifier must not learn to tell
sources apart.

Draws only ever grow, and growing one class changes nothing else: a class's sounds come in a fixed seeded
order (`sound_order`: drawing k + m takes the first k and m more), a dim's checkpoints in an order whose
first `checkpoints_per_dim` are the evenly spaced ones (`spread_order`), and each image's MC-dropout
randomness is its own (`candidate_digest` -> `image_seed`), so an image's bytes, its sha256 (which a
person's answers are keyed by) and its `candidate_id` do not depend on what else was drawn. The table's row
order is the labelling order: by candidate_id, a hash of the seed and the provenance, i.e. shuffled with
the profile's seed, and new candidates fall in between the old ones without reordering them.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import math
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

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
)  # and `margin` when the demo's oracle judged them as they were drawn
INFORMATIVE, NON_INFORMATIVE = 1, 0
# Images per generator batch, a fixed shape (s2i_models.translate.generate with seeds): small on a CPU,
# where it is as fast per image and pads less; images differ in their last bits between devices anyway.
CANDIDATE_BATCH = {"cpu": 16}
CANDIDATE_BATCH_DEFAULT = 128

GROWTH_MARGIN = 1.1  # a short class draws 10 % more than its informative rate says it needs
MAX_GROWTH = 4.0  # at most 4x the sounds (or checkpoints) of a class in one round


def candidate_batch(device: str) -> int:
    return CANDIDATE_BATCH.get(device.split(":")[0], CANDIDATE_BATCH_DEFAULT)


def candidate_digest(seed: int, dim: int, epoch: int, clip_id: str, segment: int, sample: int) -> str:
    """sha256 hex of a candidate's provenance and the profile's seed: its id, its seed, its labelling order."""
    return hashlib.sha256(f"{seed}/{dim}/{epoch}/{clip_id}/{int(segment)}/{sample}".encode()).hexdigest()


def candidate_id(digest: str) -> str:
    return f"c{digest[:12]}"


def image_seed(digest: str) -> int:
    """The seed of the candidate's own MC-dropout randomness (60 bits of its digest)."""
    return int(digest[12:27], 16)


def _stable_int(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


def sound_order(keys: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    """Per class, the row indices of its sounds in draw order: a permutation seeded with the seed and the
    class name, of its sounds sorted by (clip_id, segment), so neither the row order of `keys` nor the
    other classes change it. Drawing k sounds of a class takes the first k."""
    orders = {}
    for name, rows in keys.groupby("class_name", sort=True):
        rows = rows.sort_values(["clip_id", "segment"], kind="stable")
        rng = np.random.default_rng([seed, _stable_int(str(name))])
        orders[str(name)] = rows.index.to_numpy()[rng.permutation(len(rows))]
    return orders


def spread_order(count: int, first: int) -> list[int]:
    """Indices 0..count-1 in draw order: the `first` evenly spaced ones (`evenly_spaced`, in order), then
    the others, each the middle of the widest gap left between drawn ones (later gaps first on ties)."""
    base = [(count * (i + 1)) // first - 1 for i in range(first)] if first < count else list(range(count))
    order, edges = list(base), [-1, *base, count]
    gaps = [(-(hi - lo - 1), -lo, hi) for lo, hi in zip(edges, edges[1:], strict=False) if hi - lo > 1]
    heapq.heapify(gaps)
    while gaps:
        _size, lo, hi = heapq.heappop(gaps)
        lo = -lo
        middle = (lo + hi) // 2
        order.append(middle)
        for a, b in ((lo, middle), (middle, hi)):
            if b - a > 1:
                heapq.heappush(gaps, (-(b - a - 1), -a, b))
    return order


@dataclass
class ClassDraw:
    """How much of the pool one class draws: its first `sounds` sounds, by the first `checkpoints` checkpoints
    of each candidate dim (all of a dim that has fewer)."""

    sounds: int
    sounds_available: int
    checkpoints: int
    checkpoints_available: int  # the most checkpoints any candidate dim has
    candidates: int = 0
    expected_pairs: float | None = None  # balanced pairs the draw gives (oracle) or is expected to (person)
    estimate: str = ""
    done: bool = False
    exhausted: bool = False  # short of the target with every sound and checkpoint drawn

    def grow(self, target: int) -> bool:
        """Draw more towards `target` pairs: the next sounds, once all are drawn the next checkpoints, by the
        factor the shortfall asks for (x1.1, at most x4; x2 when no pair yet). False: the pool is exhausted."""
        have = self.expected_pairs or 0.0
        factor = 2.0 if have <= 0 else min(MAX_GROWTH, GROWTH_MARGIN * target / have)
        if self.sounds < self.sounds_available:
            self.sounds = min(self.sounds_available, max(self.sounds + 1, math.ceil(self.sounds * factor)))
            return True
        if self.checkpoints < self.checkpoints_available:
            self.checkpoints = min(
                self.checkpoints_available, max(self.checkpoints + 1, math.ceil(self.checkpoints * factor))
            )
            return True
        return False

    def record(self) -> dict:
        return asdict(self)


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


def balanced_pairs(table: pd.DataFrame) -> int:
    """How many informative + non-informative pairs `balanced_selection` can deal from `table` (class_name,
    source, label; one class) with no target: each source gives min(its informative, its non-informative)."""
    if table.empty:
        return 0
    counts = table.groupby(["source", "label"]).size().unstack(fill_value=0)
    return int(counts.reindex(columns=[INFORMATIVE, NON_INFORMATIVE], fill_value=0).min(axis=1).sum())


def expected_pairs_from_answers(table: pd.DataFrame) -> tuple[float | None, str]:
    """A person's draw: balanced pairs expected once every candidate of the class in `table` (source,
    answer: a label of `answers.LABELS` or None) is labelled, at the rate of the answers so far (pairs per
    answered candidate, skips included; no pair yet counts as half a pair), and how that was estimated.
    None when nothing is answered yet."""
    answered = table[table.answer.notna()]
    if answered.empty:
        return None, "no answers yet: base draw"
    labelled = answered[answered.answer != "skip"]
    pairs = balanced_pairs(labelled.assign(label=(labelled.answer == "informative").astype(int)))
    rate = max(pairs, 0.5) / len(answered)
    return rate * len(table), f"{pairs} pairs in {len(answered)} answers ({rate:.3f} a candidate)"


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
    labelled: pd.DataFrame,
    chosen: pd.DataFrame,
    per_class: int,
    class_names: Sequence[str],
    unlabelled=None,
    exhausted: Collection[str] = (),
) -> dict[str, str]:
    """Per class short of `per_class` balanced pairs, the message that says so and what to do.

    `labelled` are the labelled candidates (class_name, source, label), `chosen` the balanced selection;
    `unlabelled` (optional) maps a class to its candidates still without a label; `exhausted` names the
    classes whose candidates already take every validation sound and checkpoint (only models can help).
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
        if name in exhausted and (left is None or more is None or more > left):
            fix = (
                "pool exhausted: add models (evaluation.candidate_dims, or train the GANs longer for more "
                "checkpoints)" + (f"; {left} unlabelled candidates left cannot reach it" if left else "")
            )
        elif more is not None and (left is None or more <= left):
            fix = f"label {more} more candidates or add models"
        else:
            fix = (
                f"add models (evaluation.candidate_dims, checkpoints_per_dim) or sounds "
                f"(candidate_sounds_per_class): {left if left is not None else 'too few'} unlabelled candidates "
                "left cannot reach it"
            )
        messages[name] = f"class {name}: {reached} of {per_class} informative labels; {fix}"
    return messages
