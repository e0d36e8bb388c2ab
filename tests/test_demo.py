"""The demo data generator: real H.264+AAC clips in the VEGAS layout, deterministic, cached, with
sound and picture linked (loudness -> object size, pitch -> spectral centre and hue)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipelines.data.classes import VEGAS_CLASSES
from pipelines.data.demo import TRUTH_FILE, DemoClip, generate_demo, plan_demo, read_demo_truth
from pipelines.media.ffmpeg_binary import ffmpeg_exe

CLASSES = list(VEGAS_CLASSES)
CLIPS_PER_CLASS = 2
SEED = 6  # a seed whose two clips per class differ clearly in pitch (checked in a test)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, list[DemoClip]]:
    root = tmp_path_factory.mktemp("demo")
    clips = generate_demo(root, CLASSES, CLIPS_PER_CLASS, SEED, workers=2)
    return root, clips


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_files(root: Path) -> dict[str, Path]:
    return {str(path.relative_to(root)): path for path in sorted(root.rglob("*")) if path.is_file()}


def probe(path: Path) -> dict:
    """What `ffmpeg -i` says about a file (there is no ffprobe): duration, video and audio stream lines."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    text = result.stderr
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    video = re.search(r"Stream #0:\d.*?: Video: (\w+).*?, (\d+)x(\d+)[, ].*?([\d.]+) fps", text)
    audio = re.search(r"Stream #0:\d.*?: Audio: (\w+).*?, (\d+) Hz, (\w+)", text)
    assert duration and video and audio, f"ffmpeg could not read {path}:\n{text}"
    hours, minutes, seconds = duration.groups()
    return {
        "duration": int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        "video_codec": video.group(1),
        "width": int(video.group(2)),
        "height": int(video.group(3)),
        "fps": float(video.group(4)),
        "audio_codec": audio.group(1),
        "sample_rate": int(audio.group(2)),
        "channels": audio.group(3),
    }


def decode_audio_16k(path: Path) -> np.ndarray:
    command = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(command, capture_output=True, check=True).stdout, np.float32)


def decode_frames(path: Path, width: int, height: int) -> np.ndarray:
    command = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-fps_mode", "passthrough"]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def central_square(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    return frame[top : top + side, left : left + side].astype(np.float32) / 255.0


def vivid_mask(image: np.ndarray) -> np.ndarray:
    """Saturated, bright pixels: the sparks, the train and the water (skies, gravel and banks are dull)."""
    high, low = image.max(axis=-1), image.min(axis=-1)
    return (high > 0.45) & ((high - low) / np.maximum(high, 1e-6) > 0.55)


def mean_hue(image: np.ndarray, mask: np.ndarray) -> float:
    red, green, blue = (image[..., i][mask] for i in range(3))
    # the hue angle from the standard RGB -> (alpha, beta) projection, averaged as a direction
    angle = np.arctan2(np.sqrt(3) * (green - blue), 2 * red - green - blue)
    return float(np.angle(np.mean(np.exp(1j * angle))) / (2 * np.pi) % 1.0)


def ranks(values) -> np.ndarray:
    return np.argsort(np.argsort(np.asarray(values)))


def spearman(a, b) -> float:
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def test_layout_and_count(demo):
    root, clips = demo
    expected = {f"{name}/videos/video_{i:05d}.mp4" for name in CLASSES for i in range(CLIPS_PER_CLASS)}
    found = {str(path.relative_to(root)) for path in root.glob("*/videos/*.mp4")}
    assert found == expected
    assert len(clips) == len(expected)
    assert {str(clip.path.relative_to(root)) for clip in clips} == expected
    assert len({clip.clip_id for clip in clips}) == len(clips)
    assert sorted(all_files(root)) == sorted(expected | {TRUTH_FILE}), "no temporary files may be left"


def test_files_are_h264_aac_mp4_that_ffmpeg_reads(demo):
    root, clips = demo
    for clip in clips:
        info = probe(clip.path)
        assert info["video_codec"] == "h264", clip.path
        assert info["audio_codec"] == "aac", clip.path
        assert info["channels"] == "mono"
        assert (info["width"], info["height"], info["sample_rate"]) == (
            clip.width,
            clip.height,
            clip.sample_rate,
        )
        assert abs(info["duration"] - clip.duration) < 0.1, (clip.path, info["duration"], clip.duration)
        data = clip.path.read_bytes()
        assert 0 < data.find(b"moov") < data.find(b"mdat"), (
            "index first (+faststart): readable over plain HTTP"
        )


