"""The demo data set: small synthetic audio-visual clips in the VEGAS layout, made with ffmpeg.

A user without a GPU or a VEGAS copy runs the whole chain on these. Each clip is a real mp4 (H.264 video,
AAC audio) at `<root>/<class>/videos/video_NNNNN.mp4`, with a class-typical sound and picture:

- baby_cry: a crying voice (harmonic wails with vibrato, breaths between) and a baby's face on a blanket.
- dog: bark bursts (short falling harmonic barks with noise) and a dog on a field under the sky.
- rail_transport: a low rumble, a hum and rhythmic clacks, and a train front on rails in perspective.
- fireworks: bangs (decaying noise, thump, crackle) and radial bursts of sparks on a dark sky.
- water_flowing: band-filtered flowing noise with bubbles, and a body of water with moving wave bands.

Sound and picture share properties, so a translator can beat guessing the class:
- per clip, `pitch` in [0, 1] sets the sound's pitch or spectral centre AND the hue of the class's key
  colour (blanket, field, train, sparks, water; `hue` in the latent values);
- per second k, `loudness` in [0, 1] sets the sound level of [k, k+1) (RMS from -38 to -10 dBFS) AND the
  size of the object in the central frame (t = k + 0.5); `size` is its extent as a fraction of the
  central square's side (face and burst diameter, dog length, train width, water level).
The key content sits in the central square, which is what extraction keeps (centre crop, 96x96).

Everything derives from (seed, class, index): same seed and settings give the same bytes, file by file.
`root/demo_truth.json` records every clip's settings, latent values, per-second loudness and size, and
its sha256, so a later run reuses clips it finds intact and later stages can use it as ground truth.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from pipelines.data.classes import VEGAS_CLASSES
from pipelines.data.progress import Progress
from pipelines.data.vegas import safe_clip_id
from pipelines.media.ffmpeg_binary import ffmpeg_exe

# Bump when the pictures, sounds or encoding change: clips made by another version are regenerated.
GENERATOR_VERSION = 1
TRUTH_FILE = "demo_truth.json"

# (width, height): 4:3, 16:9, 1:1 and 3:2, small so that a laptop renders and encodes them fast.
FRAME_SIZES: tuple[tuple[int, int], ...] = ((160, 120), (192, 108), (128, 128), (150, 100))
FRAME_RATES: tuple[int, ...] = (10, 12, 15, 20, 24, 25)
SAMPLE_RATES: tuple[int, ...] = (16000, 22050, 44100, 48000)
MIN_DURATION_S, MAX_DURATION_S = 3.0, 10.0
FULL_LENGTH_SHARE = 0.25  # VEGAS clips are mostly 10 s long; a quarter of demo clips are too
LOUDNESS_RANGE = (0.1, 1.0)
RMS_DB_AT_SILENT, RMS_DB_AT_LOUD = -38.0, -10.0  # per-second RMS for loudness 0 and 1
SIZE_RAMP_S = 0.15  # the object reaches its new size this long after a second starts

# x264 with one thread and bit-exact muxing: the same frames give the same bytes.
_VIDEO_ARGS = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-threads", "1"]
_AUDIO_ARGS = ["-c:a", "aac", "-b:a", "64k"]
_BITEXACT_ARGS = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
_BITEXACT_ARGS += ["-map_metadata", "-1"]  # no creation time, no encoder version strings in the file
_PARTIAL_MARK = ".partial-"


@dataclass(frozen=True)
class DemoClip:
    """One generated clip, as the rest of the chain sees it."""

    clip_id: str
    class_name: str
    path: Path
    duration: float
    width: int
    height: int
    sample_rate: int
    latent: dict[str, float]  # hidden continuous properties: pitch, hue, pitch_hz, loudness_mean


@dataclass(frozen=True)
class ClipPlan:
    """Everything that defines one clip's content, drawn from (seed, class, index) before rendering."""

    clip_id: str
    class_name: str
    index: int
    relative_path: str
    fps: int
    n_frames: int
    width: int
    height: int
    sample_rate: int
    pitch: float
    loudness: tuple[float, ...]  # one per started second
    render_seed: int

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    @property
    def n_samples(self) -> int:
        return round(self.duration * self.sample_rate)

    @property
    def spec(self) -> str:
        """Fingerprint of the clip's definition: a cached file is reused only if this matches."""
        encoding = [*_VIDEO_ARGS, *_AUDIO_ARGS, *_BITEXACT_ARGS]
        fields = {"generator_version": GENERATOR_VERSION, "encoding": encoding, **self.__dict__}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------
# Public entry point
# ----------------------------------------------------------------------------------------------------


def generate_demo(
    root: Path,
    classes: Sequence[str],
    clips_per_class: int,
    seed: int,
    *,
    workers: int = 1,
    log: Callable[[str], object] | None = None,
) -> list[DemoClip]:
    """Make (or reuse) `clips_per_class` clips per class under `root`, and write `root/demo_truth.json`."""
    root = Path(root)
    say = log or (lambda _message: None)
    plans = plan_demo(classes, clips_per_class, seed)
    if workers < 1:
        raise ValueError(f"demo workers is {workers}; it must be at least 1.")
    root.mkdir(parents=True, exist_ok=True)
    previous = _read_truth(root / TRUTH_FILE)
    _remove_leftovers(root, plans, previous, say)

    sha_by_id: dict[str, str] = {}
    to_make: list[ClipPlan] = []
    for plan in plans:
        entry = previous.get(plan.relative_path, {})
        same_definition = entry.get("spec") == plan.spec
        if same_definition and entry.get("sha256") == _file_sha256(root / plan.relative_path):
            sha_by_id[plan.clip_id] = entry["sha256"]
        else:
            to_make.append(plan)

    progress = Progress(len(plans), "demo clips", log=say, unit="clips")
    if sha_by_id:
        say(f"demo clips: reusing {len(sha_by_id)} intact clips from an earlier run")
        progress.advance(len(sha_by_id))
    ffmpeg_version = _ffmpeg_version()
    truth_path = root / TRUTH_FILE
    last_truth_write = time.monotonic()
    try:
        for plan, sha in _make_clips(root, to_make, workers):
            sha_by_id[plan.clip_id] = sha
            progress.advance()
            # Record finished clips now and then, so a killed run resumes where it was.
            if time.monotonic() - last_truth_write > 10.0:
                _write_truth(truth_path, plans, sha_by_id, seed, clips_per_class, ffmpeg_version)
                last_truth_write = time.monotonic()
    finally:
        _write_truth(truth_path, plans, sha_by_id, seed, clips_per_class, ffmpeg_version)
    return [_demo_clip(root, plan) for plan in plans]


