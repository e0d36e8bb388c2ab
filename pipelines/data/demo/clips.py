"""Making the demo data set: `generate_demo` plans the clips, reuses intact ones, renders and encodes the
rest with ffmpeg (in a process pool when asked), removes leftovers and keeps the truth file up to date."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from pipelines.data.demo.plan import (
    AUDIO_ARGS,
    BITEXACT_ARGS,
    VIDEO_ARGS,
    ClipPlan,
    DemoClip,
    demo_clip,
    plan_demo,
)
from pipelines.data.demo.scenes import SCENES
from pipelines.data.demo.truth import PARTIAL_MARK, TRUTH_FILE, file_sha256, read_truth, write_truth
from pipelines.data.progress import Progress
from pipelines.media.ffmpeg_binary import ffmpeg_exe


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
    previous = read_truth(root / TRUTH_FILE)
    _remove_leftovers(root, plans, previous, say)

    sha_by_id: dict[str, str] = {}
    to_make: list[ClipPlan] = []
    for plan in plans:
        entry = previous.get(plan.relative_path, {})
        same_definition = entry.get("spec") == plan.spec
        if same_definition and entry.get("sha256") == file_sha256(root / plan.relative_path):
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
                write_truth(truth_path, plans, sha_by_id, seed, clips_per_class, ffmpeg_version)
                last_truth_write = time.monotonic()
    finally:
        write_truth(truth_path, plans, sha_by_id, seed, clips_per_class, ffmpeg_version)
    return [demo_clip(root, plan) for plan in plans]


def _remove_leftovers(
    root: Path, plans: list[ClipPlan], previous: dict[str, dict], say: Callable[[str], object]
) -> None:
    """Delete half-written files of a killed run, and clips an earlier run made that this run does not."""
    planned = {plan.relative_path for plan in plans}
    for partial in [*root.glob(f"*/videos/*{PARTIAL_MARK}*"), *root.glob(f"{TRUTH_FILE}{PARTIAL_MARK}*")]:
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
    scene = SCENES[plan.class_name](plan, rng)
    frames = scene.frames()  # (n_frames, H, W, 3) uint8
    audio = scene.audio()  # (n_samples,) float in [-1, 1]
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")

    suffix = f"{PARTIAL_MARK}{os.getpid()}"
    temp_audio = final.with_name(f"{final.stem}.s16le{suffix}")
    temp_video = final.with_name(f"{final.name}{suffix}")
    command = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{plan.width}x{plan.height}",
        "-framerate", str(plan.fps), "-i", "pipe:0",
        "-f", "s16le", "-ar", str(plan.sample_rate), "-ac", "1", "-i", str(temp_audio),
        "-map", "0:v:0", "-map", "1:a:0", *VIDEO_ARGS, *AUDIO_ARGS, *BITEXACT_ARGS,
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
    return file_sha256(final) or ""
