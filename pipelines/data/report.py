"""The `s2i_report` library: figures like the paper's Figures 7-10, the summary table, the report folder.

Plain matplotlib/pandas/numpy (no Dagster, no torch). Informativity values come in as shares in [0, 1]
(see `s2i_models.evaluation`) and are drawn and tabulated as percentages. Every figure is saved at a fixed
dpi without PNG metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.files import atomic_open, write_json_atomic
from pipelines.data.previews import _pyplot, image_grid_png
from s2i_models.evaluation import AVERAGE

DPI = 100
MISSING = "–"  # en dash: how the table shows a value that does not exist (yet)
_FIGURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ---------------------------------------------------------------------------------------------- inputs

SUMMARY_KEYS = ("window_average", "max_moving_average", "baseline")


def read_evaluations(
    data_dir: Path, dims: Iterable[int]
) -> tuple[dict[int, dict], dict[int, pd.DataFrame], dict[int, pd.DataFrame], dict[int, str]]:
    """(summaries, informativity histories, GAN pixel-loss histories, problems) of the evaluated dims.

    A dim whose `informativity_{dim}` files are missing, unreadable or incomplete is left out and named in
    `problems` with what to do, so the report renders the rest. A missing GAN history only drops Figure 8.
    """
    summaries, histories, pixel_losses, problems = {}, {}, {}, {}
    for dim in dims:
        folder = data_dir / f"informativity_{dim}"
        try:
            summary = json.loads((folder / "summary.json").read_text())
            history = pd.read_parquet(folder / "history.parquet")
            missing = [key for key in SUMMARY_KEYS if not isinstance(summary.get(key), dict)]
            if missing or not {"epoch", "class_name", "informativity"} <= set(history.columns):
                raise ValueError(f"incomplete (no {', '.join(missing) or 'history columns'})")
        except (OSError, ValueError) as error:
            problems[dim] = (
                f"informativity_{dim} cannot be read ({type(error).__name__}: {str(error)[:120]}); "
                f"re-materialize informativity_{dim}"
            )
            continue
        summaries[dim], histories[dim] = summary, history
        gan_history = data_dir / f"gan_{dim}" / "history.parquet"
        try:
            pixel_losses[dim] = pd.read_parquet(gan_history, columns=["epoch", "pixel_loss"])
        except (OSError, ValueError, KeyError):
            pass  # not trained through the asset (or its history is gone): no Figure 8 line for it
    return summaries, histories, pixel_losses, problems


# ---------------------------------------------------------------------------------------------- helpers


def _png(figure) -> bytes:
    """PNG bytes of `figure` at DPI, then close it. No "Software" tag: the bytes depend on the data only."""
    plt = _pyplot()
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    finally:
        plt.close(figure)
    return buffer.getvalue()


def _finite(value: Any) -> float | None:
    """A plain float, or None for None / NaN / inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _ordered_classes(class_labels: Mapping[str, str], seen: Iterable[str]) -> list[str]:
    """Classes in the labels' order (the profile's), then any the data has but the labels lack, sorted."""
    known = [str(key) for key in class_labels if str(key) != AVERAGE]
    extra = sorted({str(name) for name in seen} - set(known) - {AVERAGE})
    return known + extra


def _label(class_labels: Mapping[str, str], key: str) -> str:
    return str(class_labels.get(key, key))


def _class_colors(classes: Sequence[str]) -> dict[str, Any]:
    """One fixed colour per class, the same in every figure (tab10, then tab20 for many classes)."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(classes)}


def _per_epoch(epochs: Iterable[Any], values: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Finite values by epoch, sorted, several rows of one epoch averaged."""
    frame = pd.DataFrame({"epoch": np.asarray(list(epochs)), "value": np.asarray(list(values), dtype=float)})
    frame = frame[np.isfinite(frame["value"])]
    series = frame.groupby("epoch")["value"].mean().sort_index()
    return series.index.to_numpy(np.int64), series.to_numpy(np.float64)


