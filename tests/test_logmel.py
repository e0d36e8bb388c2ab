"""log_mel: shape, bands, loudness, tone placement, agreement with Kaldi's fbank."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchaudio.compliance.kaldi import fbank, get_mel_banks

from pipelines.media.logmel import LOG_FLOOR, log_mel

SR = 16000


def white_noise(segments: int, level: float = 0.1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((segments, SR)) * level).astype(np.float32)


def tone(hz: float, level: float = 0.5) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(SR) / SR)).astype(np.float32)[None]


def mel_centres_hz() -> np.ndarray:
    _banks, centres = get_mel_banks(128, 1024, float(SR), 20.0, 0.0, 100.0, -500.0, 1.0)
    return centres.numpy()


def test_shape_dtype_finite() -> None:
    mel = log_mel(white_noise(3))
    assert mel.shape == (3, 100, 128)
    assert mel.dtype == np.float32
    assert np.isfinite(mel).all()


def test_no_mel_band_is_empty_or_constant_on_white_noise() -> None:
    mel = log_mel(white_noise(2))
    per_band_mean = mel.mean(axis=(0, 1))
    per_band_std = mel.std(axis=(0, 1))
    assert (per_band_mean > np.log(LOG_FLOOR) + 5).all(), np.argmin(per_band_mean)
    assert (per_band_std > 0.1).all(), np.argmin(per_band_std)


def test_louder_input_gives_higher_values() -> None:
    quiet = white_noise(1, level=0.05)
    difference = log_mel(2 * quiet) - log_mel(quiet)
    # power scales by 4 everywhere above the floor: log 4 in every cell
    np.testing.assert_allclose(difference, np.log(4.0), atol=1e-3)


@pytest.mark.parametrize("hz", [250.0, 1000.0, 3000.0, 6500.0])
def test_pure_tone_lands_in_its_mel_band(hz: float) -> None:
    mel = log_mel(tone(hz))[0]  # (100, 128)
    loudest_band = np.argmax(mel.mean(axis=0))
    nearest_band = np.argmin(np.abs(mel_centres_hz() - hz))
    assert abs(int(loudest_band) - int(nearest_band)) <= 1
    # and it stands out: far above the bands an octave away
    assert mel.mean(axis=0)[loudest_band] > mel.mean(axis=0)[np.argmin(np.abs(mel_centres_hz() - hz / 2))] + 5


def test_segments_are_independent_and_batched_alike() -> None:
    audio = white_noise(4, seed=3)
    together = log_mel(audio)
    alone = np.stack([log_mel(audio[k : k + 1])[0] for k in range(4)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)


def test_digital_silence_sits_on_the_floor() -> None:
    mel = log_mel(np.zeros((1, SR), np.float32))
    np.testing.assert_allclose(mel, np.log(LOG_FLOOR), rtol=1e-6)


def test_matches_kaldi_fbank_at_kaldis_fft_size() -> None:
    # Same framing, window, DC removal, power and mel banks as Kaldi without preemphasis; at Kaldi's
    # 512-point FFT one band is empty (Kaldi floors it at float eps), which is why log_mel uses 1024.
    audio = white_noise(2, seed=5)
    ours = log_mel(audio, n_fft=512)
    for k in range(2):
        kaldi = fbank(
            torch.from_numpy(audio[k : k + 1]),
            frame_length=25,
            frame_shift=10,
            window_type="hamming",
            num_mel_bins=128,
            dither=0.0,
            snip_edges=False,
            preemphasis_coefficient=0.0,
            sample_frequency=SR,
        ).numpy()
        empty_bands = (kaldi < -15).all(axis=0)
        assert empty_bands.sum() == 1
        np.testing.assert_allclose(ours[k][:, ~empty_bands], kaldi[:, ~empty_bands], atol=2e-4)


def test_rejects_audio_not_cut_into_seconds() -> None:
    with pytest.raises(ValueError, match=r"\(K, 16000\)"):
        log_mel(np.zeros(16000, np.float32))
    with pytest.raises(ValueError):
        log_mel(np.zeros((2, 8000), np.float32))
