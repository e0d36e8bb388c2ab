"""Sound helpers: noise shaping, harmonic tones, per-second loudness and band limiting.

Signals are float numpy arrays at the clip's sample rate. A scene makes its raw sound at any scale;
`set_loudness` then gives second k the RMS level `rms_db(loudness[k])` (-38 to -10 dBFS) under a soft
limiter, and `band_limit` keeps only what the chain's 16 kHz resampling keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

RMS_DB_AT_SILENT, RMS_DB_AT_LOUD = -38.0, -10.0  # per-second RMS for loudness 0 and 1


def rms_db(loudness: float) -> float:
    """The RMS level in dBFS that a second of the given loudness in [0, 1] gets."""
    return RMS_DB_AT_SILENT + (RMS_DB_AT_LOUD - RMS_DB_AT_SILENT) * loudness


def shaped_noise(
    rng: np.random.Generator, n: int, sample_rate: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """White noise filtered in the frequency domain by `gain(frequencies_hz)`, scaled to unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1.0 / sample_rate)
    out = np.fft.irfft(spectrum * gain(frequencies), n)
    return out / (np.sqrt(np.mean(out * out)) + 1e-12)


def ramp_envelope(n: int, attack: int, release: int) -> np.ndarray:
    """Ones, with a linear fade-in over `attack` samples and a fade-out over `release` samples."""
    envelope = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    if attack:
        envelope[:attack] = np.linspace(0.0, 1.0, attack, endpoint=False)
    if release:
        envelope[n - release :] = np.linspace(1.0, 0.0, release)
    return envelope


def mix_in(track: np.ndarray, start: int, signal: np.ndarray) -> None:
    """Mix `signal` into `track` from sample `start`, cutting what falls outside."""
    if start >= len(track):
        return
    end = min(len(track), start + len(signal))
    track[start:end] += signal[: end - start]


def harmonic_tone(
    f0: np.ndarray, sample_rate: int, amplitudes: Callable[[int, np.ndarray], np.ndarray], max_harmonic: int
) -> np.ndarray:
    """Sum of harmonics of a time-varying fundamental `f0` (Hz per sample), each below 0.45 x sample rate."""
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    out = np.zeros_like(f0)
    for harmonic in range(1, max_harmonic + 1):
        audible = harmonic * f0 < 0.45 * sample_rate
        if not audible.any():
            break
        out += np.sin(harmonic * phase) * amplitudes(harmonic, harmonic * f0) * audible
    return out


def _per_second_rms(signal: np.ndarray, sample_rate: int, n_seconds: int) -> np.ndarray:
    return np.array(
        [
            np.sqrt(np.mean(signal[k * sample_rate : (k + 1) * sample_rate] ** 2) + 1e-20)
            for k in range(n_seconds)
        ]
    )


def _smooth_steps(gains: np.ndarray, sample_rate: int, n: int) -> np.ndarray:
    """One gain per second -> one per sample, steps smoothed over 10 ms so that they do not click."""
    curve = np.repeat(gains, sample_rate)[:n]
    width = max(1, sample_rate // 100)
    padded = np.concatenate([np.full(width, curve[0]), curve, np.full(width, curve[-1])])
    cumulative = np.concatenate([[0.0], np.cumsum(padded)])
    smooth = (cumulative[width:] - cumulative[:-width]) / width  # moving average over `width` samples
    start = width - width // 2  # centre the window on each sample
    return smooth[start : start + n]


def set_loudness(raw: np.ndarray, sample_rate: int, loudness: Sequence[float]) -> np.ndarray:
    """Scale each second of `raw` so that its RMS is `rms_db(loudness[k])`, under a soft limiter (tanh)."""
    n, n_seconds = len(raw), len(loudness)
    target = 10 ** (np.array([rms_db(value) for value in loudness]) / 20)
    rms = _per_second_rms(raw, sample_rate, n_seconds)
    floor = 0.25 * float(np.mean(rms[: max(1, n // sample_rate)]))  # a near-silent tail second stays quiet
    gains = target / np.maximum(rms, floor)
    out = np.tanh(raw * _smooth_steps(gains, sample_rate, n))
    for _ in range(3):  # the limiter takes level off loud bangs: give it back, at most +6 dB
        measured = _per_second_rms(out, sample_rate, n_seconds)
        gains *= np.clip(target / measured, 1.0, 2.0)
        out = np.tanh(raw * _smooth_steps(gains, sample_rate, n))
    return out


def band_limit(signal: np.ndarray, sample_rate: int, cutoff_hz: float = 7000.0) -> np.ndarray:
    """Remove content above `cutoff_hz` (cosine taper over 800 Hz): every clip then holds the same sound
    whatever its sample rate, and the chain's 16 kHz resampling keeps all of it."""
    spectrum = np.fft.rfft(signal)
    frequencies = np.fft.rfftfreq(len(signal), 1.0 / sample_rate)
    taper = np.clip((cutoff_hz + 800.0 - frequencies) / 800.0, 0.0, 1.0)
    return np.fft.irfft(spectrum * (0.5 - 0.5 * np.cos(np.pi * taper)), len(signal))
