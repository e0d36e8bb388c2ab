"""Log-mel spectrograms of one-second segments (SPEC §2): (K, 16000) float32 -> (K, 100, 128) float32.

25 ms Hamming frames every 10 ms, power spectrum, 128 triangular mel bands, natural log with a 1e-6 floor.
This is Kaldi's filterbank as `torchaudio.compliance.kaldi.fbank(frame_length=25, frame_shift=10,
window_type='hamming', num_mel_bins=128, dither=0, snip_edges=False)` computes it (DESIGN §8), rewritten to
take all K segments of a clip in one batch of tensor operations instead of K calls. Where Kaldi's defaults
add something the paper does not describe, the choice made here:

- preemphasis: off (Kaldi 0.97). The paper computes the spectrum of the windowed signal; preemphasis would
  tilt every spectrogram towards high frequencies.
- remove_dc_offset: kept (each frame minus its mean, Kaldi's default). It only removes energy below ~40 Hz,
  where a microphone's DC bias would otherwise leak through the window into the lowest bands.
- FFT size: 1024 (each 400-sample frame zero-padded), not Kaldi's next power of two, 512. At 512 points
  (31 Hz bins) one of the 128 bands (band 3) falls between two bins and is all-zero, a constant band;
  at 1024 every band holds at least one bin. Zero-padding samples the same windowed spectrum more finely:
  it adds no information and changes no band's meaning. The bands' summed weights still vary by up to
  ~20 % between neighbours below 300 Hz, a fixed gain per band that the per-band scaling statistics absorb.
- low_freq: 20 Hz (Kaldi's default), high_freq: Nyquist. Bands are triangles on Kaldi's (HTK) mel scale,
  1127 ln(1 + f / 700).
- Waveform scale: float samples in [-1, 1] as ffmpeg decodes them, not Kaldi's 16-bit integer range. With
  the 1e-6 floor the log spans about 100 dB below a full-scale tone (a full-scale tone's band reaches ~+9),
  the whole range of 16-bit audio; only digital silence sits on the floor (log 1e-6 = -13.8).
- Edges: each segment is framed on its own (segments are independent training samples); as with
  snip_edges=False, frame m is centred on sample 160 m + 80 and the 120 samples missing at either end are
  the segment's own edge samples mirrored (Kaldi's [2, 1, 0, 0, 1, 2] reflection).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np

FRAME_MS = 25.0
HOP_MS = 10.0
N_MELS = 128
LOW_FREQ_HZ = 20.0
LOG_FLOOR = 1e-6


def _frame_sizes(sample_rate: int) -> tuple[int, int, int]:
    """(frame length, hop, FFT size) in samples: 400, 160, 1024 at 16 kHz."""
    frame_length = int(round(sample_rate * FRAME_MS / 1000))
    hop = int(round(sample_rate * HOP_MS / 1000))
    n_fft = 2 * (1 << (frame_length - 1).bit_length())  # twice Kaldi's power of two: no empty band
    return frame_length, hop, n_fft


@cache
def _mel_matrix(sample_rate: int, n_fft: int):
    """(n_fft // 2 + 1, N_MELS) triangular weights, Kaldi's mel banks plus a zero row for the Nyquist bin."""
    import torch
    from torchaudio.compliance.kaldi import get_mel_banks

    banks, _centres = get_mel_banks(N_MELS, n_fft, float(sample_rate), LOW_FREQ_HZ, 0.0, 100.0, -500.0, 1.0)
    banks = torch.nn.functional.pad(banks, (0, 1))  # (N_MELS, n_fft // 2 + 1)
    return banks.T.contiguous().float()


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch single-threaded for the duration of a call, then restore the caller's setting.

    One clip is ~1,000 frames: too little work for intra-op threads to pay off, and with one extraction
    process per core their OpenMP threads contend: measured on 2 busy cores, 100 ms per 10-segment clip
    with 2 threads against 7 ms with one. (Process-wide while it lasts: torch has no per-call setting.)
    """
    import torch

    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def log_mel(audio: np.ndarray, sample_rate: int = 16000, *, n_fft: int | None = None) -> np.ndarray:
    """(K, sample_rate) float32 segments -> (K, 100, 128) float32 log-mel (time x mel), one batch for all K.

    `n_fft` overrides the FFT size (1024 at 16 kHz); tests use 512 to compare with Kaldi's own fbank.
    """
    import torch

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[1] != sample_rate:
        raise ValueError(
            f"log_mel expects one-second segments shaped (K, {sample_rate}), got {audio.shape}; "
            "reshape the audio into whole seconds first (extract_clip does)"
        )
    frame_length, hop, default_n_fft = _frame_sizes(sample_rate)
    n_fft = n_fft or default_n_fft
    n_frames = (sample_rate + hop // 2) // hop  # Kaldi's count without snipped edges: 100 at 16 kHz
    pad = frame_length // 2 - hop // 2

    with torch.no_grad(), _one_torch_thread():
        samples = torch.from_numpy(audio)  # (K, N)
        padded = torch.cat(
            # the edge samples mirrored, the edge sample itself repeated: Kaldi's reflection
            [samples[:, :pad].flip(-1), samples, samples[:, -frame_length:].flip(-1)],
            dim=-1,
        )
        frames = padded.unfold(-1, frame_length, hop)[:, :n_frames]  # (K, 100, 400)
        frames = frames - frames.mean(dim=-1, keepdim=True)  # remove the DC offset of each frame
        window = torch.hamming_window(frame_length, periodic=False, alpha=0.54, beta=0.46)
        power = torch.fft.rfft(frames * window, n=n_fft).abs().pow(2)  # (K, 100, n_fft // 2 + 1)
        mel = power @ _mel_matrix(sample_rate, n_fft)  # (K, 100, 128)
        return mel.clamp_min(LOG_FLOOR).log().numpy().astype(np.float32, copy=False)


__all__ = ["LOG_FLOOR", "N_MELS", "log_mel"]


AUTHORS_RANGE_NATS = 80.0 * np.log(10.0) / 10.0  # 80 dB of power, in natural-log units


def authors_spectrogram(mels: np.ndarray) -> np.ndarray:
    """(K, 100, 128) log-mels -> (K, 100, 128) values on the authors' 8-bit scale (0..255, as float32), for
    their released autoencoders.

    Approximate: the authors published their 8-bit spectrograms but not how they quantised them. Read off
    their images: 0 is silence, the loudest band of a second reaches about 245 and the scale is logarithmic;
    here the 80 dB below a sound's loudest band map linearly onto 0..255. The mel axis is flipped, because
    their images put the highest band in row 0 (the project's layout keeps band 0 lowest). For the paper's
    exact inputs, use the authors' own segments (`source: {kind: s2i_data}`).
    """
    peak = float(np.max(mels)) if mels.size else 0.0
    scaled = (np.asarray(mels, dtype=np.float32) - (peak - AUTHORS_RANGE_NATS)) / AUTHORS_RANGE_NATS * 255.0
    return np.clip(scaled, 0.0, 255.0)[:, :, ::-1].copy()
