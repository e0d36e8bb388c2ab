"""Labelled sets balanced per source model, the shortfall message, and classifier splits by source video."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.data.candidates import balanced_selection, label_shortfall
from s2i_models.train.classifier import grouped_split


def _table(counts: dict[tuple[str, str], tuple[int, int]]) -> pd.DataFrame:
    """Rows per (class, source): (informative, non-informative) counts."""
    rows = []
    for (class_name, source), (informative, non_informative) in counts.items():
        rows += [(class_name, source, 1)] * informative + [(class_name, source, 0)] * non_informative
    return pd.DataFrame(rows, columns=["class_name", "source", "label"])


def test_every_source_gives_as_many_informative_as_non_informative_images():
    # The good model makes mostly informative images, the poor one mostly not: dealt by label alone, the
    # informative half would come from the good model and the other half from the poor one.
    table = _table({("dog", "good"): (40, 5), ("dog", "poor"): (3, 40), ("dog", "mid"): (10, 10)})
    chosen = balanced_selection(table, per_class=100, seed=0)
    per_source = chosen.groupby(["source", "label"]).size().unstack()
    assert (per_source[0] == per_source[1]).all()
    assert per_source[1].to_dict() == {"good": 5, "mid": 10, "poor": 3}  # each source's pairs, no more
    # With a smaller target the sources take turns (good, mid, poor): two full rounds, then good and mid.
    chosen = balanced_selection(table, per_class=8, seed=0)
    assert chosen.groupby(["source", "label"]).size().unstack()[1].to_dict() == {
        "good": 3,
        "mid": 3,
        "poor": 2,
    }
    assert (chosen.label == 1).sum() == (chosen.label == 0).sum() == 8


def test_shortfall_says_how_many_more_to_label_or_to_add_models():
    table = _table({("dog", "a"): (6, 20), ("dog", "b"): (0, 20), ("baby_cry", "a"): (30, 30)})
    chosen = balanced_selection(table, per_class=20, seed=0)
    messages = label_shortfall(table, chosen, 20, ["baby_cry", "dog"], unlabelled={"dog": 500})
    assert set(messages) == {"dog"}
    # 6 pairs from 46 labelled dog candidates: 14 more pairs need about 14 / (6 / 46) = 108 more labels.
    assert messages["dog"] == "class dog: 6 of 20 informative labels; label 108 more candidates or add models"
    short = label_shortfall(table, chosen, 20, ["dog"], unlabelled={"dog": 10})
    assert "add models" in short["dog"] and "10 unlabelled candidates left cannot reach it" in short["dog"]


def test_grouped_split_keeps_each_video_on_one_side():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"video{i}" for i in range(40)], 5)  # 5 translations a video
    labels = rng.integers(0, 2, len(groups))
    train, test = grouped_split(labels, groups, 0.8, seed=3)
    assert len(train) + len(test) == len(labels) and not set(train) & set(test)
    assert not set(groups[train]) & set(groups[test])
    for value in (0, 1):  # close to 20 % of each label held out
        share = (labels[test] == value).sum() / (labels == value).sum()
        assert 0.1 < share <= 0.25
    again = grouped_split(labels, groups, 0.8, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, test), strict=True))
    with pytest.raises(ValueError, match="one source video"):
        grouped_split(labels[:5], groups[:5], 0.8, seed=0)