def test_truth_file_matches_the_clips(demo):
    root, clips = demo
    truth = read_demo_truth(root)
    assert (
        truth["seed"] == SEED and truth["classes"] == CLASSES and truth["clips_per_class"] == CLIPS_PER_CLASS
    )
    entries = {entry["clip_id"]: entry for entry in truth["clips"]}
    assert set(entries) == {clip.clip_id for clip in clips}
    for clip in clips:
        entry = entries[clip.clip_id]
        assert entry["sha256"] == sha256(clip.path)
        assert root / entry["path"] == clip.path and entry["class_name"] == clip.class_name
        assert (entry["width"], entry["height"], entry["sample_rate"]) == (
            clip.width,
            clip.height,
            clip.sample_rate,
        )
        assert (
            entry["duration"]
            == pytest.approx(clip.duration)
            == pytest.approx(entry["n_frames"] / entry["fps"])
        )
        assert entry["latent"] == clip.latent and set(clip.latent) >= {"pitch", "hue", "pitch_hz"}
        assert 0.0 <= clip.latent["pitch"] <= 1.0 and 0.0 <= clip.latent["hue"] < 1.0
        n_seconds = math.ceil(clip.duration)
        assert len(entry["loudness"]) == len(entry["size"]) == len(entry["rms_db"]) == n_seconds
        assert all(0.0 <= value <= 1.0 for value in entry["loudness"] + entry["size"])
        assert ranks(entry["size"]).tolist() == ranks(entry["loudness"]).tolist()


def test_same_seed_gives_identical_bytes_regardless_of_workers(demo, tmp_path):
    root, _ = demo
    generate_demo(tmp_path, CLASSES, CLIPS_PER_CLASS, SEED, workers=1)
    first, second = all_files(root), all_files(tmp_path)
    assert sorted(first) == sorted(second)
    for relative in first:
        assert sha256(first[relative]) == sha256(second[relative]), relative


def test_another_seed_changes_the_clips(demo, tmp_path):
    root, _ = demo
    [clip] = generate_demo(tmp_path, ["dog"], 1, SEED + 1)
    assert sha256(clip.path) != sha256(root / "dog/videos/video_00000.mp4")
    assert plan_demo(["dog"], 1, SEED + 1) != plan_demo(["dog"], 1, SEED)


def test_rerun_recomputes_nothing(demo):
    root, clips = demo
    before = {relative: path.stat().st_mtime_ns for relative, path in all_files(root).items()}
    messages: list[str] = []
    # How fast the reuse is: benchmarks/bench_demo.py.
    again = generate_demo(root, CLASSES, CLIPS_PER_CLASS, SEED, workers=2, log=messages.append)
    assert again == clips
    assert {relative: path.stat().st_mtime_ns for relative, path in all_files(root).items()} == before
    assert any(f"reusing {len(clips)} intact clips" in message for message in messages), messages


def test_damaged_clip_is_remade_and_clips_no_longer_planned_are_removed(demo, tmp_path):
    root, _ = demo
    copy = tmp_path / "demo"
    shutil.copytree(root, copy)
    damaged = copy / "fireworks/videos/video_00000.mp4"
    good_sha = sha256(damaged)
    damaged.write_bytes(damaged.read_bytes()[:1000])  # as if a copy had been cut short
    leftover = copy / "dog/videos/video_00000.mp4.partial-12345"
    leftover.write_bytes(b"half an mp4")
    messages: list[str] = []

    clips = generate_demo(copy, CLASSES, 1, SEED, log=messages.append)

    assert sha256(damaged) == good_sha
    assert not leftover.exists()
    assert sorted(copy.glob("*/videos/*.mp4")) == sorted(clip.path for clip in clips)
    assert len(clips) == len(CLASSES)
    assert any("reusing 4 intact clips" in message for message in messages), messages
    assert any("removed 5 clips" in message for message in messages), messages
    assert len(read_demo_truth(copy)["clips"]) == len(CLASSES)