def plan_demo(classes: Sequence[str], clips_per_class: int, seed: int) -> list[ClipPlan]:
    """The clips `generate_demo` makes, without making them (cheap; deterministic)."""
    unknown = [name for name in classes if name not in VEGAS_CLASSES]
    if unknown:
        raise ValueError(
            f"demo classes {unknown} are not known; use some of {sorted(VEGAS_CLASSES)} (normalised names)."
        )
    if len(set(classes)) != len(classes):
        raise ValueError(f"demo classes {list(classes)} name a class twice; list each class once.")
    if clips_per_class < 1:
        raise ValueError(f"demo clips_per_class is {clips_per_class}; it must be at least 1.")
    if seed < 0:
        raise ValueError(f"demo seed is {seed}; it must be a non-negative integer.")
    return [_plan_clip(name, index, seed) for name in classes for index in range(clips_per_class)]


def _plan_clip(class_name: str, index: int, seed: int) -> ClipPlan:
    # A per-clip generator from (seed, class, index): clips do not depend on each other or on the class list.
    class_key = int.from_bytes(hashlib.sha256(class_name.encode()).digest()[:4], "big")
    rng = np.random.default_rng(np.random.SeedSequence([seed, class_key, index]))
    width, height = FRAME_SIZES[rng.integers(len(FRAME_SIZES))]
    fps = int(FRAME_RATES[rng.integers(len(FRAME_RATES))])
    sample_rate = int(SAMPLE_RATES[rng.integers(len(SAMPLE_RATES))])
    if rng.random() < FULL_LENGTH_SHARE:
        n_frames = int(MAX_DURATION_S * fps)
    else:
        n_frames = int(rng.integers(int(MIN_DURATION_S * fps), int(MAX_DURATION_S * fps)))
    pitch = float(rng.random())
    n_seconds = math.ceil(n_frames / fps)
    loudness = tuple(round(float(v), 4) for v in rng.uniform(*LOUDNESS_RANGE, size=n_seconds))
    stem = f"video_{index:05d}"
    return ClipPlan(
        clip_id=safe_clip_id(class_name, stem),  # the same id scan_local gives the file
        class_name=class_name,
        index=index,
        relative_path=f"{class_name}/videos/{stem}.mp4",
        fps=fps,
        n_frames=n_frames,
        width=int(width),
        height=int(height),
        sample_rate=sample_rate,
        pitch=round(pitch, 4),
        loudness=loudness,
        render_seed=int(rng.integers(2**62)),
    )


def _latent(plan: ClipPlan) -> dict[str, float]:
    scene = _SCENES[plan.class_name]
    return {
        "pitch": plan.pitch,
        "hue": round(scene.hue(plan.pitch), 4),
        "pitch_hz": round(scene.pitch_hz(plan.pitch), 2),
        "loudness_mean": round(float(np.mean(plan.loudness)), 4),
    }


def _demo_clip(root: Path, plan: ClipPlan) -> DemoClip:
    return DemoClip(
        clip_id=plan.clip_id,
        class_name=plan.class_name,
        path=root / plan.relative_path,
        duration=plan.duration,
        width=plan.width,
        height=plan.height,
        sample_rate=plan.sample_rate,
        latent=_latent(plan),
    )


# ----------------------------------------------------------------------------------------------------
# Truth file, caching, leftovers
# ----------------------------------------------------------------------------------------------------


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_demo_truth(root: Path) -> dict:
    """The ground truth `generate_demo` wrote under `root`: settings, and per clip latent values and sizes."""
    path = Path(root) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; generate the demo data set first (generate_demo).")
    return json.loads(path.read_text())


def _read_truth(path: Path) -> dict[str, dict]:
    """Earlier truth entries by relative path; an unreadable file only means nothing is reused."""
    try:
        data = json.loads(path.read_text())
        return {entry["path"]: entry for entry in data["clips"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _truth_entry(plan: ClipPlan, sha256: str) -> dict:
    scene = _SCENES[plan.class_name]
    return {
        "clip_id": plan.clip_id,
        "class_name": plan.class_name,
        "path": plan.relative_path,
        "duration": plan.duration,
        "n_frames": plan.n_frames,
        "fps": plan.fps,
        "width": plan.width,
        "height": plan.height,
        "sample_rate": plan.sample_rate,
        "n_samples": plan.n_samples,
        "latent": _latent(plan),
        "loudness": list(plan.loudness),
        "rms_db": [round(_rms_db(value), 2) for value in plan.loudness],
        "size": [round(scene.size(value), 4) for value in plan.loudness],
        "spec": plan.spec,
        "sha256": sha256,
    }


def _write_truth(
    path: Path,
    plans: list[ClipPlan],
    sha_by_id: dict[str, str],
    seed: int,
    clips_per_class: int,
    ffmpeg_version: str,
) -> None:
    data = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "classes": list(dict.fromkeys(plan.class_name for plan in plans)),
        "clips_per_class": clips_per_class,
        "ffmpeg": ffmpeg_version,
        "notes": {
            "loudness": "per started second k: sets the RMS of audio [k, k+1) (rms_db) and the object size",
            "size": "object extent as a fraction of the central square, in every frame of [k + 0.15, k + 1)",
            "pitch": "per clip: sets the sound's pitch or spectral centre (pitch_hz) and the key hue",
            "hue": "hue in [0, 1) of the class's key colour: blanket, field, train, sparks, water",
        },
        "clips": [_truth_entry(plan, sha_by_id[plan.clip_id]) for plan in plans if plan.clip_id in sha_by_id],
    }
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if path.is_file() and path.read_text() == text:
        return  # unchanged: keep its mtime, so a re-run leaves the folder as it was
    temp = path.with_name(f"{path.name}{_PARTIAL_MARK}{os.getpid()}")
    temp.write_text(text)
    os.replace(temp, path)


def _remove_leftovers(
    root: Path, plans: list[ClipPlan], previous: dict[str, dict], say: Callable[[str], object]
) -> None:
    """Delete half-written files of a killed run, and clips an earlier run made that this run does not."""
    planned = {plan.relative_path for plan in plans}
    for partial in [*root.glob(f"*/videos/*{_PARTIAL_MARK}*"), *root.glob(f"{TRUTH_FILE}{_PARTIAL_MARK}*")]:
        partial.unlink(missing_ok=True)
    stale = [relative for relative in previous if relative not in planned and (root / relative).is_file()]
    for relative in stale:
        (root / relative).unlink()
        for folder in ((root / relative).parent, (root / relative).parent.parent):  # videos/, then the class
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    if stale:
        say(f"demo clips: removed {len(stale)} clips of an earlier run that this run does not make")


def _ffmpeg_version() -> str:
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True)
    first = result.stdout.splitlines()[0] if result.stdout else "unknown"
    return re.sub(r"\s+Copyright.*$", "", first)