def moving_average_by_epoch(
    epochs: Iterable[Any], values: Iterable[Any], window_epochs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Trailing moving average over `window_epochs` epochs (not rows), at each epoch that ends a full window.

    The window for epoch e is [e - w + 1, e] with w = min(window_epochs, span of the history), so a history
    shorter than the window still gives (at least) one point: the mean of everything. NaN values and empty
    histories are dropped; returns (epochs, averages), both possibly empty.
    """
    if window_epochs < 1:
        raise ValueError(f"moving_average_by_epoch: window_epochs must be >= 1, got {window_epochs}")
    epochs, values = _per_epoch(epochs, values)
    if len(epochs) == 0:
        return epochs, values
    window = min(int(window_epochs), int(epochs[-1] - epochs[0]) + 1)
    ends = epochs[epochs >= epochs[0] + window - 1]
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    hi = np.searchsorted(epochs, ends, side="right")
    lo = np.searchsorted(epochs, ends - window + 1, side="left")
    return ends, (cumsum[hi] - cumsum[lo]) / (hi - lo)


def final_moving_average(
    history: pd.DataFrame, column: str = "pixel_loss", window_epochs: int = 50
) -> float | None:
    """The last point of `column`'s epoch moving average (the value Figure 8 right shows), or None."""
    if len(history) == 0 or column not in history.columns:
        return None
    _, averages = moving_average_by_epoch(history["epoch"], history[column], window_epochs)
    return float(averages[-1]) if len(averages) else None


def _panel_grid(count: int, columns: int = 3, panel: tuple[float, float] = (4.4, 3.0)):
    """A figure with `count` panels in rows of `columns`; unused axes hidden."""
    plt = _pyplot()
    cols = max(1, min(columns, count))
    rows = math.ceil(count / cols)
    figure, axes = plt.subplots(
        rows, cols, figsize=(panel[0] * cols, panel[1] * rows + 0.9), squeeze=False, dpi=DPI
    )
    flat = list(axes.ravel())
    for axis in flat[count:]:
        axis.set_visible(False)
    return figure, flat[:count]


def _log2_dim_axis(axis, dims: Sequence[int]) -> None:
    """x = embedding dimension on a log2 scale, ticks at exactly the dims (128, 256, ... not 2^7)."""
    axis.set_xscale("log", base=2)
    axis.set_xticks(list(dims))
    axis.set_xticklabels([str(d) for d in dims])
    axis.minorticks_off()
    if len(dims) == 1:  # a single point would get a zero-width axis
        axis.set_xlim(dims[0] / 1.5, dims[0] * 1.5)
    else:
        axis.set_xlim(min(dims) / 1.25, max(dims) * 1.25)
    axis.set_xlabel("audio embedding dimension (log2 scale)")


# ---------------------------------------------------------------------------------------------- figures


def informativity_history_png(
    histories: dict[int, pd.DataFrame],
    class_labels: dict[str, str],
    baselines: dict[int, dict[str, float]] | None = None,
    smooth_epochs: int = 0,
) -> bytes:
    """Figure 7a-e: informativity (%) vs epoch, one panel per dim, one line per class + the class average.

    `histories[dim]` has columns epoch, class_name, informativity (share in [0, 1]). With `smooth_epochs` > 1
    every line is its trailing moving average over that many epochs. `baselines[dim]["average"]` (the
    untrained generator's average informativity) is drawn as a dashed grey line.
    """
    if not histories:
        raise ValueError("informativity_history_png: no histories (expected {dim: DataFrame})")
    plt = _pyplot()
    baselines = baselines or {}
    dims = sorted(histories)
    seen = set().union(*(set(h["class_name"].astype(str)) for h in histories.values() if len(h)))
    classes = _ordered_classes(class_labels, seen)
    colors = _class_colors(classes)
    smooth = int(smooth_epochs) if smooth_epochs and smooth_epochs > 1 else 1

    def line(epochs, values):
        return moving_average_by_epoch(epochs, values, smooth) if smooth > 1 else _per_epoch(epochs, values)

    figure, axes = _panel_grid(len(dims))
    handles: dict[str, Any] = {}
    top = 0.0
    for axis, dim in zip(axes, dims, strict=True):
        history = histories[dim]
        if len(history) == 0:
            axis.text(0.5, 0.5, "no evaluations yet", ha="center", va="center", transform=axis.transAxes)
        else:
            history = history.assign(class_name=history["class_name"].astype(str))
            for name in classes:
                rows = history[history["class_name"] == name]
                if len(rows) == 0:
                    continue
                x, y = line(rows["epoch"], rows["informativity"])
                (handles[name],) = axis.plot(x, 100 * y, color=colors[name], linewidth=1.0, alpha=0.85)
                top = max(top, float(np.max(100 * y, initial=0)))
            # The average is the mean over classes at each epoch, then smoothed (as evaluation.py does it).
            mean = history.groupby("epoch")["informativity"].mean()
            x, y = line(mean.index, mean.to_numpy())
            (handles[AVERAGE],) = axis.plot(x, 100 * y, color="black", linewidth=2.6)
        base = _finite(baselines.get(dim, {}).get(AVERAGE))
        if base is not None:
            handles["baseline"] = axis.axhline(100 * base, color="grey", linestyle="--", linewidth=1.3)
            top = max(top, 100 * base)
        axis.set_title(f"embedding dimension {dim}", fontsize=10)
        axis.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
        axis.set_xlabel("epoch")
        axis.set_ylabel("informativity (%)")
        axis.grid(alpha=0.3)
    for axis in axes:  # one y scale for all panels, so dims compare at a glance
        axis.set_ylim(0, max(5.0, top * 1.1))

    names = [n for n in classes if n in handles]
    labels = [_label(class_labels, n) for n in names]
    order = [handles[n] for n in names]
    if AVERAGE in handles:
        order.append(handles[AVERAGE])
        labels.append("average over classes")
    if "baseline" in handles:
        order.append(handles["baseline"])
        labels.append("untrained generator (average)")
    title = "Informativity of translated test sounds per epoch"
    if smooth > 1:
        title += f" ({smooth}-epoch moving average)"
    figure.suptitle(title, fontsize=12)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    if order:
        figure.legend(order, labels, loc="lower center", ncol=min(len(order), 4), fontsize=9, frameon=False)
    return _png(figure)


def informativity_vs_dim_png(summaries: dict[int, dict], class_labels: dict[str, str]) -> bytes:
    """Figure 7f: informativity (%) vs embedding dimension: per class and average window averages, the
    average's maximum moving average, and the untrained baseline's average. None values are skipped."""
    if not summaries:
        raise ValueError("informativity_vs_dim_png: no summaries (expected {dim: summary})")
    plt = _pyplot()
    dims = sorted(int(d) for d in summaries)
    by_dim = {int(d): s for d, s in summaries.items()}
    seen = set().union(*(set((s.get("window_average") or {}).keys()) for s in by_dim.values()))
    classes = _ordered_classes(class_labels, seen)
    colors = _class_colors(classes)

    def series(section: str, key: str) -> tuple[list[int], list[float]]:
        points = [(d, _finite((by_dim[d].get(section) or {}).get(key))) for d in dims]
        kept = [(d, 100 * v) for d, v in points if v is not None]
        return [d for d, _ in kept], [v for _, v in kept]

    figure, axis = plt.subplots(figsize=(7.5, 4.6), dpi=DPI)
    top = 0.0
    for name in classes:
        x, y = series("window_average", name)
        if x:
            axis.plot(x, y, marker="o", color=colors[name], linewidth=1.1, label=_label(class_labels, name))
            top = max(top, *y)
    styles = (
        ("window_average", "average (window mean)", {"color": "black", "linewidth": 2.6, "marker": "o"}),
        (
            "max_moving_average",
            "average (max moving average)",
            {"color": "black", "linewidth": 1.6, "linestyle": ":", "marker": "s"},
        ),
        ("baseline", "untrained generator (average)", {"color": "grey", "linewidth": 1.4, "linestyle": "--"}),
    )
    for section, label, style in styles:
        x, y = series(section, AVERAGE)
        if x:
            axis.plot(x, y, label=label, **style)
            top = max(top, *y)
    _log2_dim_axis(axis, dims)
    axis.set_ylim(0, max(5.0, top * 1.12))
    axis.set_ylabel("informativity (%)")
    axis.set_title("Informativity vs audio embedding dimension", fontsize=11)
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    figure.tight_layout()
    return _png(figure)


def pixel_loss_png(histories: dict[int, pd.DataFrame], window_epochs: int = 50) -> bytes:
    """Figure 8 left: the training pixel loss's moving average over `window_epochs` epochs, one line per dim.

    A history shorter than the window is averaged over its own length (see `moving_average_by_epoch`).
    """
    if not histories:
        raise ValueError("pixel_loss_png: no histories (expected {dim: DataFrame with epoch, pixel_loss})")
    plt = _pyplot()
    dims = sorted(histories)
    colors = _class_colors([str(d) for d in dims])
    figure, axis = plt.subplots(figsize=(7.5, 4.4), dpi=DPI)
    plotted = False
    for dim in dims:
        history = histories[dim]
        if len(history) == 0 or "pixel_loss" not in history.columns:
            continue
        x, y = moving_average_by_epoch(history["epoch"], history["pixel_loss"], window_epochs)
        if len(x) == 0:
            continue
        # A single point (history of one window) would be invisible as a line.
        axis.plot(
            x, y, color=colors[str(dim)], linewidth=1.6, marker="o" if len(x) == 1 else None, label=str(dim)
        )
        plotted = True
    if not plotted:
        axis.text(0.5, 0.5, "no pixel loss recorded yet", ha="center", va="center", transform=axis.transAxes)
    axis.xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # epochs are whole numbers
    axis.set_xlabel("epoch")
    axis.set_ylabel("pixel loss (MSE, pixels in [-1, 1])")
    axis.set_title(f"Training pixel loss, {window_epochs}-epoch moving average", fontsize=11)
    axis.grid(alpha=0.3)
    if plotted:
        axis.legend(title="embedding dim", fontsize=8, title_fontsize=8)
    figure.tight_layout()
    return _png(figure)


def pixel_loss_vs_dim_png(final_losses: dict[int, float]) -> bytes:
    """Figure 8 right: the final moving-average training pixel loss vs embedding dimension (None skipped)."""
    if not final_losses:
        raise ValueError("pixel_loss_vs_dim_png: no losses (expected {dim: final pixel loss})")
    plt = _pyplot()
    dims = sorted(int(d) for d in final_losses)
    values = {int(d): _finite(v) for d, v in final_losses.items()}
    x = [d for d in dims if values[d] is not None]
    figure, axis = plt.subplots(figsize=(6.0, 4.2), dpi=DPI)
    if x:
        axis.plot(x, [values[d] for d in x], marker="o", color="tab:blue", linewidth=1.8)
    else:
        axis.text(0.5, 0.5, "no pixel loss recorded yet", ha="center", va="center", transform=axis.transAxes)
    _log2_dim_axis(axis, dims)
    axis.set_ylabel("final pixel loss (MSE, moving average)")
    axis.set_title("Training pixel loss vs audio embedding dimension", fontsize=11)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def translations_png(
    true_frames: list[np.ndarray],
    translations: list[list[np.ndarray]],
    title: str,
    row_titles: Sequence[str] | None = None,
) -> bytes:
    """Figures 9/10 for one class: per test sound (row) its true frame, then its translations (MC dropout).

    Frames are (H, W, 3) uint8. The grid is `previews.image_grid_png`; the title goes in a band above it,
    pasted pixel for pixel (no resampling of the images).
    """
    if not true_frames:
        raise ValueError("translations_png: no test sounds")
    if len(true_frames) != len(translations):
        raise ValueError(
            f"translations_png: {len(true_frames)} true frames but {len(translations)} lists of translations; "
            "need one list per true frame"
        )
    if row_titles is not None and len(row_titles) != len(true_frames):
        raise ValueError(f"translations_png: {len(row_titles)} row titles for {len(true_frames)} rows")
    plt = _pyplot()
    from matplotlib import image as mpimg

    rows = [
        [np.asarray(frame), *(np.asarray(t) for t in samples)]
        for frame, samples in zip(true_frames, translations, strict=True)
    ]
    count = max(len(samples) for samples in translations)
    column_titles = ["true frame", *(f"translation {i + 1}" for i in range(count))]
    titles = list(row_titles) if row_titles is not None else [f"sound {i + 1}" for i in range(len(rows))]
    grid = mpimg.imread(io.BytesIO(image_grid_png(rows, titles, column_titles)), format="png")

    height, width = grid.shape[:2]
    band = 34  # pixels for the title
    figure = plt.figure(figsize=(width / DPI, (height + band) / DPI), dpi=DPI)
    figure.figimage(grid, xo=0, yo=0, origin="upper")
    figure.text(0.5, 1 - (band / 2) / (height + band), title, ha="center", va="center", fontsize=11)
    return _png(figure)


# ---------------------------------------------------------------------------------------------- table


def _percent(value: Any) -> str:
    value = _finite(value)
    return MISSING if value is None else f"{100 * value:.1f}"


def _loss(value: Any) -> str:
    value = _finite(value)
    return MISSING if value is None else f"{value:.4g}"


def summary_table(
    summary: dict, class_labels: Mapping[str, str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """The summary table as plain strings: (header, rows), one row per dim (ascending). Not escaped."""
    classes_in_summary = {str(k): str(v) for k, v in (summary.get("classes") or {}).items()}
    labels = {**classes_in_summary, **{str(k): str(v) for k, v in (class_labels or {}).items()}}
    dims = summary.get("dims") or {}
    seen = (
        set().union(*(set((d.get("window_average") or {}).keys()) for d in dims.values())) if dims else set()
    )
    classes = _ordered_classes(labels, seen)
    window = summary.get("window")
    window_text = f" {window[0]}-{window[1]}" if window and len(window) == 2 else ""
    ma = summary.get("moving_average_epochs", 50)
    header = [
        "dim",
        *(f"{_label(labels, c)} (%)" for c in classes),
        f"average (%, epochs{window_text})",
        f"max {ma}-epoch moving average (average, %)",
        "untrained baseline (average, %)",
        "other classes' sounds (average, %)",
        "final pixel loss",
    ]
    best = summary.get("best_dim")
    rows = []
    for key in sorted(dims, key=lambda k: int(k)):
        entry = dims[key] or {}
        window_average = entry.get("window_average") or {}
        dim_text = f"{int(key)} (best)" if best is not None and int(best) == int(key) else str(int(key))
        rows.append(
            [
                dim_text,
                *(_percent(window_average.get(c)) for c in classes),
                _percent(window_average.get(AVERAGE)),
                _percent((entry.get("max_moving_average") or {}).get(AVERAGE)),
                _percent((entry.get("baseline") or {}).get(AVERAGE)),
                _percent((entry.get("cross_class") or {}).get(AVERAGE)),
                _loss(entry.get("final_pixel_loss")),
            ]
        )
    return header, rows


def _markdown_cell(text: str) -> str:
    # Escape HTML too: report.md is also shown as markdown metadata, where raw tags would render.
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def summary_table_markdown(summary: dict, class_labels: dict[str, str]) -> str:
    """The summary as a markdown table: one row per dim, informativity in % (1 decimal), "–" where missing."""
    header, rows = summary_table(summary, class_labels)
    lines = [
        "| " + " | ".join(_markdown_cell(c) for c in header) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_table_html(summary: dict, class_labels: Mapping[str, str] | None = None) -> str:
    """The same table as HTML, every cell escaped."""
    header, rows = summary_table(summary, class_labels)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


# ---------------------------------------------------------------------------------------------- folder


def json_safe(value: Any) -> Any:
    """A copy with NaN/inf as None, numpy scalars/arrays as Python values, tuples as lists, keys as str."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        items = (
            value.tolist()
            if isinstance(value, np.ndarray)
            else (sorted(value) if isinstance(value, set) else value)
        )
        return [json_safe(v) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _write_text(path: Path, text: str) -> None:
    with atomic_open(path) as stream:
        stream.write(text.encode("utf-8"))


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
.meta { color: #555; }
"""


def _heading(name: str) -> str:
    """`figure7_informativity_vs_dim` -> `Figure 7: informativity vs dim`."""
    text = re.sub(r"^figure(\d+)_", r"Figure \1: ", name)
    return text.replace("_", " ").replace("-", " ")


def write_report(
    folder: Path, figures: dict[str, bytes], summary: dict, table_markdown: str, title: str
) -> list[Path]:
    """Write the report folder: `<name>.png` per figure, summary.json, report.md and index.html.

    Every file is written atomically; index.html is self-contained apart from the PNGs beside it (relative
    links), with every string from the data HTML-escaped. Returns the paths written, index.html last.
    """
    folder = Path(folder)
    for name in figures:
        if not _FIGURE_NAME.match(name) or name in {"summary", "report", "index"}:
            raise ValueError(
                f"write_report: figure name {name!r} must be a plain file stem (letters, digits, _ . -) "
                "and not summary/report/index"
            )
    written: list[Path] = []
    for name, png in figures.items():
        path = folder / f"{name}.png"
        with atomic_open(path) as stream:
            stream.write(png)
        written.append(path)

    safe = json_safe(summary)
    json.dumps(safe, allow_nan=False)  # fail here, not in a reader, if something non-finite slipped through
    summary_path = folder / "summary.json"
    write_json_atomic(summary_path, safe)
    written.append(summary_path)

    markdown = [f"# {_markdown_cell(title)}", "", table_markdown.rstrip("\n"), ""]
    if safe.get("notes"):
        markdown += ["## Missing or partial", "", *(f"- {_markdown_cell(str(n))}" for n in safe["notes"]), ""]
    for name in figures:
        markdown += [f"## {_heading(name)}", "", f"![{name}]({name}.png)", ""]
    markdown_path = folder / "report.md"
    _write_text(markdown_path, "\n".join(markdown))
    written.append(markdown_path)

    meta = []
    if safe.get("profile") is not None:
        meta.append(f"profile <b>{html.escape(str(safe['profile']))}</b>")
    window = safe.get("window")
    if window and len(window) == 2:
        meta.append(f"average over epochs {html.escape(str(window[0]))}–{html.escape(str(window[1]))}")
    data = safe.get("data") or {}
    if data.get("segments_in_splits") is not None and data.get("paper_segments"):
        meta.append(
            f"data: {int(data['segments_in_splits']):,} one-second segments, "
            f"{100 * data['segments_in_splits'] / data['paper_segments']:.1f} % of the paper's "
            f"{int(data['paper_segments']):,}"
            + (
                f" ({int(data['clips_obtained']):,} of {int(data['clips_asked']):,} clips obtained)"
                if data.get("clips_asked")
                else ""
            )
        )
    if safe.get("best_dim") is not None:
        meta.append(f"best dimension <b>{html.escape(str(safe['best_dim']))}</b>")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if meta:
        parts.append(f'<p class="meta">{"; ".join(meta)}</p>')
    parts += ["<h2>Summary</h2>", summary_table_html(safe, safe.get("classes"))]
    if safe.get("notes"):
        parts += ["<h2>Missing or partial</h2>", "<ul>"]
        parts += [f"<li>{html.escape(str(note))}</li>" for note in safe["notes"]]
        parts.append("</ul>")
    for name in figures:
        file = html.escape(f"{name}.png")
        parts += [
            f"<h2>{html.escape(_heading(name))}</h2>",
            f'<p><img src="{file}" alt="{html.escape(name)}"></p>',
        ]
    parts += ["</body>", "</html>", ""]
    index_path = folder / "index.html"
    _write_text(index_path, "\n".join(parts))
    written.append(index_path)
    return written
