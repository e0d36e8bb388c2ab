"""extract_clip on fixture clips made with ffmpeg: segment alignment, central frames, crop, skip reasons."""

from __future__ import annotations

import pickle
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.media.extract import SKIP_REASONS, ClipError, ClipMedia, extract_clip, extract_features
from pipelines.media.ffmpeg_binary import ffmpeg_exe

# Colour of second k: the bits of k + 1 switch red, green, blue on (blue, green, cyan, red, magenta, yellow).
COLOURS = [tuple(255 * ((k + 1) >> bit & 1) for bit in (2, 1, 0)) for k in range(6)]
TONES_HZ = [400 * (k + 1) for k in range(6)]  # tone of second k


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True)


def lavfi_clip(path: Path, video: str | None, audio: str | None, *codec_args: str) -> Path:
    inputs: list[str] = []
    for source in (video, audio):
        if source is not None:
            inputs += ["-f", "lavfi", "-i", source]
    ffmpeg(*inputs, *codec_args, str(path))
    return path


def h264_aac(path: Path, video: str | None, audio: str | None, *extra: str) -> Path:
    codecs = (["-c:v", "libx264", "-pix_fmt", "yuv420p"] if video else []) + (
        ["-c:a", "aac"] if audio else []
    )
    return lavfi_clip(path, video, audio, *codecs, *extra)


def index_clip(path: Path, rate: str, seconds: float) -> Path:
    """Lossless grey clip whose frame n has luma 16 + 2 (n mod 100), with a steady tone."""
    video = f"nullsrc=s=64x48:r={rate}:d={seconds},format=yuv420p,geq=lum='16+2*mod(N,100)':cb=128:cr=128"
    audio = f"sine=f=440:r=16000:d={seconds}"
    return lavfi_clip(path, video, audio, "-c:v", "libx264", "-qp", "0", "-c:a", "aac")


def frame_indices(frames: np.ndarray) -> np.ndarray:
    """Invert index_clip's luma code (limited-range grey -> full-range RGB) to frame numbers mod 100."""
    luma = frames.astype(np.float64).mean(axis=(1, 2, 3)) * 219 / 255 + 16
    return np.rint((luma - 16) / 2).astype(int)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def aligned_clip(clips: Path) -> Path:
    """6 s, 16:9 (320x180) at 25 fps: white side bars, a centred 180x180 square of colour k during second k,
    and a tone of TONES_HZ[k] during second k."""
    bits = "(floor(T)+1)"
    inside = "between(X,70,249)"
    channel = {
        name: f"if({inside},255*gt(bitand({bits},{bit}),0),255)"
        for name, bit in zip("rgb", (4, 2, 1), strict=True)
    }
    video = (
        f"nullsrc=s=320x180:r=25:d=6,format=gbrp,geq=r='{channel['r']}':g='{channel['g']}':b='{channel['b']}'"
    )
    audio = "aevalsrc='0.5*sin(2*PI*400*(floor(t)+1)*t)':s=44100:d=6"
    return h264_aac(clips / "aligned.mp4", video, audio, "-crf", "12")


@pytest.fixture(scope="module")
def aligned(aligned_clip: Path) -> ClipMedia:
    return extract_clip(aligned_clip)


def test_aligned_clip_yields_one_segment_per_whole_second(aligned: ClipMedia) -> None:
    assert aligned.frames.shape == (6, 96, 96, 3) and aligned.frames.dtype == np.uint8
    assert aligned.audio.shape == (6, 16000) and aligned.audio.dtype == np.float32
    assert aligned.duration == pytest.approx(6.0, abs=0.03)


def test_frame_k_is_colour_k_cropped_without_bars(aligned: ClipMedia) -> None:
    for k, frame in enumerate(aligned.frames):
        expected = np.array(COLOURS[k], dtype=float)
        centre = frame[40:56, 40:56].reshape(-1, 3).mean(axis=0)
        assert np.abs(centre - expected).max() < 12, f"segment {k}: centre {centre} != colour {expected}"
        for corner in (frame[0, 0], frame[0, -1], frame[-1, 0], frame[-1, -1], frame[48, 0], frame[48, -1]):
            # a white bar would show as a pixel bright in the channel that colour k has off
            assert np.abs(corner.astype(float) - expected).max() < 60, f"segment {k}: edge pixel {corner}"