# ----------------------------------------------------------------------------------------------------
# Making clips
# ----------------------------------------------------------------------------------------------------


def _make_clips(root: Path, plans: list[ClipPlan], workers: int):
    """Yield (plan, sha256) as clips are finished, in a pool of `workers` processes when above 1."""
    if workers == 1 or len(plans) <= 1:
        for plan in plans:
            yield plan, make_clip(root, plan)
        return
    # spawn, not fork: the caller may be a threaded process (Dagster), where fork can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [(plan, pool.submit(make_clip, root, plan)) for plan in plans]
        try:
            for plan, future in futures:
                yield plan, future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # one failure stops the rest: fail fast
            raise


def make_clip(root: Path, plan: ClipPlan) -> str:
    """Render, encode and atomically place one clip; return its sha256."""
    final = Path(root) / plan.relative_path
    final.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(plan.render_seed)
    scene = _SCENES[plan.class_name](plan, rng)
    frames = scene.frames()  # (n_frames, H, W, 3) uint8
    audio = scene.audio()  # (n_samples,) float in [-1, 1]
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")

    suffix = f"{_PARTIAL_MARK}{os.getpid()}"
    temp_audio = final.with_name(f"{final.stem}.s16le{suffix}")
    temp_video = final.with_name(f"{final.name}{suffix}")
    command = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{plan.width}x{plan.height}",
        "-framerate", str(plan.fps), "-i", "pipe:0",
        "-f", "s16le", "-ar", str(plan.sample_rate), "-ac", "1", "-i", str(temp_audio),
        "-map", "0:v:0", "-map", "1:a:0", *_VIDEO_ARGS, *_AUDIO_ARGS, *_BITEXACT_ARGS,
        # moov atom first: players and ffmpeg can read the clip over plain HTTP without Range requests.
        "-movflags", "+faststart", "-f", "mp4", str(temp_video),
    ]  # fmt: skip
    try:
        temp_audio.write_bytes(pcm.tobytes())  # audio from a file, video through stdin: no two-pipe deadlock
        result = subprocess.run(command, input=frames.tobytes(), capture_output=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"ffmpeg failed to encode demo clip {final} (exit {result.returncode}): "
                f"{result.stderr.decode(errors='replace')[-1500:]}; it needs an ffmpeg with libx264 and aac."
            )
        os.replace(temp_video, final)
    finally:
        temp_audio.unlink(missing_ok=True)
        temp_video.unlink(missing_ok=True)
    return _file_sha256(final) or ""


# ----------------------------------------------------------------------------------------------------
# Drawing: soft-edged shapes on a float canvas whose unit is the central square's side
# ----------------------------------------------------------------------------------------------------


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), dtype=np.float32)


def _rgb(red: float, green: float, blue: float) -> np.ndarray:
    return np.array((red, green, blue), dtype=np.float32)


