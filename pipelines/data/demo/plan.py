"""Clip plans: everything that defines a demo clip's content, drawn from (seed, class, index) first.

A plan fixes the clip's frame size, frame rate, sample rate and length, its `pitch` (one per clip) and its
`loudness` (one per started second). The scenes turn pitch into a key hue and a sound pitch, and loudness
into a sound level and an object size; `latent` reports those hidden values for a clip.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.data.classes import VEGAS_CLASSES
from pipelines.data.demo.scenes import SCENES
from pipelines.data.vegas import safe_clip_id

# Bump when the pictures, sounds or encoding change: clips made by another version are regenerated.
GENERATOR_VERSION = 1

# (width, height): 4:3, 16:9, 1:1 and 3:2, small so that a laptop renders and encodes them fast.
FRAME_SIZES: tuple[tuple[int, int], ...] = ((160, 120), (192, 108), (128, 128), (150, 100))
FRAME_RATES: tuple[int, ...] = (10, 12, 15, 20, 24, 25)
SAMPLE_RATES: tuple[int, ...] = (16000, 22050, 44100, 48000)
MIN_DURATION_S, MAX_DURATION_S = 3.0, 10.0
FULL_LENGTH_SHARE = 0.25  # VEGAS clips are mostly 10 s long; a quarter of demo clips are too
LOUDNESS_RANGE = (0.1, 1.0)

# x264 with one thread and bit-exact muxing: the same frames give the same bytes. Part of a plan's `spec`,
# so a change of encoding settings remakes cached clips.
VIDEO_ARGS = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-threads", "1"]
AUDIO_ARGS = ["-c:a", "aac", "-b:a", "64k"]
BITEXACT_ARGS = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact"]
BITEXACT_ARGS += ["-map_metadata", "-1"]  # no creation time, no encoder version strings in the file


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
        encoding = [*VIDEO_ARGS, *AUDIO_ARGS, *BITEXACT_ARGS]
        fields = {"generator_version": GENERATOR_VERSION, "encoding": encoding, **self.__dict__}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


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
    return draw_plan(class_name, index, rng)


def draw_plan(class_name: str, index: int, rng: np.random.Generator) -> ClipPlan:
    """A plan drawn from `rng`: frame size, frame rate, sample rate, length, pitch, loudness per second."""
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


def latent(plan: ClipPlan) -> dict[str, float]:
    """The clip's hidden values: pitch, the key colour's hue, the sound's pitch in Hz, the mean loudness."""
    scene = SCENES[plan.class_name]
    return {
        "pitch": plan.pitch,
        "hue": round(scene.hue(plan.pitch), 4),
        "pitch_hz": round(scene.pitch_hz(plan.pitch), 2),
        "loudness_mean": round(float(np.mean(plan.loudness)), 4),
    }


def demo_clip(root: Path, plan: ClipPlan) -> DemoClip:
    """The DemoClip a plan becomes once made under `root`."""
    return DemoClip(
        clip_id=plan.clip_id,
        class_name=plan.class_name,
        path=root / plan.relative_path,
        duration=plan.duration,
        width=plan.width,
        height=plan.height,
        sample_rate=plan.sample_rate,
        latent=latent(plan),
    )