def test_audio_k_is_tone_k(aligned: ClipMedia) -> None:
    for k, second in enumerate(aligned.audio):
        middle = second[2000:14000]  # away from the tone switches at the segment's edges
        spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
        peak_hz = np.argmax(spectrum) * 16000 / middle.size
        assert peak_hz == pytest.approx(TONES_HZ[k], abs=5), f"segment {k}"


def test_extract_features_log_mel_peaks_at_tone_k(aligned_clip: Path) -> None:
    from torchaudio.compliance.kaldi import get_mel_banks

    frames, mel = extract_features(aligned_clip)
    assert frames.shape == (6, 96, 96, 3) and mel.shape == (6, 100, 128) and mel.dtype == np.float32
    _banks, centres = get_mel_banks(128, 1024, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    for k in range(6):
        loudest_band = int(np.argmax(mel[k, 20:80].mean(axis=0)))
        nearest_band = int(np.argmin(np.abs(centres.numpy() - TONES_HZ[k])))
        assert abs(loudest_band - nearest_band) <= 1, f"segment {k}: band {loudest_band} != {nearest_band}"


@pytest.mark.parametrize("rate", ["25", "30000/1001"])
def test_central_frame_is_the_one_displayed_at_k_plus_half(clips: Path, rate: str) -> None:
    media = extract_clip(index_clip(clips / f"index-{rate.replace('/', '_')}.mp4", rate, 5))
    fps = Fraction(rate)
    # frame n is displayed on [n / fps, (n + 1) / fps): at k + 0.5 it is floor((k + 0.5) * fps)
    expected = [int((k + Fraction(1, 2)) * fps) % 100 for k in range(5)]
    assert media.frames.shape[0] == 5
    assert frame_indices(media.frames).tolist() == expected


def test_variable_frame_rate_picks_frame_shown_at_k_plus_half(clips: Path) -> None:
    # Frames at irregular times t_n = 0.07 n + 0.02 (n mod 3), then a 2 s pause from frame 20 on (frame 19 is
    # shown at both 1.5 and 2.5 s); Matroska keeps milliseconds. 5 s of audio and more video, so K = 5.
    times_ms = [70 * n + 20 * (n % 3) + 2000 * (n >= 20) for n in range(72)]
    video = (
        "nullsrc=s=64x48:r=25:d=2.88,format=yuv420p,geq=lum='16+2*mod(N,100)':cb=128:cr=128,"
        "settb=1/1000,setpts='(0.07*N+0.02*mod(N,3)+2*gte(N,20))/TB'"
    )
    codecs = ("-fps_mode", "passthrough", "-enc_time_base:v", "1/1000", "-c:v", "ffv1", "-c:a", "pcm_s16le")
    media = extract_clip(lavfi_clip(clips / "vfr.mkv", video, "sine=f=440:r=16000:d=5", *codecs))
    shown = [max(n for n, t in enumerate(times_ms) if t <= 1000 * k + 500) for k in range(5)]
    assert shown[1] == shown[2] == 19
    assert media.frames.shape[0] == 5
    assert frame_indices(media.frames).tolist() == [n % 100 for n in shown]


def test_square_crop_honours_non_square_pixels(clips: Path) -> None:
    # 240x180 stored, pixels 4:3 wide -> shown 320x180: the centred display square is 135 stored columns
    # (52.5-187.5). Red on columns 50-189, white outside: ignoring the pixel shape would crop 180 columns
    # (30-210) and bring white into the frame's edges.
    video = (
        "nullsrc=s=240x180:r=25:d=2,format=gbrp,"
        "geq=r='255':g='if(between(X,50,189),0,255)':b='if(between(X,50,189),0,255)',setsar=4/3"
    )
    media = extract_clip(h264_aac(clips / "anamorphic.mp4", video, "sine=f=440:r=44100:d=2", "-crf", "12"))
    edges = np.concatenate([media.frames[:, :, 0], media.frames[:, :, -1]]).reshape(-1, 3).astype(int)
    assert (edges[:, 0] > 200).all() and (edges[:, 1:] < 60).all(), edges[:, 1:].max()


def test_non_integer_duration_keeps_only_whole_seconds(clips: Path) -> None:
    path = h264_aac(clips / "3.6s.mp4", "testsrc2=s=160x120:r=25:d=3.6", "sine=f=440:r=44100:d=3.6")
    media = extract_clip(path)
    assert media.frames.shape == (3, 96, 96, 3) and media.audio.shape == (3, 16000)
    assert media.duration == pytest.approx(3.6, abs=0.03)


def test_segments_end_with_the_shorter_stream(clips: Path) -> None:
    path = h264_aac(clips / "short-audio.mp4", "testsrc2=s=160x120:r=25:d=5", "sine=f=440:r=44100:d=2.5")
    media = extract_clip(path)
    assert media.frames.shape[0] == 2 and media.audio.shape == (2, 16000)
    assert media.duration == pytest.approx(2.5, abs=0.03)


def test_frame_size_is_configurable(aligned_clip: Path) -> None:
    media = extract_clip(aligned_clip, frame_size=32)
    assert media.frames.shape == (6, 32, 32, 3)


def _reason(path: Path) -> ClipError:
    with pytest.raises(ClipError) as caught:
        extract_clip(path)
    assert caught.value.reason in SKIP_REASONS
    assert str(path) in str(caught.value)
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    assert _reason(tmp_path / "nope.mp4").reason == "missing file"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert _reason(tmp_path / "empty.mp4").reason == "empty file"


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    error = _reason(path)
    assert error.reason in ("unreadable", "not a video")
    assert error.detail  # ffmpeg's words come along


def test_html_page_saved_as_mp4(tmp_path: Path) -> None:
    path = tmp_path / "page.mp4"
    path.write_text(
        "<!DOCTYPE html>\n<html><head><title>Video unavailable</title></head><body></body></html>\n"
    )
    error = _reason(path)
    assert error.reason == "not a video"
    assert "text" in error.detail


def test_video_without_audio(clips: Path) -> None:
    path = h264_aac(clips / "mute.mp4", "testsrc2=s=160x120:r=25:d=2", None)
    assert _reason(path).reason == "no audio stream"


def test_audio_only(clips: Path) -> None:
    path = h264_aac(clips / "sound.m4a", None, "sine=f=440:r=44100:d=2")
    assert _reason(path).reason == "no video stream"


def test_audio_with_cover_art_has_no_video_stream(clips: Path) -> None:
    path = clips / "cover.m4a"
    ffmpeg(
        *("-f", "lavfi", "-i", "sine=r=44100:d=2", "-f", "lavfi", "-i", "color=red:s=64x64:d=1"),
        *("-frames:v", "1", "-map", "0:a", "-map", "1:v", "-c:a", "aac", "-c:v", "png"),
        *("-disposition:v", "attached_pic", str(path)),
    )
    assert _reason(path).reason == "no video stream"


def test_clip_shorter_than_one_second(clips: Path) -> None:
    path = h264_aac(clips / "blip.mp4", "testsrc2=s=160x120:r=25:d=0.6", "sine=f=440:r=44100:d=0.6")
    assert _reason(path).reason == "shorter than 1 s"
    # At 10 fps the last frame of 0.5 s starts before the first central time: no frame comes out at all.
    path = h264_aac(clips / "blip10.mp4", "testsrc2=s=160x120:r=10:d=0.5", "sine=f=440:r=44100:d=0.5")
    assert _reason(path).reason == "shorter than 1 s"


def test_silent_audio(clips: Path) -> None:
    path = h264_aac(
        clips / "silent.mp4", "testsrc2=s=160x120:r=25:d=2", "anullsrc=r=44100:cl=stereo", "-t", "2"
    )
    assert _reason(path).reason == "silent audio"


def test_clip_error_survives_pickling_for_process_pools(tmp_path: Path) -> None:
    error = ClipError(tmp_path / "x.mp4", "no audio stream", "0 video, 1 audio")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.reason, copy.detail) == (error.path, error.reason, error.detail)
    with pytest.raises(ValueError, match="unknown skip reason"):
        ClipError("x.mp4", "bad vibes")
