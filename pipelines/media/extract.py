"""One ffmpeg process per clip: every segment's central frame (96x96 RGB) and the clip's audio (16 kHz mono).

A clip of D seconds yields K one-second segments, segment k = [k, k+1) s (SPEC §2). Segment k is usable only
if both streams cover [k, k+1); its image is the frame displayed at t = k + 0.5 s, square-centre-cropped and
resized; its sound is the 16,000 samples of [k, k+1). A clip that yields no segment raises `ClipError`,
whose `reason` is one of `SKIP_REASONS` so the clip table can count skips by cause.

The single ffmpeg call decodes each stream once (DESIGN §5, §8) and writes frames, audio and its log to
files in a temporary folder (no pipe to fill up and block it):

    [0:V:0] showinfo -> setpts(-0.5 s) -> fps=1 (round up) -> square centre crop -> scale 96x96 -> rgb24
    [0:a:0] aresample (16 kHz, mono, float, timestamps filled from 0)

- Central frames: after shifting time by -0.5 s, `fps=1:round=up` emits at each whole output second k the
  last input frame with timestamp <= k, i.e. the frame displayed at k + 0.5, for any input rate, constant or
  variable (a frame held across several half-seconds is repeated). `fps=1:start_time=0.5` instead rounds
  0.5 to 1 in its one-second time base and emits the frames at 1, 2, ... 9 s (9 for 10 s). Only the K
  chosen frames reach crop and scale, so beyond decoding the video costs next to nothing.
- Crop: the largest centred square in display geometry (non-square pixels are honoured through the
  stream's sample aspect ratio), then swscale's bicubic down to 96x96, converted to RGB in the same step.
- Video extent: `showinfo` (checksums off) logs every decoded frame's timestamp and duration; the video
  covers up to the last frame's timestamp + duration. It costs ~5 % of the decode.
- Streams are found from ffmpeg's own input listing (no ffprobe exists): an input without a video or audio
  stream makes the filter graph fail at start-up, before any decoding, and the listing says which is missing.
- Threads: one decoder thread and one filter thread by default. Extraction runs one clip per core in a
  process pool, where ffmpeg's frame threads only add CPU time (measured in benchmarks/bench_extract.py).

Time 0 is the start of the earliest stream (ffmpeg's default). A stream that starts a little later is taken
to cover the gap: the first video frame is held from 0, audio is padded with silence (`first_pts=0`).
A stream that ends less than COVERAGE_TOLERANCE_S short of a whole second still counts as covering it.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.media.ffmpeg_binary import ffmpeg_exe

SKIP_REASONS = (
    "missing file",
    "empty file",
    "unreadable",
    "not a video",
    "no video stream",
    "no audio stream",
    "shorter than 1 s",
    "silent audio",
)

# A stream that stops this short of a whole second still counts as covering it: cut clips often end one
# video frame (33-42 ms) or one AAC frame (21-23 ms) early. Missing audio samples are filled by mirroring
# the segment's tail.
COVERAGE_TOLERANCE_S = 0.05

# Peak amplitude (full scale = 1.0) below which the clip's K seconds count as digital silence: under one
# 16-bit step, so decoder and resampler rounding noise on true silence stays below it.
SILENCE_PEAK = 1.0 / 32768

# Downscaling filter of swscale for the square crop -> frame_size: bicubic, with exact rounding and full
# chroma interpolation (swscale widens the kernel when shrinking, so it low-passes like an area filter
# but keeps more detail).
SCALE_FLAGS = "bicubic+accurate_rnd+full_chroma_int"

DETAIL_LINES = 12
_SHOWINFO_NAME = "showinfo@s2iclock"
_SHOWINFO_LINE = re.compile(
    r"\bn:\s*\d+\s+pts:\s*\S+\s+pts_time:(\S+)\s+duration:\s*\S+\s+duration_time:(\S+)"
)
_INPUT_LINE = re.compile(r"^Input #0, (.+?), from ")
_STREAM_LINE = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
# Demuxers that read a single picture: such a file is an image, not a video.
_IMAGE_FORMATS = re.compile(r"(^|,)(image2|\w+_pipe)(,|$)")
_TEXT_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"[")


class ClipError(Exception):
    """A clip that yields no segment.

    .path, .reason (one of SKIP_REASONS), .detail (what was found, and ffmpeg's last stderr lines).
    """

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r}; expected one of {SKIP_REASONS}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):
        # Rebuild from the three fields, so the error survives a process pool's pickling.
        return (type(self), (self.path, self.reason, self.detail))


@dataclass(frozen=True)
class ClipMedia:
    """A clip's K usable segments, index k = second [k, k+1)."""

    frames: np.ndarray  # (K, S, S, 3) uint8: frame k = central frame at t = k + 0.5 s, square centre crop
    audio: np.ndarray  # (K, sample_rate) float32 mono: samples of second [k, k+1)
    duration: float  # seconds decoded (min of the two streams)

    @property
    def segments(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class _InputListing:
    """What ffmpeg's input listing says: container format and stream kinds."""

    format_name: str | None
    video_streams: int  # moving-picture streams; cover art ("attached pic") excluded
    audio_streams: int
    other_streams: int
    low_score_probe: bool  # ffmpeg guessed the format with little confidence: likely garbage


def _ffmpeg_command(
    path: Path, frames_out: Path, audio_out: Path, frame_size: int, sample_rate: int, threads: int | None
) -> list[str]:
    """The one ffmpeg call, built with ffmpeg-python (an argument list: no shell sees the file name)."""
    import ffmpeg

    # threads=None leaves ffmpeg's defaults (frame threads and filter threads = number of cores)
    source = ffmpeg.input(str(path), **({} if threads is None else {"threads": threads}))
    frames = (
        source["V:0"]  # capital V: real video, not cover art
        .filter(_SHOWINFO_NAME, checksum=0)
        .filter("setpts", "PTS-0.5/TB")
        .filter("fps", fps=1, round="up", start_time=0)
        .filter("crop", w="min(iw,ih/sar)", h="min(ih,iw*sar)")  # crop's `sar` is 1 when none is declared
        .filter("scale", frame_size, frame_size, flags=SCALE_FLAGS)
        .filter("setsar", 1)
        .filter("format", "rgb24")
    )
    audio = source["a:0"].filter(
        "aresample", sample_rate, **{"async": 1, "first_pts": 0, "ochl": "mono", "osf": "flt"}
    )
    # The input listing and showinfo's frame lines are at log level info.
    global_args = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"]
    if threads is not None:
        global_args += ["-filter_threads", str(threads)]
    command = ffmpeg.merge_outputs(
        ffmpeg.output(frames, str(frames_out), f="rawvideo", fps_mode="passthrough"),
        ffmpeg.output(audio, str(audio_out), f="f32le"),
    )
    return command.global_args(*global_args).overwrite_output().compile(cmd=ffmpeg_exe())


def _parse_listing(stderr: str) -> _InputListing:
    format_name = None
    counts = {"video": 0, "audio": 0, "other": 0}
    in_input = False
    for line in stderr.splitlines():
        if match := _INPUT_LINE.match(line):
            format_name, in_input = match.group(1), True
            continue
        if line.startswith(("Output #", "Stream mapping", "[")):
            in_input = False
        if in_input and (match := _STREAM_LINE.match(line)):
            kind, description = match.groups()
            if kind == "Video" and "(attached pic)" not in description:
                counts["video"] += 1
            elif kind == "Audio":
                counts["audio"] += 1
            else:
                counts["other"] += 1
    return _InputListing(
        format_name=format_name,
        video_streams=counts["video"],
        audio_streams=counts["audio"],
        other_streams=counts["other"],
        low_score_probe="misdetection possible" in stderr,
    )


def _video_extent(stderr: str) -> tuple[int, float]:
    """(frames decoded, end of the last frame in seconds) from showinfo's per-frame lines."""
    times: list[tuple[float, float]] = []
    for line in stderr.splitlines():
        if _SHOWINFO_NAME in line and (match := _SHOWINFO_LINE.search(line)):
            try:
                times.append((float(match.group(1)), float(match.group(2))))
            except ValueError:  # NOPTS: a frame without a timestamp tells nothing about the extent
                continue
    if not times:
        return 0, 0.0
    last_start, last_duration = times[-1]
    if last_duration <= 0 and len(times) > 1:
        # No duration on the last frame: assume it lasts as long as the typical frame before it.
        last_duration = float(np.median(np.diff([start for start, _ in times])))
    return len(times), last_start + max(last_duration, 0.0)


def _stderr_tail(stderr: str, lines: int = DETAIL_LINES) -> str:
    """ffmpeg's last messages, without the per-frame showinfo lines."""
    kept = [line for line in stderr.splitlines() if line.strip() and _SHOWINFO_NAME not in line]
    return "\n".join(kept[-lines:])


def _looks_like_text(path: Path) -> str | None:
    """A short description if the file starts like a text document (an HTML error page, JSON), else None."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(_TEXT_PREFIXES):
        return f"the file is text, starting {head[:40]!r}: a web page saved in place of a video?"
    printable = sum(32 <= byte < 127 or byte in b"\t\r\n" for byte in head)
    if head and printable / len(head) > 0.95:
        return f"the file is plain text, it starts with {head[:40]!r}"
    return None


def _failure_reason(path: Path, listing: _InputListing, stderr: str) -> tuple[str, str]:
    """Why ffmpeg failed before producing anything: (reason, detail)."""
    tail = _stderr_tail(stderr)
    if listing.format_name is None:  # ffmpeg could not open it as media at all
        if text := _looks_like_text(path):
            return "not a video", f"{text}\n{tail}"
        return "unreadable", tail
    if listing.low_score_probe:
        guess = f"ffmpeg could only guess the format ({listing.format_name}): damaged, or not media"
        return "unreadable", f"{guess}\n{tail}"
    if _IMAGE_FORMATS.search(listing.format_name):
        return "not a video", f"a still image ({listing.format_name})\n{tail}"
    if listing.video_streams == 0 and listing.audio_streams == 0:
        return "not a video", f"no audio or video stream in this {listing.format_name} file\n{tail}"
    found = f"{listing.video_streams} video, {listing.audio_streams} audio streams ({listing.format_name})"
    if listing.video_streams == 0:
        return "no video stream", f"{found} (cover art does not count)\n{tail}"
    if listing.audio_streams == 0:
        return "no audio stream", f"{found}\n{tail}"
    return "unreadable", tail


def _run_ffmpeg(command: list[str], log_out: Path, timeout_s: float) -> tuple[int | None, str]:
    """Run ffmpeg with its log going to a file; (exit status or None on timeout, the log)."""
    # Every output goes to a file: no pipe can fill up and block ffmpeg, and this process is not woken
    # for each of the ~3 stderr lines per frame (reading them through a pipe cost ~7 ms of CPU a clip).
    with open(log_out, "wb") as log:
        try:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return None, log_out.read_bytes().decode("utf-8", "replace")
    return done.returncode, log_out.read_bytes().decode("utf-8", "replace")


def _segment_audio(samples: np.ndarray, segments: int, sample_rate: int) -> np.ndarray:
    """(segments, sample_rate) float32; a tail short by at most the tolerance is mirrored to fill it."""
    needed = segments * sample_rate
    if samples.size < needed:
        missing = needed - samples.size
        samples = np.concatenate([samples, samples[-missing:][::-1]])
    return np.ascontiguousarray(samples[:needed].reshape(segments, sample_rate), dtype=np.float32)


def extract_clip(
    path: str | Path,
    *,
    frame_size: int = 96,
    sample_rate: int = 16000,
    timeout_s: float = 300,
    threads: int | None = 1,
) -> ClipMedia:
    """Decode one clip once: its K usable segments' central frames and audio. Raises ClipError if K = 0.

    `threads`: ffmpeg's decoder and filter threads; 1 suits a pool of one clip per core, None leaves
    ffmpeg's defaults (faster for one clip alone, more CPU time in total).
    """
    path = Path(path)
    if not path.is_file():
        detail = "a directory is there, not a file" if path.exists() else "no such file"
        raise ClipError(path, "missing file", detail)
    if path.stat().st_size == 0:
        raise ClipError(path, "empty file", "0 bytes: an interrupted download or copy? fetch it again")

    frame_bytes = frame_size * frame_size * 3
    with tempfile.TemporaryDirectory(prefix="s2i-extract-") as scratch:
        frames_out, audio_out, log_out = (Path(scratch) / name for name in ("frames.rgb", "audio.f32", "log"))
        command = _ffmpeg_command(path, frames_out, audio_out, frame_size, sample_rate, threads)
        returncode, stderr = _run_ffmpeg(command, log_out, timeout_s)
        if returncode is None:
            raise ClipError(
                path,
                "unreadable",
                f"ffmpeg ran longer than {timeout_s:g} s; a damaged or huge file?\n" + _stderr_tail(stderr),
            )
        frames = np.fromfile(frames_out, dtype=np.uint8) if frames_out.exists() else np.zeros(0, np.uint8)
        samples = np.fromfile(audio_out, dtype="<f4") if audio_out.exists() else np.zeros(0, np.float32)
    listing = _parse_listing(stderr)
    if returncode != 0 and frames.size == 0:
        decoded_frames, video_end = _video_extent(stderr)
        if listing.video_streams and listing.audio_streams and decoded_frames and video_end < 1:
            # Under a second of video gives no central frame at all, so ffmpeg's frame output stays
            # empty and it fails: that is a short clip, not a broken one.
            raise ClipError(path, "shorter than 1 s", f"video {video_end:.3f} s: no whole second to take")
        reason, detail = _failure_reason(path, listing, stderr)
        raise ClipError(path, reason, f"ffmpeg exit status {returncode}\n{detail}".strip())
    frames = frames[: frames.size // frame_bytes * frame_bytes].reshape(-1, frame_size, frame_size, 3)
    decoded_frames, video_end = _video_extent(stderr)
    audio_end = samples.size / sample_rate

    if decoded_frames == 0 or samples.size == 0:
        empty = "video" if decoded_frames == 0 else "audio"
        reason = "unreadable"
        detail = f"the {empty} stream decoded to nothing"
        if listing.low_score_probe:
            detail += f"; ffmpeg could only guess the format ({listing.format_name})"
        raise ClipError(path, reason, f"{detail}\n{_stderr_tail(stderr)}")

    covered = min(video_end, audio_end) + COVERAGE_TOLERANCE_S
    segments = min(int(np.floor(covered)), frames.shape[0])
    if segments < 1:
        raise ClipError(
            path,
            "shorter than 1 s",
            f"video {video_end:.3f} s, audio {audio_end:.3f} s: no whole second is covered by both",
        )
    audio = _segment_audio(samples, segments, sample_rate)
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise ClipError(path, "silent audio", f"all {segments} s of audio are digital silence (peak < 2^-15)")
    return ClipMedia(
        frames=np.ascontiguousarray(frames[:segments]),
        audio=audio,
        duration=round(min(video_end, audio_end), 6),
    )


def extract_sound(path: str | Path, *, sample_rate: int = 16000, timeout_s: float = 300) -> np.ndarray:
    """The K whole seconds of any file ffmpeg reads with an audio stream (sound or video): (K, sample_rate)
    float32 mono. Raises ClipError ("missing file", "empty file", "unreadable", "not a video" for text,
    "no audio stream", "shorter than 1 s", "silent audio")."""
    import ffmpeg

    path = Path(path)
    if not path.is_file():
        raise ClipError(
            path, "missing file", "no such file" if not path.exists() else "a directory, not a file"
        )
    if path.stat().st_size == 0:
        raise ClipError(path, "empty file", "0 bytes")
    with tempfile.TemporaryDirectory(prefix="s2i-sound-") as scratch:
        audio_out, log_out = Path(scratch) / "audio.f32", Path(scratch) / "log"
        source = ffmpeg.input(str(path))
        audio = source["a:0"].filter(
            "aresample", sample_rate, **{"first_pts": 0, "ochl": "mono", "osf": "flt"}
        )
        command = (
            ffmpeg.output(audio, str(audio_out), f="f32le")
            .global_args("-nostdin", "-hide_banner", "-nostats", "-loglevel", "info")
            .overwrite_output()
            .compile(cmd=ffmpeg_exe())
        )
        returncode, stderr = _run_ffmpeg(command, log_out, timeout_s)
        if returncode is None:
            raise ClipError(path, "unreadable", f"ffmpeg ran longer than {timeout_s:g} s")
        samples = np.fromfile(audio_out, dtype="<f4") if audio_out.exists() else np.zeros(0, np.float32)
    if returncode != 0 and samples.size == 0:
        reason, detail = _failure_reason(path, _parse_listing(stderr), stderr)
        if reason == "no video stream":  # a sound file is what this function is for
            reason, detail = "unreadable", _stderr_tail(stderr)
        raise ClipError(path, reason, f"ffmpeg exit status {returncode}\n{detail}".strip())
    seconds = int(samples.size // sample_rate)
    if seconds < 1:
        raise ClipError(path, "shorter than 1 s", f"{samples.size / sample_rate:.3f} s of sound")
    sound = np.ascontiguousarray(
        samples[: seconds * sample_rate].reshape(seconds, sample_rate), dtype=np.float32
    )
    if float(np.max(np.abs(sound))) < SILENCE_PEAK:
        raise ClipError(path, "silent audio", f"all {seconds} s are digital silence")
    return sound


def extract_features(
    path: str | Path, *, frame_size: int = 96, sample_rate: int = 16000
) -> tuple[np.ndarray, np.ndarray]:
    """extract_clip + log_mel: (frames uint8 (K, S, S, 3), log-mel float32 (K, 100, 128))."""
    from pipelines.media.logmel import log_mel

    media = extract_clip(path, frame_size=frame_size, sample_rate=sample_rate)
    return media.frames, log_mel(media.audio, sample_rate=sample_rate)


__all__ = [
    "extract_sound",
    "COVERAGE_TOLERANCE_S",
    "SKIP_REASONS",
    "ClipError",
    "ClipMedia",
    "extract_clip",
    "extract_features",
]
