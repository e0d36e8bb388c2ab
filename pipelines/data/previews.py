"""Preview images for the Dagster UI: frames beside their spectrograms, as PNG bytes."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers and workers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def frames_and_spectrograms_png(
    frames: Sequence[np.ndarray], mels: Sequence[np.ndarray], titles: Sequence[str]
) -> bytes:
    """One column per sample: its frame on top, its log-mel (mel up, time right) below."""
    plt = _pyplot()

    count = len(frames)
    figure, axes = plt.subplots(2, count, figsize=(1.9 * count, 3.6), squeeze=False)
    for column, (frame, mel, title) in enumerate(zip(frames, mels, titles, strict=True)):
        axes[0, column].imshow(frame)
        axes[0, column].set_title(title, fontsize=7)
        axes[1, column].imshow(
            np.asarray(mel, dtype=np.float32).T, origin="lower", aspect="auto", cmap="magma"
        )
        for row in (0, 1):
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
    axes[1, 0].set_ylabel("log-mel", fontsize=7)
    figure.tight_layout()
    return _figure_png(figure)


def png_markdown(png: bytes, alt: str = "preview") -> str:
    """Markdown that shows a PNG inline (the Dagster UI renders data URIs in markdown metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _figure_png(figure) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def loss_curves_png(
    epochs: Sequence[int], curves: dict[str, Sequence[float]], title: str, smooth: int = 0
) -> bytes:
    """Loss per epoch, one line per curve; with `smooth` > 1 also its `smooth`-epoch moving average (bold)."""
    plt = _pyplot()

    figure, axis = plt.subplots(figsize=(6, 3.2))
    for name, values in curves.items():
        values = np.asarray(values, dtype=float)
        if smooth > 1 and len(values) >= smooth:
            line = axis.plot(epochs, values, alpha=0.3, linewidth=0.8)[0]
            kernel = np.ones(smooth) / smooth
            averaged = np.convolve(values, kernel, mode="valid")
            axis.plot(
                epochs[smooth - 1 :],
                averaged,
                color=line.get_color(),
                linewidth=1.8,
                label=f"{name} ({smooth}-epoch avg)",
            )
        else:
            axis.plot(epochs, values, marker="." if len(values) < 30 else None, label=name)
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.set_title(title, fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return _figure_png(figure)


def image_grid_png(
    rows: Sequence[Sequence[np.ndarray]], row_titles: Sequence[str], column_titles: Sequence[str]
) -> bytes:
    """A grid of (H, W, 3) uint8 images: one row per sound, e.g. its true frame then generated ones."""
    plt = _pyplot()

    height, width = len(rows), max(len(row) for row in rows)
    figure, axes = plt.subplots(
        height, width, figsize=(1.25 * width + 0.9, 1.25 * height + 0.3), squeeze=False
    )
    for r, row in enumerate(rows):
        for c in range(width):
            axis = axes[r, c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(row):
                axis.imshow(row[c])
            else:
                axis.axis("off")
            if r == 0 and c < len(column_titles):
                axis.set_title(column_titles[c], fontsize=7)
        axes[r, 0].set_ylabel(row_titles[r], fontsize=7, rotation=0, ha="right", va="center")
    figure.tight_layout()
    return _figure_png(figure)


def spectrogram_pairs_png(
    originals: Sequence[np.ndarray], reconstructions: Sequence[np.ndarray], titles: Sequence[str]
) -> bytes:
    """Log-mels (time x mel) above their reconstructions."""
    plt = _pyplot()

    count = len(originals)
    figure, axes = plt.subplots(2, count, figsize=(1.9 * count, 3.4), squeeze=False)
    for c in range(count):
        for r, (mel, label) in enumerate(((originals[c], "input"), (reconstructions[c], "reconstruction"))):
            axes[r, c].imshow(
                np.asarray(mel, dtype=np.float32).T, origin="lower", aspect="auto", cmap="magma"
            )
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if c == 0:
                axes[r, c].set_ylabel(label, fontsize=7)
        axes[0, c].set_title(titles[c], fontsize=7)
    figure.tight_layout()
    return _figure_png(figure)
