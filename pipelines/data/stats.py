"""Spectrogram scaling statistics, from the training split only, and the scaling they define.

Network inputs live in [-1, 1] (SPEC §2). `scale_mel` maps the training split's global [min, max] of the
log-mel onto [-1, 1]; values of other splits outside that range are clipped. Per-band means and standard
deviations are kept too, for users who prefer standardisation.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

STATS_VERSION = 1


def spectrogram_stats(mels: Iterable[np.ndarray]) -> dict:
    """Statistics of an iterable of (100, 128) log-mels, accumulated in float64."""
    count = 0
    band_sum = band_sq = None
    low, high = np.inf, -np.inf
    for mel in mels:
        mel = np.asarray(mel, dtype=np.float64)
        if band_sum is None:
            band_sum = np.zeros(mel.shape[-1])
            band_sq = np.zeros(mel.shape[-1])
        band_sum += mel.sum(axis=0)
        band_sq += (mel**2).sum(axis=0)
        count += mel.shape[0]
        low, high = min(low, float(mel.min())), max(high, float(mel.max()))
    if not count:
        raise ValueError("no spectrograms to compute statistics from: the training split is empty")
    mean = band_sum / count
    std = np.sqrt(np.maximum(band_sq / count - mean**2, 0.0))
    return {
        "version": STATS_VERSION,
        "method": "minmax",
        "min": low,
        "max": high,
        "mean": float(mean.mean()),
        "band_mean": [round(float(v), 6) for v in mean],
        "band_std": [round(float(v), 6) for v in std],
        "frames": int(count),
    }


def scale_mel(mel: np.ndarray, stats: dict) -> np.ndarray:
    """Map log-mel values to [-1, 1] with the training split's range (float32)."""
    low, high = stats["min"], stats["max"]
    scaled = 2.0 * (np.asarray(mel, dtype=np.float32) - low) / max(high - low, 1e-6) - 1.0
    return np.clip(scaled, -1.0, 1.0)