def test_clips_vary_in_duration_size_rate_and_frame_rate(demo):
    root, clips = demo
    truth = read_demo_truth(root)
    assert len({clip.duration for clip in clips}) > 3
    assert any(clip.duration < 10 for clip in clips)
    assert all(3.0 <= clip.duration <= 10.0 for clip in clips)
    assert len({(clip.width, clip.height) for clip in clips}) > 1
    assert len({clip.width / clip.height for clip in clips}) > 1
    assert len({clip.sample_rate for clip in clips}) > 1
    assert len({entry["fps"] for entry in truth["clips"]}) > 1
    assert len({clip.latent["pitch"] for clip in clips}) == len(clips)


def test_loudness_sets_both_the_sound_level_and_the_object_size(demo):
    """Per second k: decoded RMS of [k, k+1) follows rms_db, and the vivid area of the central frame
    (sparks, train, water) rises with it."""
    root, clips = demo
    entries = {entry["clip_id"]: entry for entry in read_demo_truth(root)["clips"]}
    for name in ("fireworks", "rail_transport", "water_flowing"):
        levels, areas = [], []
        for clip in (clip for clip in clips if clip.class_name == name):
            entry = entries[clip.clip_id]
            audio = decode_audio_16k(clip.path)
            frames = decode_frames(clip.path, clip.width, clip.height)
            assert len(frames) == entry["n_frames"]
            for k in range(int(clip.duration)):
                second = audio[k * 16000 : (k + 1) * 16000].astype(np.float64)
                level = 10 * np.log10(np.mean(second**2))
                assert abs(level - entry["rms_db"][k]) < 2.5, (clip.path, k, level, entry["rms_db"][k])
                image = central_square(frames[int((k + 0.5) * entry["fps"])])
                levels.append(level)
                areas.append(vivid_mask(image).mean())
        assert len(levels) >= 6
        assert spearman(levels, areas) > 0.8, (name, levels, areas)


def test_pitch_sets_both_the_spectral_centre_and_the_hue(demo):
    root, clips = demo
    checked = 0
    for name in CLASSES:
        pair = [clip for clip in clips if clip.class_name == name]
        centres = []
        for clip in pair:
            audio = decode_audio_16k(clip.path).astype(np.float64)
            power = np.abs(np.fft.rfft(audio))[1:] ** 2
            frequencies = np.fft.rfftfreq(len(audio), 1 / 16000)[1:]
            centres.append(
                np.exp(np.sum(np.log(frequencies) * power) / np.sum(power))
            )  # log-frequency centroid
        if abs(pair[0].latent["pitch"] - pair[1].latent["pitch"]) > 0.15:
            assert (centres[0] < centres[1]) == (pair[0].latent["pitch"] < pair[1].latent["pitch"]), name
            checked += 1
        if name in ("fireworks", "rail_transport", "water_flowing"):
            for clip in pair:
                frames = decode_frames(clip.path, clip.width, clip.height)
                fps = len(frames) / clip.duration
                image = central_square(frames[int(1.5 * fps)])  # second 1's central frame: a burst is up
                error = abs((mean_hue(image, vivid_mask(image)) - clip.latent["hue"] + 0.5) % 1.0 - 0.5)
                assert error < 0.05, (clip.path, clip.latent["hue"])
    assert checked == len(CLASSES), "SEED should give every class two clips of clearly different pitch"


@pytest.mark.parametrize(
    ("classes", "clips_per_class", "seed", "workers", "field"),
    [(["cat"], 1, 0, 1, "cat"), (["dog", "dog"], 1, 0, 1, "twice"), (["dog"], 0, 0, 1, "clips_per_class"),
     (["dog"], 1, -1, 1, "seed"), (["dog"], 1, 0, 0, "workers")],
)  # fmt: skip
def test_bad_settings_are_refused_with_a_clear_message(
    tmp_path, classes, clips_per_class, seed, workers, field
):
    with pytest.raises(ValueError, match=field):
        generate_demo(tmp_path, classes, clips_per_class, seed, workers=workers)
    assert not (tmp_path / TRUTH_FILE).exists()


def test_truth_is_required_to_read_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="generate_demo"):
        read_demo_truth(tmp_path)


@pytest.mark.slow
def test_default_demo_size_generates_on_two_workers(tmp_path):
    # How long it takes (a minute at most on two cores): benchmarks/bench_demo.py.
    clips = generate_demo(tmp_path, CLASSES, 24, 0, workers=2)
    assert len(clips) == 120 and all(clip.path.is_file() for clip in clips)
    assert json.loads((tmp_path / TRUTH_FILE).read_text())["clips"][0]["sha256"]