BLACK, WHITE = _rgb(0.0, 0.0, 0.0), _rgb(1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Patch:
    """A shape's coverage (alpha in [0, 1]) over the rows and columns of its bounding box."""

    alpha: np.ndarray
    rows: slice
    cols: slice


class Canvas:
    """Pixel coordinates (u, v): (0, 0) at the frame centre, the central square spans [-0.5, 0.5].

    Shapes are computed inside their bounding box only: most are small, and rendering dominates the cost.
    """

    def __init__(self, width: int, height: int) -> None:
        self.side = min(width, height)
        self.width, self.height = width, height
        self.u = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2) / self.side)[None, :]  # (1, W)
        self.v = ((np.arange(height, dtype=np.float32) + 0.5 - height / 2) / self.side)[:, None]  # (H, 1)
        self.pixel = 1.0 / self.side
        self.half_width = width / self.side / 2  # how far the frame reaches left and right, in these units
        self.half_height = height / self.side / 2

    def edge(self, signed_distance: np.ndarray) -> np.ndarray:
        """Coverage from a signed distance (negative inside), anti-aliased over one pixel."""
        return np.clip(0.5 - signed_distance / self.pixel, 0.0, 1.0)

    def _window(
        self, x0: float, y0: float, x1: float, y1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray]:
        c0 = max(0, math.floor((x0 + self.half_width) * self.side) - 1)
        c1 = min(self.width, math.ceil((x1 + self.half_width) * self.side) + 2)
        r0 = max(0, math.floor((y0 + self.half_height) * self.side) - 1)
        r1 = min(self.height, math.ceil((y1 + self.half_height) * self.side) + 2)
        rows, cols = slice(r0, max(r0, r1)), slice(c0, max(c0, c1))
        return rows, cols, self.u[:, cols], self.v[rows, :]

    def disc(self, x: float, y: float, radius: float) -> Patch:
        rows, cols, u, v = self._window(x - radius, y - radius, x + radius, y + radius)
        return Patch(self.edge(np.hypot(u - x, v - y) - radius), rows, cols)

    def ellipse(self, x: float, y: float, rx: float, ry: float, angle: float = 0.0) -> Patch:
        reach = max(rx, ry)
        rows, cols, u, v = self._window(x - reach, y - reach, x + reach, y + reach)
        c, s = math.cos(angle), math.sin(angle)
        a, b = ((u - x) * c + (v - y) * s) / rx, (-(u - x) * s + (v - y) * c) / ry
        return Patch(self.edge((np.sqrt(a * a + b * b) - 1.0) * min(rx, ry)), rows, cols)

    def box(self, x0: float, y0: float, x1: float, y1: float, radius: float = 0.0) -> Patch:
        rows, cols, u, v = self._window(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        qx, qy = np.abs(u - cx) - hx + radius, np.abs(v - cy) - hy + radius
        outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
        inside = np.minimum(np.maximum(qx, qy), 0)
        return Patch(self.edge(outside + inside - radius), rows, cols)

    def segment(self, x0: float, y0: float, x1: float, y1: float, width: float) -> Patch:
        half = width / 2
        rows, cols, u, v = self._window(
            min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half
        )
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
        return Patch(self.edge(np.hypot(u - x0 - t * dx, v - y0 - t * dy) - half), rows, cols)

    def texture(self, rng: np.random.Generator, cell: int = 3) -> np.ndarray:
        """Smooth random texture in about [-1.5, 1.5], (H, W): grain for grass, gravel and blankets."""
        small = rng.standard_normal((self.height // cell + 2, self.width // cell + 2)).astype(np.float32)
        big = np.repeat(np.repeat(small, cell, axis=0), cell, axis=1)[: self.height + 2, : self.width + 2]
        blurred = sum(big[dy : dy + self.height, dx : dx + self.width] for dy in range(3) for dx in range(3))
        return np.clip(blurred / 9.0 / 0.6, -1.5, 1.5)


def paint(image: np.ndarray, shape: Patch | np.ndarray, color: np.ndarray, opacity: float = 1.0) -> None:
    """Blend `color` over `image` (H, W, 3) with a shape's coverage (a Patch, or a full (H, W) alpha)."""
    if isinstance(shape, Patch):
        region, alpha = image[shape.rows, shape.cols], shape.alpha
    else:
        region, alpha = image, shape
    region += (opacity * alpha)[..., None] * (color - region)  # a view: blends in place


# ----------------------------------------------------------------------------------------------------
# Sound helpers
# ----------------------------------------------------------------------------------------------------


def _rms_db(loudness: float) -> float:
    return RMS_DB_AT_SILENT + (RMS_DB_AT_LOUD - RMS_DB_AT_SILENT) * loudness


def shaped_noise(
    rng: np.random.Generator, n: int, sample_rate: int, gain: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """White noise filtered in the frequency domain by `gain(frequencies_hz)`, scaled to unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1.0 / sample_rate)
    out = np.fft.irfft(spectrum * gain(frequencies), n)
    return out / (np.sqrt(np.mean(out * out)) + 1e-12)


def _ramp_envelope(n: int, attack: int, release: int) -> np.ndarray:
    envelope = np.ones(n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    if attack:
        envelope[:attack] = np.linspace(0.0, 1.0, attack, endpoint=False)
    if release:
        envelope[n - release :] = np.linspace(1.0, 0.0, release)
    return envelope


def _add(track: np.ndarray, start: int, signal: np.ndarray) -> None:
    """Mix `signal` into `track` from sample `start`, cutting what falls outside."""
    if start >= len(track):
        return
    end = min(len(track), start + len(signal))
    track[start:end] += signal[: end - start]


def _harmonic_tone(
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
    """Scale each second of `raw` so that its RMS is `_rms_db(loudness[k])`, under a soft limiter (tanh)."""
    n, n_seconds = len(raw), len(loudness)
    target = 10 ** (np.array([_rms_db(value) for value in loudness]) / 20)
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


# ----------------------------------------------------------------------------------------------------
# Scenes: one per class. Each draws its details from the clip's generator, then renders sound and frames.
# ----------------------------------------------------------------------------------------------------


class Scene:
    """Base of the class scenes: shared timing, loudness and size bookkeeping."""

    # The key colour's hue for pitch 0 and 1; never the full circle, where pitch 0 and 1 would look alike.
    hue_range: tuple[float, float] = (0.0, 0.83)
    pitch_range_hz: tuple[float, float] = (300.0, 600.0)
    size_range: tuple[float, float] = (0.3, 0.8)  # object extent for loudness 0 and 1

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        self.plan = plan
        self.rng = rng
        self.canvas = Canvas(plan.width, plan.height)
        self.key_hue = self.hue(plan.pitch)
        self.f0 = self.pitch_hz(plan.pitch)
        self.n_seconds = len(plan.loudness)

    @classmethod
    def hue(cls, pitch: float) -> float:
        low, high = cls.hue_range
        return (low + (high - low) * pitch) % 1.0

    @classmethod
    def pitch_hz(cls, pitch: float) -> float:
        low, high = cls.pitch_range_hz
        return low * (high / low) ** pitch  # equal steps in musical pitch

    @classmethod
    def size(cls, loudness: float) -> float:
        low, high = cls.size_range
        return low + (high - low) * loudness

    def size_at(self, t: float) -> float:
        """Object extent at time t: the second's size, reached SIZE_RAMP_S after the second starts."""
        k = min(int(t), self.n_seconds - 1)
        current = self.size(self.plan.loudness[k])
        if k == 0 or t - k >= SIZE_RAMP_S:
            return current
        before = self.size(self.plan.loudness[k - 1])
        x = (t - k) / SIZE_RAMP_S
        return before + (current - before) * x * x * (3 - 2 * x)

    def frames(self) -> np.ndarray:
        out = np.empty((self.plan.n_frames, self.plan.height, self.plan.width, 3), dtype=np.uint8)
        for i in range(self.plan.n_frames):
            image = self.frame(i / self.plan.fps)
            out[i] = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return out

    def audio(self) -> np.ndarray:
        sample_rate = self.plan.sample_rate
        sound = set_loudness(band_limit(self.raw_audio(), sample_rate), sample_rate, self.plan.loudness)
        room = 10 ** (-66 / 20) * self.rng.standard_normal(len(sound))  # a faint noise floor, like a room's
        return sound + room

    def times(self) -> np.ndarray:
        return np.arange(self.plan.n_samples) / self.plan.sample_rate

    def frame(self, t: float) -> np.ndarray:  # (H, W, 3) float in [0, 1]
        raise NotImplementedError

    def raw_audio(self) -> np.ndarray:  # (n_samples,) any scale; set_loudness sets the level
        raise NotImplementedError


class BabyCry(Scene):
    """A crying voice (wails 300-600 Hz with vibrato, breaths between) and a crying face on a blanket."""

    hue_range = (0.0, 0.83)  # blanket: red, yellow, green, blue, to violet
    pitch_range_hz = (300.0, 600.0)
    size_range = (0.3, 0.78)  # face diameter

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        skins = [(0.96, 0.80, 0.68), (0.88, 0.68, 0.54), (0.70, 0.49, 0.36), (0.48, 0.33, 0.24)]
        self.skin = np.array(skins[rng.integers(len(skins))], np.float32) * rng.uniform(0.95, 1.03)
        self.center = rng.uniform(-0.05, 0.05, size=2)
        self.sway = (rng.uniform(0.3, 0.7), rng.uniform(0, 2 * np.pi))
        # The cry: wails separated by short breaths, covering every second.
        self.wails: list[tuple[float, float]] = []
        t = rng.uniform(0.0, 0.1)
        while t < plan.duration:
            length = rng.uniform(0.45, 1.2)
            self.wails.append((t, t + length))
            t += length + rng.uniform(0.06, 0.25)
        canvas = self.canvas
        blanket = _hsv(self.key_hue, 0.5, 0.9)
        stripe = _hsv(self.key_hue, 0.65, 0.72)
        angle = rng.uniform(0, np.pi)
        stripes = 0.5 + 0.5 * np.sin(
            2 * np.pi * rng.uniform(3, 6) * (canvas.u * math.cos(angle) + canvas.v * math.sin(angle))
        )
        self.background = np.empty((plan.height, plan.width, 3), np.float32)
        self.background[:] = blanket
        paint(self.background, stripes**4, stripe, 0.45)
        self.background *= (1 + 0.04 * canvas.texture(rng))[..., None]

    def mouth_open(self, t: float) -> float:
        for start, end in self.wails:
            if start <= t < end:
                return min(1.0, (t - start) / 0.08, (end - t) / 0.1)
        return 0.0

    def frame(self, t: float) -> np.ndarray:
        c, image, skin = self.canvas, self.background.copy(), self.skin
        r = self.size_at(t) / 2  # face radius
        rate, phase = self.sway
        x = self.center[0] + 0.02 * math.sin(2 * np.pi * rate * t + phase)
        y = self.center[1] + 0.012 * math.sin(2 * np.pi * 1.7 * rate * t)
        paint(image, c.disc(x - 0.95 * r, y, 0.2 * r), skin * 0.92)  # ears
        paint(image, c.disc(x + 0.95 * r, y, 0.2 * r), skin * 0.92)
        paint(image, c.disc(x, y, r), skin)
        paint(image, c.ellipse(x, y - 0.92 * r, 0.22 * r, 0.12 * r, 0.3), skin * 0.55)  # curl of hair
        for side in (-1, 1):
            ex, ey = x + side * 0.38 * r, y - 0.14 * r
            paint(
                image, c.ellipse(ex, ey, 0.17 * r, 0.05 * r, side * 0.25), _rgb(0.22, 0.13, 0.1)
            )  # shut eyes
            paint(
                image,
                c.ellipse(ex + side * 0.04 * r, ey + 0.2 * r, 0.04 * r, 0.07 * r),
                _rgb(0.6, 0.8, 1),
                0.8,
            )
            paint(image, c.disc(x + side * 0.52 * r, y + 0.22 * r, 0.15 * r), _rgb(0.95, 0.45, 0.45), 0.35)
        opening = 0.1 + 0.14 * self.mouth_open(t)
        paint(image, c.ellipse(x, y + 0.42 * r, 0.24 * r, opening * r), _rgb(0.45, 0.08, 0.1))
        return image

    def raw_audio(self) -> np.ndarray:
        sr, rng = self.plan.sample_rate, self.rng
        out = np.zeros(self.plan.n_samples)
        vibrato_rate = rng.uniform(5.0, 7.0)

        def formants(harmonic: int, frequency: np.ndarray) -> np.ndarray:
            # 1/h roll-off with the resonances of a small vocal tract near 1.2 and 3 kHz
            peaks = 2.0 * np.exp(-(((frequency - 1200) / 450) ** 2)) + 1.2 * np.exp(
                -(((frequency - 3000) / 700) ** 2)
            )
            return (1 + peaks) / harmonic

        for start, end in self.wails:
            n = int((end - start) * sr)
            x = np.linspace(0.0, 1.0, n)
            local_t = np.arange(n) / sr
            contour = 1 + rng.uniform(0.1, 0.25) * np.sin(np.pi * x) - 0.08 * x  # rise and fall of a wail
            f0 = self.f0 * contour * (1 + 0.025 * np.sin(2 * np.pi * vibrato_rate * local_t))
            tone = _harmonic_tone(f0, sr, formants, 14)
            breath = shaped_noise(rng, n, sr, lambda f: np.exp(-(((f - 2500) / 1500) ** 2)))
            wail = (tone + 0.15 * breath) * _ramp_envelope(n, int(0.04 * sr), int(0.08 * sr))
            _add(out, int(start * sr), wail)
        return out


class Dog(Scene):
    """Bark bursts (short falling harmonic barks with noise) and a dog on a field under the sky."""

    hue_range = (45 / 360, 165 / 360)  # field: from dry yellow grass to green and teal
    pitch_range_hz = (180.0, 700.0)  # big dogs bark low, small dogs high
    size_range = (0.35, 0.88)  # dog length, tail to nose

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        furs = [
            (0.76, 0.57, 0.35),
            (0.45, 0.29, 0.16),
            (0.22, 0.16, 0.12),
            (0.9, 0.82, 0.66),
            (0.7, 0.38, 0.18),
        ]
        self.fur = np.array(furs[rng.integers(len(furs))], np.float32) * rng.uniform(0.93, 1.05)
        self.facing = 1 if rng.random() < 0.5 else -1
        self.wag_rate = rng.uniform(1.5, 3.0)
        self.barks: list[tuple[float, float]] = []
        for k in range(self.n_seconds):  # 1-3 barks in every second
            onsets = np.sort(rng.uniform(k, k + 0.8, size=rng.integers(1, 4)))
            for onset in onsets:
                if onset < plan.duration and (not self.barks or onset - self.barks[-1][0] > 0.2):
                    self.barks.append((float(onset), float(rng.uniform(0.09, 0.2))))
        canvas = self.canvas
        self.horizon = rng.uniform(-0.2, -0.08)
        sky = _hsv(rng.uniform(0.53, 0.62), rng.uniform(0.15, 0.4), rng.uniform(0.82, 0.95))
        field = _hsv(self.key_hue, 0.6, 0.62)
        self.background = np.empty((plan.height, plan.width, 3), np.float32)
        self.background[:] = sky
        depth = np.clip((canvas.v - self.horizon) / (0.5 - self.horizon), 0, 1)  # 0 far, 1 near
        ground = canvas.edge(self.horizon - canvas.v + 0 * canvas.u)
        paint(self.background, ground, field)
        grain = canvas.texture(rng, cell=2) * (0.04 + 0.08 * depth)
        self.background *= (1 + grain * ground)[..., None]

    def mouth_open(self, t: float) -> float:
        for onset, length in self.barks:
            if onset <= t < onset + length + 0.05:
                return 1.0
        return 0.0

    def frame(self, t: float) -> np.ndarray:
        c, image = self.canvas, self.background.copy()
        g = self.size_at(t) / 1.17  # body unit; the dog spans about 1.17 units from tail to nose
        f = self.facing
        x0 = -f * 0.08 * g + 0.015 * math.sin(0.6 * t)
        feet = 0.16 + 0.22 * g  # a bigger (nearer) dog stands lower in the picture
        y0 = feet - 0.32 * g
        fur, shade = self.fur, self.fur * 0.7
        paint(image, c.ellipse(x0, feet, 0.42 * g, 0.05 * g), BLACK, 0.3)  # shadow
        for lx, colour in (
            (-0.26, shade),
            (0.2, shade),
            (-0.3, fur),
            (0.26, fur),
        ):  # far legs, then near legs
            leg = x0 + f * lx * g
            paint(image, c.box(leg - 0.035 * g, y0, leg + 0.035 * g, feet, 0.02 * g), colour)
        wag = 0.08 * g * math.sin(2 * np.pi * self.wag_rate * t)
        tail = c.segment(x0 - f * 0.34 * g, y0 - 0.06 * g, x0 - f * 0.5 * g + wag, y0 - 0.26 * g, 0.05 * g)
        paint(image, tail, fur)
        paint(image, c.ellipse(x0, y0, 0.38 * g, 0.17 * g), fur)  # body
        bark = self.mouth_open(t)
        hx, hy = x0 + f * 0.42 * g, y0 - 0.24 * g - 0.03 * g * bark  # the head lifts while barking
        paint(image, c.ellipse(x0 + f * 0.3 * g, y0 - 0.1 * g, 0.1 * g, 0.15 * g, f * 0.6), fur)  # neck
        paint(image, c.disc(hx, hy, 0.15 * g), fur)
        paint(image, c.ellipse(hx + f * 0.14 * g, hy + 0.05 * g, 0.11 * g, 0.065 * g), fur)  # snout
        if bark:
            paint(
                image,
                c.ellipse(hx + f * 0.13 * g, hy + 0.12 * g, 0.09 * g, 0.035 * g),
                _rgb(0.35, 0.05, 0.08),
            )
        paint(image, c.disc(hx + f * 0.24 * g, hy + 0.03 * g, 0.028 * g), BLACK)  # nose
        paint(image, c.disc(hx + f * 0.04 * g, hy - 0.04 * g, 0.024 * g), BLACK)  # eye
        paint(
            image, c.ellipse(hx - f * 0.07 * g, hy + 0.02 * g, 0.05 * g, 0.12 * g, -f * 0.3), shade * 0.8
        )  # ear
        return image

    def raw_audio(self) -> np.ndarray:
        sr, rng = self.plan.sample_rate, self.rng
        out = np.zeros(self.plan.n_samples)
        band = (1.2 * self.f0, 5.0 * self.f0)
        for onset, length in self.barks:
            n = int(length * sr)
            x = np.linspace(0.0, 1.0, n)
            f0 = self.f0 * rng.uniform(0.92, 1.08) * (1.25 - 0.45 * x)  # a bark falls in pitch
            tone = _harmonic_tone(f0, sr, lambda h, _f: h**-0.8, 10)
            rasp = shaped_noise(rng, n, sr, lambda f: ((f > band[0]) & (f < band[1])).astype(float))
            envelope = np.minimum(1.0, np.arange(n) / (0.006 * sr)) * np.exp(-3.0 * x)
            _add(out, int(onset * sr), (tone + 0.5 * rasp) * envelope)
        return out


class RailTransport(Scene):
    """A low rumble, a hum and rhythmic wheel clacks, and a train front on rails in perspective."""

    hue_range = (0.0, 0.83)  # train: red to violet
    pitch_range_hz = (45.0, 160.0)  # engine hum; the clack resonance follows it (x 16)
    size_range = (0.2, 0.72)  # train width

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        canvas = self.canvas
        self.horizon = rng.uniform(-0.2, -0.1)
        self.vanish_x = rng.uniform(-0.05, 0.05)
        # Sleepers scroll past (the camera rides along), slower than half a spacing per frame at 10 fps.
        self.speed = rng.uniform(0.2, 0.5)
        self.clack_period = rng.uniform(0.35, 0.6)
        self.clack_gap = rng.uniform(0.07, 0.12)
        self.clack_phase = rng.uniform(0, self.clack_period)
        skies = [(0.62, 0.75, 0.9), (0.72, 0.74, 0.76), (0.86, 0.72, 0.6), (0.55, 0.66, 0.82)]
        sky = np.array(skies[rng.integers(len(skies))], np.float32) * rng.uniform(0.95, 1.03)
        gravel = np.array((0.42, 0.39, 0.36), np.float32) * rng.uniform(0.85, 1.1)
        self.background = np.empty((plan.height, plan.width, 3), np.float32)
        self.background[:] = sky
        below = canvas.v - self.horizon
        ground = canvas.edge(-below + 0 * canvas.u)
        paint(self.background, ground, gravel)
        self.background *= (1 + 0.08 * canvas.texture(rng, cell=2) * ground)[..., None]
        self.depth = np.where(below > 0.004, 0.25 / np.maximum(below, 0.004), 1e3)  # (H, 1) depth per row
        self.track_half = 0.42 * np.clip(below / (0.5 - self.horizon), 0, None)  # (H, 1) rail half-gauge
        self.sleeper_fade = np.clip(1.5 - self.depth / 3, 0, 1)  # far sleepers blur into the gravel
        self.train_colour = _hsv(self.key_hue, 0.8, 0.85)

    def frame(self, t: float) -> np.ndarray:
        c, image = self.canvas, self.background.copy()
        across = np.abs(c.u - self.vanish_x)  # (H, W)
        on_track = across < self.track_half * 1.35
        sleepers = (np.mod(self.depth + self.speed * t, 0.15) < 0.05) & on_track
        paint(image, sleepers * self.sleeper_fade, _rgb(0.3, 0.22, 0.16), 0.9)
        rail_width = np.maximum(0.012 * self.track_half / 0.42, c.pixel * 0.6)
        rails = c.edge(np.abs(across - self.track_half) - rail_width) * (self.depth < 60)
        paint(image, rails, _rgb(0.62, 0.62, 0.66))
        # The train front: a bigger (nearer) train stands lower, centred on the track.
        width = self.size_at(t)
        height = 1.05 * width
        bottom = self.horizon + 0.1 + 0.5 * width
        x = self.vanish_x + 0.004 * math.sin(7.0 * t)
        left, right, top = x - width / 2, x + width / 2, bottom - height
        paint(image, c.box(left, top, right, bottom, 0.08 * width), self.train_colour)
        paint(
            image, c.box(left, top, right, top + 0.12 * height, 0.06 * width), self.train_colour * 0.6
        )  # roof
        windscreen = c.box(left + 0.1 * width, top + 0.18 * height, right - 0.1 * width, top + 0.45 * height)
        paint(image, windscreen, _rgb(0.12, 0.16, 0.24))
        paint(image, c.box(left, top + 0.62 * height, right, top + 0.68 * height), WHITE * 0.92)  # stripe
        for side in (-1, 1):
            paint(
                image, c.disc(x + side * 0.3 * width, top + 0.8 * height, 0.06 * width), _rgb(1.0, 0.97, 0.75)
            )
        buffer_beam = c.box(left + 0.05 * width, bottom - 0.06 * height, right - 0.05 * width, bottom)
        paint(image, buffer_beam, _rgb(0.12, 0.12, 0.12))
        return image

    def raw_audio(self) -> np.ndarray:
        sr, rng, n = self.plan.sample_rate, self.rng, self.plan.n_samples
        t = self.times()
        rumble = shaped_noise(rng, n, sr, lambda f: 1 / (1 + (f / (80 + self.f0)) ** 2))
        wobble = 1 + 0.01 * np.sin(2 * np.pi * 0.3 * t)
        hum = _harmonic_tone(self.f0 * wobble, sr, lambda h, _f: 0.9**h, 4)
        clacks = np.zeros(n)
        resonance = 16 * self.f0  # 720-2560 Hz: wheel on rail joint, pitched with the hum
        m = int(0.06 * sr)
        local = np.arange(m) / sr
        for beat in np.arange(self.clack_phase, self.plan.duration, self.clack_period):
            for offset in (0.0, self.clack_gap):
                strike = np.exp(-local / rng.uniform(0.012, 0.022))
                ring = np.sin(2 * np.pi * resonance * local) + 0.5 * np.sin(
                    2 * np.pi * 1.6 * resonance * local
                )
                click = rng.standard_normal(m) * np.exp(-local / 0.002)
                _add(clacks, int((beat + offset) * sr), (ring + click) * strike * rng.uniform(0.7, 1.0))
        return rumble + 0.6 * hum + 2.5 * clacks


class Fireworks(Scene):
    """Bangs (decaying noise, a thump, crackle) and radial bursts of sparks on a dark sky over a city."""

    hue_range = (0.0, 0.83)  # sparks: red to violet
    pitch_range_hz = (300.0, 4000.0)  # the bang's brightness (spectral corner)
    size_range = (0.25, 0.9)  # burst diameter

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        canvas = self.canvas
        # One main burst per second, early in it, so it is full-grown and bright at the central frame.
        self.bursts: list[tuple[float, float, float, float, int, float]] = []
        for k in range(self.n_seconds):
            onset = k + rng.uniform(0.03, 0.2)
            if onset < plan.duration - 0.05:
                radius = self.size(plan.loudness[k]) / 2
                x, y = rng.uniform(-0.08, 0.08), rng.uniform(-0.1, 0.02)
                self.bursts.append((onset, x, y, radius, int(rng.integers(10, 22)), rng.uniform(0, np.pi)))
        top = np.array((0.02, 0.02, 0.08), np.float32) * rng.uniform(0.8, 1.3)
        low = np.array((0.12, 0.07, 0.2), np.float32) * rng.uniform(0.8, 1.3)
        mix = np.clip((canvas.v + canvas.half_height) / (2 * canvas.half_height), 0, 1)[..., None]
        self.background = (top + (low - top) * mix) * np.ones((plan.height, plan.width, 1), np.float32)
        stars = rng.random((plan.height, plan.width)) < 0.006
        self.background[stars] += 0.25
        skyline = np.zeros(plan.width, np.float32)
        x_edges = np.cumsum(rng.uniform(0.04, 0.1, size=64)) - canvas.half_width
        heights = rng.uniform(0.04, 0.14, size=64)
        columns = np.searchsorted(x_edges, canvas.u[0])
        skyline[:] = heights[np.minimum(columns, 63)]
        city = (canvas.v > 0.5 - skyline[None, :]).astype(np.float32)
        paint(self.background, city, _rgb(0.01, 0.01, 0.02))
        self.city = city
        self.spark_colour = _hsv(self.key_hue, 0.85, 1.0)

    def frame(self, t: float) -> np.ndarray:
        c, image = self.canvas, self.background.copy()
        for onset, x, y, radius, spokes, rotation in self.bursts:
            age = t - onset
            if age < 0 or age > 1.6:
                continue
            grown = radius * (1 - math.exp(-age / 0.12))
            brightness = math.exp(-max(age - 0.35, 0.0) / 0.3)
            du, dv = c.u - x, c.v - y - 0.08 * age * age  # sparks droop as they fall
            rho = np.hypot(du, dv)
            theta = np.arctan2(dv, du)
            rays = (0.5 + 0.5 * np.cos(spokes * (theta - rotation))) ** 12
            along = np.clip(rho / (grown + 1e-6), 0, 1.2)
            streak = rays * np.where(along <= 1.0, along**2, np.exp(-(((along - 1) / 0.05) ** 2)))
            tips = rays * np.exp(-(((rho - grown) / (0.03 + 0.1 * grown)) ** 2))
            core = np.exp(-((rho / (0.2 * grown + 1e-6)) ** 2)) * 0.6
            light = brightness * (np.maximum(streak, tips) * 1.2 + 0.15 * np.exp(-((rho / grown) ** 2)))
            image += (light[..., None] * self.spark_colour + (brightness * core)[..., None] * 0.9) * (
                1 - self.city[..., None]
            )
        return np.minimum(image, 1.0)

    def raw_audio(self) -> np.ndarray:
        sr, rng, n = self.plan.sample_rate, self.rng, self.plan.n_samples
        noise_track = np.zeros(n)
        thumps = np.zeros(n)
        for onset, *_ in self.bursts:
            m = int(1.0 * sr)
            local = np.arange(m) / sr
            bang = rng.standard_normal(m) * np.exp(-local / rng.uniform(0.08, 0.2))
            crackle = (
                (rng.random(m) < 40 / sr)
                * rng.standard_normal(m)
                * 6.0
                * (local > 0.25)
                * np.exp(-local / 0.5)
            )
            _add(noise_track, int(onset * sr), bang + crackle)
            _add(
                thumps,
                int(onset * sr),
                np.sin(2 * np.pi * rng.uniform(45, 70) * local) * np.exp(-local / 0.1),
            )
        corner = self.f0
        shaped = np.fft.irfft(
            np.fft.rfft(noise_track) / np.sqrt(1 + (np.fft.rfftfreq(n, 1 / sr) / corner) ** 2), n
        )
        shaped /= np.sqrt(np.mean(shaped**2)) + 1e-12
        distant = 0.05 * shaped_noise(rng, n, sr, lambda f: 1 / (1 + (f / 200) ** 2))
        return shaped + 0.8 * thumps + distant


class WaterFlowing(Scene):
    """Flowing band-filtered noise with bubbles, and water with moving wave bands below a bank."""

    hue_range = (165 / 360, 250 / 360)  # water: from green-teal to deep blue
    pitch_range_hz = (350.0, 3000.0)  # the flow noise's band centre
    size_range = (0.3, 0.85)  # water level, from the bottom of the central square

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        canvas = self.canvas
        banks = [(0.26, 0.4, 0.2), (0.48, 0.47, 0.45), (0.45, 0.35, 0.24), (0.33, 0.45, 0.28)]
        bank = np.array(banks[rng.integers(len(banks))], np.float32) * rng.uniform(0.85, 1.1)
        self.background = bank * (1 + 0.12 * canvas.texture(rng, cell=3))[..., None]
        self.flow = rng.uniform(0.4, 1.0) * (1 if rng.random() < 0.5 else -1)
        self.wave_count = rng.uniform(5, 9)
        self.water = _hsv(self.key_hue, 0.72, 0.78)
        self.foam = _hsv(self.key_hue, 0.25, 0.97)

    def frame(self, t: float) -> np.ndarray:
        c, image = self.canvas, self.background.copy()
        level = self.size_at(t)
        surface = 0.5 - level + 0.012 * np.sin(2 * np.pi * (3 * c.u - 0.6 * self.flow * t))  # (1, W)
        water = c.edge(surface - c.v)
        depth = np.clip(c.v - surface, 0, None)
        bands = np.sin(2 * np.pi * (self.wave_count * (c.v + 0.35 * c.u) * (1 + depth) - self.flow * t))
        shade = (1 + 0.14 * bands)[..., None] * self.water
        shade = np.minimum(shade, 1.0)
        image += water[..., None] * (shade - image)
        paint(image, water * np.clip((bands - 0.8) / 0.2, 0, 1), self.foam, 0.7)
        return image

    def raw_audio(self) -> np.ndarray:
        sr, rng, n = self.plan.sample_rate, self.rng, self.plan.n_samples
        t = self.times()
        centre = self.f0
        flow = shaped_noise(
            rng, n, sr, lambda f: np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre) / 0.8) ** 2)
        )
        swell = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t) + 0.15 * np.sin(2 * np.pi * 1.3 * t)
        bubbles = np.zeros(n)
        for onset in np.sort(rng.uniform(0, self.plan.duration, size=int(12 * self.plan.duration))):
            m = int(rng.uniform(0.015, 0.04) * sr)
            local = np.arange(m) / sr
            start_hz = centre * rng.uniform(0.8, 1.5)
            sweep = start_hz * (1 + 0.6 * local / local[-1])  # a bubble rises in pitch as it closes
            _add(
                bubbles,
                int(onset * sr),
                np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.sin(np.pi * local / local[-1]),
            )
        return flow * swell + 0.8 * bubbles


_SCENES: dict[str, type[Scene]] = {
    "baby_cry": BabyCry,
    "dog": Dog,
    "rail_transport": RailTransport,
    "fireworks": Fireworks,
    "water_flowing": WaterFlowing,
}
