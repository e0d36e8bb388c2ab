"""Each asset folder's `manifest.json`: what it was computed from, so an unchanged input is not recomputed.

The manifest is written last and atomically; its presence with a matching fingerprint means every file it
lists is complete. The fingerprint covers the asset's code version, the settings it used and its inputs'
fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.data.files import sha256_file, write_json_atomic

MANIFEST_NAME = "manifest.json"


def fingerprint(code_version: str, settings: Any, inputs: dict[str, str]) -> str:
    blob = json.dumps(
        {"code": code_version, "settings": settings, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Manifest:
    fingerprint: str
    data: dict[str, Any]

    @property
    def files(self) -> dict[str, str]:
        return self.data.get("files", {})


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
        return Manifest(fingerprint=data["fingerprint"], data=data)
    except (OSError, ValueError, KeyError):
        return None


def reusable_manifest(
    folder: Path, expected_fingerprint: str, verify_checksums: bool = False
) -> Manifest | None:
    """The folder's manifest if it matches `expected_fingerprint` and its files are all there."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.fingerprint != expected_fingerprint:
        return None
    for name, checksum in manifest.files.items():
        path = folder / name
        if not path.is_file():
            return None
        if verify_checksums and sha256_file(path) != checksum:
            return None
    return manifest


def write_manifest(
    folder: Path, fingerprint_: str, *, settings: Any, inputs: dict[str, str], files: list[Path], **extra: Any
) -> Manifest:
    data = {
        "fingerprint": fingerprint_,
        "settings": settings,
        "inputs": inputs,
        "files": {str(path.relative_to(folder)): sha256_file(path) for path in sorted(files)},
        **extra,
    }
    write_json_atomic(folder / MANIFEST_NAME, data)
    return Manifest(fingerprint=fingerprint_, data=data)
