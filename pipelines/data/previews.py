"""Preview images for the Dagster UI: frames beside their spectrograms, as PNG bytes."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np


def frames_and_spectrograms_png(
    frames: Sequence[np.ndarray], mels: Sequence[np.ndarray], titles: Sequence[str]
) -> bytes:
    """One column per sample: its frame on top, its log-mel (mel up, time right) below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str = "preview") -> str:
    """Markdown that shows a PNG inline (the Dagster UI renders data URIs in markdown metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
