"""VEGAS on disk: find the clips of a local copy laid out `<root>/<class>/videos/*.mp4`.

Copies differ in how they spell class folders ("Baby cry", "baby_crying", "baby_cry"); names are
normalised, and only the profile's classes are taken. Clip ids are `<class>-<file stem>` (file stems such
as `video_00012` repeat across classes).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

from pipelines.data.classes import normalize_class_name
from pipelines.media.mp4 import mp4_duration

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm")

CLIP_COLUMNS = ["clip_id", "class_name", "path", "source", "duration", "status", "reason"]


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class ClipRecord:
    """One row of the clip table."""

    clip_id: str
    class_name: str
    path: str  # absolute path of the video on disk ("" when it could not be fetched)
    source: str  # path relative to the source root, or the URL it was fetched from
    duration: float  # seconds, from the container header; NaN when unknown
    status: str  # "ok", "failed", or "skipped" (not tried: a download stopped early; the next run tries it)
    reason: str  # why it failed ("" when ok)

    def row(self) -> dict:
        return asdict(self)


def safe_clip_id(class_name: str, stem: str) -> str:
    return f"{class_name}-{re.sub(r'[^A-Za-z0-9_-]+', '_', stem)}"


def class_folders(root: Path, classes: Collection[str]) -> dict[str, list[Path]]:
    """Map each wanted class to its folders under `root` (several spellings may exist)."""
    found: dict[str, list[Path]] = {name: [] for name in classes}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = normalize_class_name(folder.name)
        if name in found:
            found[name].append(folder)
    return found


def scan_local(root: Path, classes: Collection[str]) -> list[ClipRecord]:
    """Every video of the wanted classes under `root`, sorted by class then file name."""
    root = root.expanduser()
    if not root.is_dir():
        raise LayoutError(
            f"source.root {root} is not a folder. Point source.root in your profile at a VEGAS copy laid "
            "out <root>/<class>/videos/*.mp4."
        )
    folders = class_folders(root, classes)
    missing = [name for name, paths in folders.items() if not paths]
    if len(missing) == len(folders):
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise LayoutError(
            f"source.root {root} has no folder for any of the classes {sorted(classes)} "
            f"(found folders: {present[:20]}). Expected <root>/<class>/videos/*.mp4."
        )
    records: list[ClipRecord] = []
    seen: set[str] = set()
    for class_name, paths in folders.items():
        for folder in paths:
            video_dir = folder / "videos" if (folder / "videos").is_dir() else folder
            for path in sorted(video_dir.iterdir()):
                if (
                    path.suffix.lower() not in VIDEO_SUFFIXES
                    or not path.is_file()
                    or path.name.startswith(".")
                ):
                    continue
                clip_id = safe_clip_id(class_name, path.stem)
                if clip_id in seen:  # the same stem under two spellings of one class folder
                    clip_id = safe_clip_id(class_name, f"{folder.name}_{path.stem}")
                seen.add(clip_id)
                duration = mp4_duration(path)
                records.append(
                    ClipRecord(
                        clip_id=clip_id,
                        class_name=class_name,
                        path=str(path.absolute()),
                        source=str(path.relative_to(root)),
                        duration=float("nan") if duration is None else round(duration, 3),
                        status="ok",
                        reason="",
                    )
                )
    return records
