"""Extraction cost: one ffmpeg pass per clip against one call per segment and against decoding alone.

    python benchmarks/bench_extract.py [--clips N] [--dir DIR_OF_MP4S]

Makes N ~10 s clips (testsrc2 320x240 25 fps + a tone, H.264 + AAC) in a temporary folder, or takes the
first N *.mp4 of --dir, then measures on each clip in turn (interleaved, so background load hits every
method alike), as CPU time of this process + its child ffmpeg processes (getrusage deltas) and wall time:

  (a)  single pass   extract_clip: one ffmpeg call, all central frames + 16 kHz mono audio
  (a') single pass with ffmpeg's default threads (frame threads, filter threads = cores)
  (b)  naive         one ffmpeg call per segment: seek to k, take the frame at k + 0.5 and 1 s of audio
  (c)  floor         `ffmpeg -i clip -f null -`: decoding alone, ffmpeg's defaults
  (c') floor with -threads 1

then clips/s of extract_features (extract_clip + log_mel) over a ProcessPoolExecutor with 1 and 2
workers. Exits 1 if a target below is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from targets import Checks  # noqa: E402

from pipelines.data.progress import Progress  # noqa: E402
from pipelines.media.extract import extract_clip, extract_features  # noqa: E402
from pipelines.media.ffmpeg_binary import ffmpeg_exe  # noqa: E402

# Targets, on CPU time per clip (so background load on a shared machine moves them little). Measured on a
# 2-core AMD EPYC: single / floor 1.01 idle (README), 0.97-1.09 with other work running; naive / single
# 6.2 idle, 5.9-6.2 loaded.
# The single pass decodes the clip once, so it costs about what decoding alone does:
SINGLE_OVER_FLOOR_MAX = 1.25
# and it saves the naive way's per-segment ffmpeg start, seek and decode of each segment's keyframe span:
NAIVE_OVER_SINGLE_MIN = 4.0


@dataclass
class Cost:
    cpu_s: float = 0.0
    wall_s: float = 0.0
    clips: int = 0

    def add(self, cpu_s: float, wall_s: float) -> None:
        self.cpu_s += cpu_s
        self.wall_s += wall_s
        self.clips += 1

    def per_clip_ms(self) -> tuple[float, float]:
        return 1000 * self.cpu_s / max(self.clips, 1), 1000 * self.wall_s / max(self.clips, 1)


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (ffmpeg, pool workers), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured(work: Callable[[], object]) -> tuple[float, float]:
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    work()
    return cpu_seconds() - cpu0, time.perf_counter() - wall0


def make_clips(folder: Path, count: int) -> list[Path]:
    progress = Progress(count, "making test clips", log=print, unit="clips")
    paths = []
    for index in range(count):
        path = folder / f"clip_{index:03d}.mp4"
        subprocess.run(
            [
                ffmpeg_exe(),
                *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
                *("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=10"),
                *("-f", "lavfi", "-i", f"sine=f={220 + 20 * index}:r=44100:d=10"),
                *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)),
            ],
            check=True,
        )
        paths.append(path)
        progress.advance()
    return paths


def run_ffmpeg(args: list[str]) -> bytes:
    done = subprocess.run([ffmpeg_exe(), *args], capture_output=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
    return done.stdout


def floor(path: Path, threads: int | None) -> None:
    thread_args = [] if threads is None else ["-threads", str(threads)]
    run_ffmpeg(["-nostdin", "-hide_banner", "-nostats", *thread_args, "-i", str(path), "-f", "null", "-"])


def naive(path: Path, segments: int, scratch: Path) -> None:
    """What a straightforward implementation does: one ffmpeg call per segment, each seeking to k."""
    square = "crop=w='min(iw,ih)':h='min(iw,ih)',scale=96:96:flags=bicubic,format=rgb24"
    for k in range(segments):
        run_ffmpeg(
            [
                *("-nostdin", "-hide_banner", "-loglevel", "error"),
                *("-ss", str(k), "-t", "1", "-i", str(path)),
                *("-map", "0:V:0", "-vf", f"select='gte(t,0.5)',{square}", "-frames:v", "1"),
                *("-f", "rawvideo", "pipe:1"),
                *("-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "-y", str(scratch / "a.f32")),
            ]
        )


def _warm_worker() -> None:
    import numpy as np

    from pipelines.media.logmel import log_mel

    log_mel(np.zeros((1, 16000), np.float32))


def _features_task(path: str) -> tuple[int, float]:
    """Runs in a pool worker: (segments, CPU seconds of this task incl. its ffmpeg child)."""
    cpu0 = cpu_seconds()
    frames, _mel = extract_features(path)
    return frames.shape[0], cpu_seconds() - cpu0


def pool_rate(paths: list[Path], workers: int) -> tuple[float, float, int]:
    """(clips per second, CPU ms per clip, segments) of extract_features over a process pool."""
    with ProcessPoolExecutor(max_workers=workers, initializer=_warm_worker) as pool:
        list(pool.map(_warm_worker_probe, range(workers)))  # workers up and torch imported before timing
        start = time.perf_counter()
        results = list(pool.map(_features_task, [str(p) for p in paths]))
        wall = time.perf_counter() - start
    segments = sum(count for count, _ in results)
    cpu = sum(cpu_s for _, cpu_s in results)
    return len(paths) / wall, 1000 * cpu / len(paths), segments


def _warm_worker_probe(_: int) -> int:
    time.sleep(0.2)  # keep each worker busy so every worker gets started, not one twice
    return os.getpid()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=20, help="number of clips (default 20)")
    parser.add_argument("--dir", type=Path, help="use the *.mp4 files of this folder instead of test clips")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="s2i-bench-") as temp:
        scratch = Path(temp)
        if args.dir:
            paths = sorted(args.dir.glob("*.mp4"))[: args.clips]
            if not paths:
                sys.exit(f"--dir {args.dir}: no *.mp4 files there")
        else:
            paths = make_clips(scratch, args.clips)

        costs: dict[str, Cost] = defaultdict(Cost)
        segments_total = 0
        extract_clip(paths[0])  # page cache and binary warm before any timing
        progress = Progress(len(paths), "measuring", log=print, unit="clips")
        for path in paths:
            costs["(c) floor: ffmpeg -i clip -f null -"].add(*measured(lambda p=path: floor(p, None)))
            costs["(c') floor, -threads 1"].add(*measured(lambda p=path: floor(p, 1)))
            extracted: list[int] = []
            costs["(a) single pass (extract_clip)"].add(
                *measured(lambda p=path, out=extracted: out.append(extract_clip(p).segments))
            )
            costs["(a') single pass, ffmpeg default threads"].add(
                *measured(lambda p=path: extract_clip(p, threads=None))
            )
            costs["(b) naive: one ffmpeg call per segment"].add(
                *measured(lambda p=path, k=extracted[0]: naive(p, k, scratch))
            )
            segments_total += extracted[0]
            progress.advance()

        pools = {workers: pool_rate(paths, workers) for workers in (1, 2)}

    print(f"\n{len(paths)} clips, {segments_total} segments, {os.cpu_count()} cores\n")
    print(f"{'method':45s} {'CPU ms/clip':>12s} {'wall ms/clip':>13s}")
    for name in sorted(costs, key=lambda n: n[:4].replace("'", "z")):
        cpu_ms, wall_ms = costs[name].per_clip_ms()
        print(f"{name:45s} {cpu_ms:12.1f} {wall_ms:13.1f}")
    single = costs["(a) single pass (extract_clip)"].per_clip_ms()[0]
    floor_default = costs["(c) floor: ffmpeg -i clip -f null -"].per_clip_ms()[0]
    floor_one = costs["(c') floor, -threads 1"].per_clip_ms()[0]
    naive_cpu = costs["(b) naive: one ffmpeg call per segment"].per_clip_ms()[0]
    ratios = {
        "single / floor (CPU)": single / floor_default,
        "single / floor -threads 1 (CPU)": single / floor_one,
        "naive / single (CPU)": naive_cpu / single,
    }
    print()
    for label, value in ratios.items():
        print(f"{label:45s} {value:6.2f}")
    for workers, (rate, cpu_ms, _segments) in pools.items():
        print(f"extract_features, pool of {workers}: {rate:6.1f} clips/s, {cpu_ms:6.1f} CPU ms/clip")

    print("\n| measure (10 s clip, 320x240 25 fps H.264 + AAC) | CPU ms/clip | wall ms/clip |")
    print("|---|---:|---:|")
    for name in sorted(costs, key=lambda n: n[:4].replace("'", "z")):
        cpu_ms, wall_ms = costs[name].per_clip_ms()
        print(f"| {name} | {cpu_ms:.0f} | {wall_ms:.0f} |")
    for workers, (rate, cpu_ms, _segments) in pools.items():
        print(f"| extract_features + log-mel, {workers} worker(s): {rate:.1f} clips/s | {cpu_ms:.0f} | |")
    for label, value in ratios.items():
        print(f"| ratio {label} | {value:.2f} | |")

    checks = Checks("bench_extract")
    checks.at_most(
        "single pass / decode floor (CPU)", single / floor_default, SINGLE_OVER_FLOOR_MAX, unit="x"
    )
    checks.at_least(
        "naive per segment / single pass (CPU)", naive_cpu / single, NAIVE_OVER_SINGLE_MIN, unit="x"
    )
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main())
