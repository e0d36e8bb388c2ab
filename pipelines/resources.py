"""Dagster resources: the profile in force, where artifacts live, and which torch device to use."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from pipelines.data.steps import ArtifactFolders
from pipelines.profile import DEFAULT_DATA_DIR, DEFAULT_PROFILE, Profile, load_profile


class S2IProfile(ConfigurableResource):
    """The profile (`S2I_PROFILE`: demo, vegas or a YAML path) every asset reads its settings from."""

    profile: str = DEFAULT_PROFILE

    def load(self) -> Profile:
        return load_profile(self.profile)


class ArtifactStore(ConfigurableResource):
    """Artifacts live under `root` (`S2I_DATA_DIR`, default `data/` in the checkout), a folder per asset key."""

    root: str = str(DEFAULT_DATA_DIR)

    def folder(self, asset_key: str) -> Path:
        return self.artifact_folders().folder(asset_key)

    def artifact_folders(self) -> ArtifactFolders:
        """The same folders for the library's steps, which know no Dagster resource."""
        return ArtifactFolders(Path(self.root).expanduser())


class TorchDevice(ConfigurableResource):
    """`auto` picks cuda when available, else cpu. `cpu_threads` > 0 caps torch's CPU threads per step
    (`make demo` on a machine without a GPU runs one training step per core, one thread each)."""

    device: str = "auto"
    cpu_threads: int = 0

    def resolve(self) -> str:
        """The device to train on; also applies `cpu_threads` to this process."""
        import torch

        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        if device == "cpu" and self.cpu_threads > 0:
            torch.set_num_threads(self.cpu_threads)
        return device


def default_resources() -> dict[str, ConfigurableResource]:
    return {
        "profile": S2IProfile(profile=os.environ.get("S2I_PROFILE") or DEFAULT_PROFILE),
        "store": ArtifactStore(root=os.environ.get("S2I_DATA_DIR") or str(DEFAULT_DATA_DIR)),
        "torch_device": TorchDevice(
            device=os.environ.get("S2I_DEVICE") or "auto",
            cpu_threads=int(os.environ.get("S2I_CPU_THREADS") or 0),
        ),
    }
