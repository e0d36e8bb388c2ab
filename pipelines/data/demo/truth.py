"""The truth file `root/demo_truth.json`: settings, every clip's latent values, loudness, size and sha256.

`generate_demo` writes it (atomically, and only when its text changes) and reads it back to reuse clips it
finds intact; later stages read it with `read_demo_truth` as ground truth.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipelines.data.demo.plan import GENERATOR_VERSION, ClipPlan, latent
from pipelines.data.demo.scenes import SCENES
from pipelines.data.demo.sound import rms_db

TRUTH_FILE = "demo_truth.json"
PARTIAL_MARK = ".partial-"  # in the name of a file being written: a killed run's leftovers carry it


def file_sha256(path: Path) -> str | None:
    """The file's sha256 in hex, or None when there is no such file."""
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


def read_truth(path: Path) -> dict[str, dict]:
    """Earlier truth entries by relative path; an unreadable file only means nothing is reused."""
    try:
        data = json.loads(path.read_text())
        return {entry["path"]: entry for entry in data["clips"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _truth_entry(plan: ClipPlan, sha256: str) -> dict:
    scene = SCENES[plan.class_name]
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
        "latent": latent(plan),
        "loudness": list(plan.loudness),
        "rms_db": [round(rms_db(value), 2) for value in plan.loudness],
        "size": [round(scene.size(value), 4) for value in plan.loudness],
        "spec": plan.spec,
        "sha256": sha256,
    }


def write_truth(
    path: Path,
    plans: list[ClipPlan],
    sha_by_id: dict[str, str],
    seed: int,
    clips_per_class: int,
    ffmpeg_version: str,
) -> None:
    """Write the truth file for the clips of `plans` made so far (those in `sha_by_id`)."""
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
    temp = path.with_name(f"{path.name}{PARTIAL_MARK}{os.getpid()}")
    temp.write_text(text)
    os.replace(temp, path)
