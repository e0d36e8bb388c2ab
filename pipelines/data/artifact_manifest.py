"""Each asset folder's `manifest.json`: what it was computed from, so an unchanged input is not recomputed.

The manifest is written last and atomically; its presence with a matching fingerprint means every file it
lists is complete. The fingerprint covers the asset's code version, the settings it used and its inputs'
fingerprints.

Reading one validates it: a manifest that does not parse (or lacks its fields) is logged with its path and
treated as absent, so the asset is recomputed rather than crashing; the owner of the folder (holding its
writer lock, `pipelines.assets.common.reuse`) moves it aside as `manifest.json.bad`. Before an output is
reused, every file the manifest lists is checked against the size and modification time recorded beside its
checksum; a file whose stamp differs is checksummed, and one whose checksum differs is logged, moved aside
(`<name>.bad`) and the asset recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.data.files import sha256_file, write_json_atomic

MANIFEST_NAME = "manifest.json"
BAD_SUFFIX = ".bad"

Log = Callable[[str], object]
logger = logging.getLogger(__name__)


def fingerprint(code_version: str, settings: Any, inputs: dict[str, str]) -> str:
    blob = json.dumps(
        {"code": code_version, "settings": settings, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Manifest:
    fingerprint: str
    data: dict[str, Any]
    folder: Path | None = field(default=None, compare=False)

    @property
    def files(self) -> dict[str, str]:
        return self.data.get("files", {})

    @property
    def stamps(self) -> dict[str, list[int]]:
        """{name: [size, mtime_ns]} of the listed files when they were written (manifests since #13)."""
        return self.data.get("stamps", {})


class ManifestDamaged(ValueError):
    """A manifest.json exists but cannot be used (not JSON, or its fields are missing or of the wrong type)."""


def _warn(log: Log | None, message: str) -> None:
    (log or logger.warning)(message)


def parse_manifest(path: Path) -> Manifest:
    """The manifest at `path`; FileNotFoundError when there is none, ManifestDamaged when it is unusable."""
    text = path.read_text()  # FileNotFoundError passes through
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ManifestDamaged(f"{path} is not valid JSON ({error}; {len(text)} characters)") from error
    if not isinstance(data, dict):
        raise ManifestDamaged(f"{path} holds a {type(data).__name__}, not an object")
    if not isinstance(data.get("fingerprint"), str):
        raise ManifestDamaged(f"{path} has no fingerprint")
    files = data.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ManifestDamaged(f"{path}: `files` is not a mapping of names to checksums")
    return Manifest(fingerprint=data["fingerprint"], data=data, folder=path.parent)


def read_manifest(folder: Path, log: Log | None = None) -> Manifest | None:
    """The folder's manifest, or None when it has none or it is damaged (logged with its path)."""
    path = folder / MANIFEST_NAME
    try:
        return parse_manifest(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ManifestDamaged as error:
        _warn(log, f"damaged manifest, ignored: {error}")
        return None
    except OSError as error:
        _warn(log, f"unreadable manifest {path}, ignored: {error}")
        return None


def manifest_problem(folder: Path) -> str | None:
    """Why `folder` has no usable manifest ('missing' or what is wrong with it); None when it has one."""
    try:
        parse_manifest(folder / MANIFEST_NAME)
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except (ManifestDamaged, OSError) as error:
        return str(error)
    return None


def move_aside(path: Path, log: Log | None = None, reason: str = "") -> Path | None:
    """Rename a damaged file to `<name>.bad` (replacing an older one) and log it; returns the new path."""
    target = path.with_name(path.name + BAD_SUFFIX)
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    _warn(log, f"{path}: {reason or 'damaged'}; moved aside to {target.name}, it will be rebuilt")
    return target


def quarantine_damaged_manifest(folder: Path, log: Log | None = None) -> bool:
    """Move a damaged manifest aside (only its folder's writer should): True when it did."""
    path = folder / MANIFEST_NAME
    problem = manifest_problem(folder)
    if problem is None or problem == "missing":
        return False
    return move_aside(path, log, problem) is not None


def file_problem(
    path: Path, checksum: str, stamp: list[int] | None, verify_checksum: bool = False
) -> str | None:
    """What is wrong with a listed file, or None when it matches the manifest.

    Its size must match; when its modification time also matches the file is taken as written (no read);
    otherwise (or with `verify_checksum`) its sha256 must match.
    """
    try:
        status = path.stat()
    except OSError:
        return "missing"
    if not path.is_file():
        return "not a file"
    if stamp:
        size, mtime_ns = stamp
        if status.st_size != size:
            return f"{status.st_size} bytes, the manifest says {size}"
        if status.st_mtime_ns == mtime_ns and not verify_checksum:
            return None
    elif not verify_checksum:
        return None  # a manifest from before sizes were recorded: presence is all it can tell
    if sha256_file(path) != checksum:
        return "its checksum differs from the manifest's"
    return None


def reusable_manifest(
    folder: Path,
    expected_fingerprint: str,
    verify_checksums: bool = False,
    *,
    log: Log | None = None,
    repair: bool = False,
) -> Manifest | None:
    """The folder's manifest if it matches `expected_fingerprint` and its files are all there and intact.

    With `repair` (the folder's writer, holding its lock), a damaged manifest and a damaged listed file are
    moved aside (`.bad`), so the recomputation that follows starts clean and the evidence stays.
    """
    if repair:
        quarantine_damaged_manifest(folder, log)
    manifest = read_manifest(folder, log)
    if manifest is None or manifest.fingerprint != expected_fingerprint:
        return None
    verify = verify_checksums
    stamps = manifest.stamps
    for name, checksum in manifest.files.items():
        path = folder / name
        problem = file_problem(path, checksum, stamps.get(name), verify)
        if problem is not None:
            if problem == "missing":
                _warn(log, f"{path} is listed in {folder / MANIFEST_NAME} but missing; recomputing")
            elif repair:
                move_aside(path, log, problem)
            else:
                _warn(log, f"{path}: {problem}; recomputing")
            return None
    return manifest


def write_manifest(
    folder: Path, fingerprint_: str, *, settings: Any, inputs: dict[str, str], files: list[Path], **extra: Any
) -> Manifest:
    files = sorted(files)
    names = [str(path.relative_to(folder)) for path in files]
    stamps = {}
    for name, path in zip(names, files, strict=True):
        status = path.stat()
        stamps[name] = [status.st_size, status.st_mtime_ns]
    data = {
        "fingerprint": fingerprint_,
        "settings": settings,
        "inputs": inputs,
        "files": {name: sha256_file(path) for name, path in zip(names, files, strict=True)},
        "stamps": stamps,
        **extra,
    }
    write_json_atomic(folder / MANIFEST_NAME, data)
    return Manifest(fingerprint=fingerprint_, data=data, folder=folder)
