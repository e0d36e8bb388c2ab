"""Informativity summaries (paper §5.4.1; SPEC §5): plain numpy/pandas, no torch.

Informativity of a translator at an evaluated epoch = share of its translations of test sounds that the
class's binary classifier calls informative. A history is a table with columns `epoch` (int), `class_name`
(str) and `informativity` (float in [0, 1]), one row per (class, evaluated epoch); evaluated epochs are the
saved checkpoints' epochs (every epoch, or every 5 or 50).

The paper reports two summaries: the average from epoch 500 to 4000 and the maximum 50-epoch moving average.
Before either, it "omitted the informativity data from the two epochs immediately after the discriminator
update ... Instead, we relied on the average of the previous five epochs" (`replace_after_discriminator_updates`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

COLUMNS = ("epoch", "class_name", "informativity")
AVERAGE = "average"  # key of the mean over classes in every summary


def _check_history(history: pd.DataFrame) -> pd.DataFrame:
    """Validate a history and return a copy sorted by (class_name, epoch) with a fresh index."""
    missing = [c for c in COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(
            f"informativity history: missing column(s) {missing}; expected columns {list(COLUMNS)}, "
            f"got {list(history.columns)}"
        )
    out = history.copy()
    out["epoch"] = out["epoch"].astype(np.int64)
    out["class_name"] = out["class_name"].astype(str)
    out["informativity"] = out["informativity"].astype(np.float64)
    if (out["class_name"] == AVERAGE).any():
        raise ValueError(
            f"informativity history: {AVERAGE!r} is reserved for the mean over classes; rename it"
        )
    values = out["informativity"].to_numpy()
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        row = out[bad].iloc[0]
        raise ValueError(
            f"informativity history: informativity must be a finite share in [0, 1]; got {row['informativity']!r} "
            f"for class {row['class_name']!r} at epoch {row['epoch']}"
        )
    dup = out.duplicated(["class_name", "epoch"])
    if dup.any():
        row = out[dup].iloc[0]
        raise ValueError(
            f"informativity history: class {row['class_name']!r} has more than one row for epoch {row['epoch']}; "
            "keep one evaluation per (class, epoch)"
        )
    return out.sort_values(["class_name", "epoch"], kind="stable").reset_index(drop=True)


def discriminator_update_epochs(epochs: int, discriminator_every: int, unit: str = "epoch") -> list[int]:
    """1-based epochs (of `epochs`) at whose end the discriminator was updated.

    unit "epoch": D is updated every `discriminator_every`-th epoch (5, 10, ...). unit "step": D updates
    happen inside every epoch, so no epoch follows one specially and the after-update rule does not apply: [].
    """
    if epochs < 0 or discriminator_every < 1:
        raise ValueError(
            f"discriminator_update_epochs: need epochs >= 0 and discriminator_every >= 1, "
            f"got epochs={epochs}, discriminator_every={discriminator_every}"
        )
    if unit == "step":
        return []
    if unit != "epoch":
        raise ValueError(f"discriminator_update_epochs: unit must be 'epoch' or 'step', got {unit!r}")
    return list(range(discriminator_every, epochs + 1, discriminator_every))


def _after_update_mask(epochs: np.ndarray, update_epochs: Sequence[int], after: int) -> np.ndarray:
    """True where u < epoch <= u + after for some update epoch u."""
    mask = np.zeros(len(epochs), dtype=bool)
    updates = np.unique(np.asarray(list(update_epochs), dtype=np.int64))
    if len(updates) == 0 or after <= 0:
        return mask
    # The latest update strictly before each epoch decides (a later update cannot be "before" it).
    idx = np.searchsorted(updates, epochs, side="left") - 1
    has_update = idx >= 0
    mask[has_update] = epochs[has_update] - updates[idx[has_update]] <= after
    return mask


def replace_after_discriminator_updates(
    history: pd.DataFrame, update_epochs: Sequence[int], after: int = 2, window: int = 5
) -> pd.DataFrame:
    """Replace each class's evaluations in the `after` epochs following a D update by an earlier average.

    An evaluated epoch e is affected when u < e <= u + after for some update epoch u (the update epoch u
    itself is not). Its value becomes the mean of the original values at the (up to) `window` evaluated
    epochs before e that are not affected themselves. "Previous five epochs" in the paper is read as the five
    evaluations before e (not before u), skipping affected ones, so a replaced value never feeds another.
    If no earlier unaffected evaluation exists, the value is kept and `replaced` stays False.

    Returns a copy sorted by (class_name, epoch) with a boolean column `replaced`; input order does not
    matter and classes are handled independently.
    """
    if after < 0 or window < 1:
        raise ValueError(
            f"replace_after_discriminator_updates: need after >= 0, window >= 1; got {after}, {window}"
        )
    out = _check_history(history)
    values = out["informativity"].to_numpy(copy=True)
    replaced = np.zeros(len(out), dtype=bool)
    for _, rows in out.groupby("class_name", sort=False):
        index = rows.index.to_numpy()  # positions: `out` has a fresh RangeIndex
        original = rows["informativity"].to_numpy()
        affected = _after_update_mask(rows["epoch"].to_numpy(), update_epochs, after)
        for i in np.flatnonzero(affected):
            earlier = np.flatnonzero(~affected[:i])[-window:]
            if len(earlier):
                values[index[i]] = original[earlier].mean()
                replaced[index[i]] = True
    out["informativity"] = values
    out["replaced"] = replaced
    return out


def _class_mean_per_epoch(history: pd.DataFrame) -> pd.Series:
    """Mean over the classes evaluated at each epoch, indexed by epoch (sorted)."""
    return history.groupby("epoch")["informativity"].mean().sort_index()


def average_over_window(history: pd.DataFrame, start: int, end: int) -> pd.Series:
    """Per class mean over start <= epoch <= end, plus AVERAGE = mean over those epochs of the class mean.

    A class (or the whole table) with no evaluation in the window gets NaN.
    """
    history = _check_history(history)
    inside = history[(history["epoch"] >= start) & (history["epoch"] <= end)]
    classes = sorted(history["class_name"].unique())
    per_class = inside.groupby("class_name")["informativity"].mean().reindex(classes)
    class_mean = _class_mean_per_epoch(inside)
    average = float(class_mean.mean()) if len(class_mean) else math.nan
    return pd.concat([per_class.astype(np.float64), pd.Series({AVERAGE: average})])


def _max_moving_average(epochs: np.ndarray, values: np.ndarray, window_epochs: int) -> float:
    """Max over full windows [e - window_epochs + 1, e] (e an evaluated epoch) of the mean of the values in it.

    A window is full once e >= first epoch + window_epochs - 1; with no full window, the mean of all values.
    """
    if len(values) == 0:
        return math.nan
    ends = epochs[epochs >= epochs[0] + window_epochs - 1]
    if len(ends) == 0:
        return float(values.mean())
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    hi = np.searchsorted(epochs, ends, side="right")
    lo = np.searchsorted(epochs, ends - window_epochs + 1, side="left")
    return float(((cumsum[hi] - cumsum[lo]) / (hi - lo)).max())


def max_moving_average(history: pd.DataFrame, window_epochs: int = 50) -> pd.Series:
    """Per class, the maximum over time of the moving average over `window_epochs` epochs.

    Windows are measured in epochs, not rows: with a checkpoint every 5 epochs a 50-epoch window holds 10
    evaluations. Only full windows count; a history shorter than one window gets the mean of all its values.
    AVERAGE is the same statistic on the per-epoch mean over classes.
    """
    if window_epochs < 1:
        raise ValueError(f"max_moving_average: window_epochs must be >= 1, got {window_epochs}")
    history = _check_history(history)
    result: dict[str, float] = {}
    for name, rows in history.groupby("class_name", sort=True):
        result[str(name)] = _max_moving_average(
            rows["epoch"].to_numpy(), rows["informativity"].to_numpy(), window_epochs
        )
    class_mean = _class_mean_per_epoch(history)
    result[AVERAGE] = _max_moving_average(
        class_mean.index.to_numpy(np.int64), class_mean.to_numpy(np.float64), window_epochs
    )
    return pd.Series(result, dtype=np.float64)


def window_mean(history: pd.DataFrame, column: str, window: tuple[int, int]) -> dict[str, float | None]:
    """Per class mean of `column` over start <= epoch <= end, plus AVERAGE (mean over epochs of the class
    mean); None where the window holds no evaluation. For extra columns such as the cross-class control."""
    inside = history[history["epoch"].between(*window)]
    if inside.empty:
        return {**{str(name): None for name in history["class_name"].unique()}, AVERAGE: None}
    per_class = inside.groupby("class_name")[column].mean()
    average = float(inside.groupby("epoch")[column].mean().mean())
    return {**{str(k): float(v) for k, v in per_class.items()}, AVERAGE: average}


def _json_floats(series: pd.Series) -> dict[str, float | None]:
    """Plain-float dict; NaN (an empty window) becomes None so strict JSON writers accept it."""
    return {str(k): (None if math.isnan(v) else float(v)) for k, v in series.items()}


def summarize(
    history: pd.DataFrame,
    *,
    update_epochs: Sequence[int],
    window: tuple[int, int] = (500, 4000),
    moving_average_epochs: int = 50,
) -> dict[str, Any]:
    """The paper's two summaries, computed after the after-D-update replacement.

    Returns {"per_epoch": DataFrame (after replacement, with `replaced`), "window_average": {class: v, ...,
    "average": v}, "max_moving_average": {...}, "window": [start, end], "replaced_epochs": [epochs where any
    class was replaced]}. Everything but "per_epoch" is JSON-ready (plain floats; NaN -> None).
    """
    start, end = int(window[0]), int(window[1])
    per_epoch = replace_after_discriminator_updates(history, update_epochs)
    return {
        "per_epoch": per_epoch,
        "window_average": _json_floats(average_over_window(per_epoch, start, end)),
        "max_moving_average": _json_floats(max_moving_average(per_epoch, moving_average_epochs)),
        "window": [start, end],
        "replaced_epochs": sorted(int(e) for e in per_epoch.loc[per_epoch["replaced"], "epoch"].unique()),
    }
