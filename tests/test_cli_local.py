"""`S2I_PROFILE=<file> dagster asset materialize -m pipelines --select '*shards'` on a local VEGAS folder."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.data.demo import generate_demo
from pipelines.media.ffmpeg_binary import ffmpeg_exe

# Class folders as VEGAS copies spell them.
FOLDERS = {
    "baby_cry": "Baby cry",
    "dog": "dog",
    "rail_transport": "Rail transport",
    "fireworks": "Fireworks",
    "water_flowing": "water_flowing",
}


def make_broken_clips(videos: Path) -> dict[str, str]:
    """Clips that must be skipped, with the reason each must be reported with."""
    (videos / "video_90000.mp4").write_bytes(b"")
    (videos / "video_90001.mp4").write_text("<!DOCTYPE html><html><body>Video unavailable</body></html>")
    ffmpeg = ffmpeg_exe()
    common = ["-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(
        [
            ffmpeg,
            *common,
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=160x120:r=10:d=3",
            "-c:v",
            "libx264",
            str(videos / "video_90002.mp4"),
        ],
        check=True,
    )
    subprocess.run(
        [
            ffmpeg,
            *common,
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=160x120:r=10:d=0.5",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:d=0.5",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            str(videos / "video_90003.mp4"),
        ],
        check=True,
    )
    return {
        "dog-video_90000": "empty file",
        "dog-video_90001": "not a video",
        "dog-video_90002": "no audio stream",
        "dog-video_90003": "shorter than 1 s",
    }


@pytest.mark.slow
def test_materialize_shards_on_a_local_vegas_copy(tmp_path):
    demo = tmp_path / "demo"
    generate_demo(demo, list(FOLDERS), clips_per_class=4, seed=11, workers=2)
    vegas = tmp_path / "VEGAS"
    for class_name, folder in FOLDERS.items():
        shutil.copytree(demo / class_name / "videos", vegas / folder / "videos")
    expected_skips = make_broken_clips(vegas / "dog" / "videos")
    (vegas / "Cat").mkdir()  # a class the profile does not ask for is ignored

    profile = tmp_path / "my-vegas.yaml"
    profile.write_text(
        "base: vegas\nsource: {kind: local, root: VEGAS}\nworkers: 2\nsplits: {train: 6, val: 2, test: 2}\n"
        "shards: {samples_per_shard: 8}\n"
    )
    data = tmp_path / "data"
    env = {
        **os.environ,
        "S2I_PROFILE": str(profile),
        "S2I_DATA_DIR": str(data),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    dagster = Path(sys.executable).parent / "dagster"
    run = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "pipelines", "--select", "*shards"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    clips = pd.read_parquet(data / "vegas_clips" / "clips.parquet")
    assert set(clips.class_name) == set(FOLDERS) and len(clips) == 20 + len(expected_skips)
    skipped = pd.read_parquet(data / "segments" / "skipped_clips.parquet")
    assert dict(zip(skipped.clip_id, skipped.reason, strict=True)) == expected_skips
    # Every skip says what was found (an empty file may say no more than its reason).
    explained = (skipped.detail.str.len() > 0) | (skipped.reason == "empty file")
    assert explained.all(), skipped[~explained].to_dict("records")

    counts = {
        split: len(list((data / "shards").glob(f"{split}-*.tar"))) for split in ("train", "val", "test")
    }
    assert counts == {"train": 4, "val": 2, "test": 2}  # 30, 10, 10 samples at 8 per shard
    assert not (data / "spectrogram_stats" / "stats.json").exists()  # not selected by '*shards'
