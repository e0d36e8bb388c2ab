"""Dagster resources: the profile in force, where artifacts live, and which torch device to use."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from pipelines.profile import DEFAULT_PROFILE, Profile, load_profile

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class S2IProfile(ConfigurableResource):
    """The profile (`S2I_PROFILE`: demo, vegas or a YAML path) every asset reads its settings from."""

    profile: str = DEFAULT_PROFILE

    def load(self) -> Profile:
        return load_profile(self.profile)


class ArtifactStore(ConfigurableResource):
    """Artifacts live under `root` (`S2I_DATA_DIR`, default `data/` in the checkout), a folder per asset key."""

    root: str = str(DEFAULT_DATA_DIR)

    def folder(self, asset_key: str) -> Path:
        path = Path(self.root).expanduser() / asset_key
        path.mkdir(parents=True, exist_ok=True)
        return path


class TorchDevice(ConfigurableResource):
    """`auto` picks cuda when available, else cpu."""

    device: str = "auto"

    def resolve(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


def default_resources() -> dict[str, ConfigurableResource]:
    return {
        "profile": S2IProfile(profile=os.environ.get("S2I_PROFILE") or DEFAULT_PROFILE),
        "store": ArtifactStore(root=os.environ.get("S2I_DATA_DIR") or str(DEFAULT_DATA_DIR)),
        "torch_device": TorchDevice(device=os.environ.get("S2I_DEVICE") or "auto"),
    }
