"""Dagster resources: the profile in force, where artifacts live, and which torch device to use."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from pipelines.data.steps import ArtifactFolders
from pipelines.devices import REQUIRE_GPU_ENV, DeviceChoice, env_flag, resolve_device
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
    """`auto` leases a free GPU (`cuda:N`, pipelines/devices.py) for the step when torch sees one, else cpu;
    `require_gpu` (S2I_REQUIRE_GPU) makes a step without a usable GPU fail at once instead. `cpu_threads` > 0
    caps torch's CPU threads per step (`make demo` on a machine without a GPU runs one training step per core,
    one thread each)."""

    device: str = "auto"
    cpu_threads: int = 0
    require_gpu: bool = False
    _choice: DeviceChoice | None = PrivateAttr(default=None)

    def resolve(self, context=None) -> str:
        """The device to train on, held for the step; with the asset's `context`, logged and recorded in the
        materialization's metadata (`device`, `device_name`). Also applies `cpu_threads` to this process."""
        import torch

        if self._choice is None:
            who = (
                f"{context.asset_key.to_user_string()} (run {context.run.run_id[:8]})"
                if context is not None
                else ""
            )
            self._choice = resolve_device(
                self.device,
                require_gpu=self.require_gpu,
                log=context.log.info if context is not None else None,
                holder=who,
            )
        if self._choice.device == "cpu" and self.cpu_threads > 0:
            torch.set_num_threads(self.cpu_threads)
        if context is not None:
            context.log.info(f"{context.asset_key.to_user_string()} runs on {self._choice.describe()}")
            context.add_asset_metadata(self._choice.metadata())
        return self._choice.device

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._choice is not None:
            self._choice.release()


def default_resources() -> dict[str, ConfigurableResource]:
    return {
        "profile": S2IProfile(profile=os.environ.get("S2I_PROFILE") or DEFAULT_PROFILE),
        "store": ArtifactStore(root=os.environ.get("S2I_DATA_DIR") or str(DEFAULT_DATA_DIR)),
        "torch_device": TorchDevice(
            device=os.environ.get("S2I_DEVICE") or "auto",
            cpu_threads=int(os.environ.get("S2I_CPU_THREADS") or 0),
            require_gpu=env_flag(REQUIRE_GPU_ENV),
        ),
    }
