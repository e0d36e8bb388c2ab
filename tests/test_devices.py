"""The GPU lease (pipelines/devices.py) and the choice of device, on the CPU.

The device count is a parameter of the lease, so separate processes competing for "GPUs" need no GPU; the
choice of device is checked against a torch whose CUDA answers are stood in for.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines import devices
from pipelines.devices import (
    GPUNotAvailable,
    NoFreeDevice,
    default_lease_dir,
    env_flag,
    lease_device,
    resolve_device,
    steps_per_gpu,
)

ROOT = Path(__file__).resolve().parent.parent

# A step in its own process: leases one of COUNT devices, says which, and holds it until killed.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pipelines.devices import lease_device
    count, folder, holder = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    lease = lease_device(count, folder, poll_s=0.05, holder=holder, log=lambda m: print("LOG", m, flush=True))
    print("LEASED", lease.index, flush=True)
    time.sleep(600)
    """
)


class Step:
    """A process holding (or waiting for) a lease, as a GPU step does."""

    def __init__(self, count: int, folder: Path, holder: str = "step"):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(count), str(folder), holder],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.strip())
        self._queue.put(None)

    def next_line(self, timeout: float = 20.0) -> str:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            raise AssertionError(f"no line from the step; stderr: {self.stop()}")
        self.lines.append(line)
        return line

    def leased(self, timeout: float = 20.0) -> int:
        while True:
            line = self.next_line(timeout)
            if line.startswith("LEASED "):
                return int(line.split()[1])

    def kill(self) -> None:
        """SIGKILL: no Python cleanup runs, no finally, no atexit."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.kill()
        return self.proc.stderr.read()


@pytest.fixture
def steps():
    started: list[Step] = []

    def start(count: int, folder: Path, holder: str = "step") -> Step:
        step = Step(count, folder, holder)
        started.append(step)
        return step

    yield start
    for step in started:
        step.stop()


def test_two_processes_take_two_different_devices(tmp_path, steps):
    first, second = steps(2, tmp_path), steps(2, tmp_path)
    assert {first.leased(), second.leased()} == {0, 1}
    with pytest.raises(NoFreeDevice, match="all 2 leases are taken"):
        lease_device(2, tmp_path, wait=False)


def test_a_killed_holder_frees_its_device_for_the_next(tmp_path, steps):
    holder = steps(1, tmp_path)
    assert holder.leased() == 0
    with pytest.raises(NoFreeDevice):
        lease_device(1, tmp_path, wait=False)
    holder.kill()
    # Nothing was cleaned up (the lock file is still there): the kernel dropped the lock with the process.
    assert (tmp_path / "cuda0.0.lock").exists()
    with lease_device(1, tmp_path, wait=False) as lease:
        assert lease.device == "cuda:0"


def test_a_third_step_waits_while_two_devices_are_held(tmp_path, steps):
    first, second = steps(2, tmp_path, "gan_128 (run a)"), steps(2, tmp_path, "gan_256 (run a)")
    held = {first.leased(): first, second.leased(): second}
    third = steps(2, tmp_path, "gan_512 (run b)")
    waiting = third.next_line()
    # It says what it waits for: which step holds which GPU.
    assert waiting.startswith("LOG waiting for a free GPU: all 2 leases are taken"), waiting
    assert "cuda:0 held by gan_" in waiting and "cuda:1 held by gan_" in waiting
    assert f"pid {first.proc.pid}" in waiting and f"pid {second.proc.pid}" in waiting
    time.sleep(1.0)  # twenty polls later, it still waits rather than share
    assert third.proc.poll() is None and not any(line.startswith("LEASED") for line in third.lines)
    held[1].kill()
    assert third.leased() == 1
    assert any(line.startswith("LOG leased cuda:1 after waiting") for line in third.lines)


def test_a_forked_child_does_not_keep_its_parents_device(tmp_path):
    """A DataLoader worker or pool process outliving a killed step must not hold its GPU."""
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from pipelines.devices import lease_device
        lease = lease_device(1, {str(tmp_path)!r})
        child_pid = {str(tmp_path / "child.pid")!r}
        if os.fork() == 0:  # the child runs on past the fork, as a DataLoader worker would
            with open(child_pid + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(child_pid + ".tmp", child_pid)
            time.sleep(600)
            os._exit(0)
        while not os.path.exists(child_pid):
            time.sleep(0.01)
        print("LEASED", lease.index, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert parent.stdout.readline().split() == ["LEASED", "0"]
        child = (tmp_path / "child.pid").read_text()
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=20)
        os.kill(int(child), 0)  # the orphan still lives
        with lease_device(1, tmp_path, wait=False) as lease:
            assert lease.index == 0
    finally:
        if parent.poll() is None:
            parent.kill()
        if child is not None:
            try:
                os.kill(int(child), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_leases_in_one_process_are_distinct_and_released(tmp_path):
    first = lease_device(2, tmp_path, wait=False)
    second = lease_device(2, tmp_path, wait=False)
    assert {first.device, second.device} == {"cuda:0", "cuda:1"}
    with pytest.raises(NoFreeDevice):
        lease_device(2, tmp_path, wait=False)
    index = first.index
    first.release()
    first.release()  # idempotent
    assert not first.held and second.held
    again = lease_device(2, tmp_path, wait=False)
    assert again.index == index
    again.release()
    second.release()


def test_steps_spread_over_gpus_before_they_share_one(tmp_path):
    leases = [lease_device(2, tmp_path, per_device=2, wait=False) for _ in range(4)]
    assert [(lease.index, lease.slot) for lease in leases] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    with pytest.raises(NoFreeDevice):
        lease_device(2, tmp_path, per_device=2, wait=False)
    for lease in leases:
        lease.release()


def test_gpus_are_known_by_name_whatever_their_number(tmp_path):
    """Two processes that number the GPUs differently (CUDA_VISIBLE_DEVICES=0,1 and 1,0) agree on which is taken."""
    first = lease_device(2, tmp_path, names=["gpu-A", "gpu-B"], wait=False)
    assert (first.index, first.path.name) == (0, "gpu-A.0.lock")
    second = lease_device(2, tmp_path, names=["gpu-B", "gpu-A"], wait=False)
    assert (second.index, second.path.name) == (0, "gpu-B.0.lock")  # its cuda:0 is the other card
    with pytest.raises(NoFreeDevice):
        lease_device(2, tmp_path, names=["gpu-A", "gpu-B"], wait=False)
    first.release()
    second.release()


def test_a_named_device_is_waited_for(tmp_path):
    held = lease_device(2, tmp_path, only=1, wait=False)
    assert held.device == "cuda:1"
    with pytest.raises(NoFreeDevice, match="all 1 leases"):
        lease_device(2, tmp_path, only=1, wait=False)
    with pytest.raises(ValueError, match="cuda:2 does not exist"):
        lease_device(2, tmp_path, only=2)
    held.release()


def test_the_lock_file_says_who_holds_it(tmp_path):
    with lease_device(1, tmp_path, holder="gan_512 (run 0123abcd)") as lease:
        record = json.loads(lease.path.read_text())
        assert record["holder"] == "gan_512 (run 0123abcd)" and record["pid"] == os.getpid()


def test_lease_folder_and_settings_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(devices.LEASE_DIR_ENV, raising=False)
    default = default_lease_dir()
    assert default.name == f"s2i-gpu-leases-{os.getuid()}"
    monkeypatch.setenv(devices.LEASE_DIR_ENV, str(tmp_path / "leases"))
    assert default_lease_dir() == tmp_path / "leases"
    with lease_device(1) as lease:
        assert lease.path.parent == tmp_path / "leases"

    assert steps_per_gpu({}) == 1 and steps_per_gpu({"S2I_STEPS_PER_GPU": "3"}) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match="S2I_STEPS_PER_GPU"):
            steps_per_gpu({"S2I_STEPS_PER_GPU": bad})
    assert env_flag("S2I_REQUIRE_GPU", {}) is False
    assert env_flag("S2I_REQUIRE_GPU", {"S2I_REQUIRE_GPU": "1"}) is True
    assert env_flag("S2I_REQUIRE_GPU", {"S2I_REQUIRE_GPU": " Yes "}) is True
    assert env_flag("S2I_REQUIRE_GPU", {"S2I_REQUIRE_GPU": "0"}) is False
    with pytest.raises(ValueError, match="S2I_REQUIRE_GPU='maybe'"):
        env_flag("S2I_REQUIRE_GPU", {"S2I_REQUIRE_GPU": "maybe"})


# --- resolve_device: the choice TorchDevice makes ----------------------------------------------------------


@pytest.fixture
def no_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    """A torch that sees two GPUs; records which one the process made current."""
    import torch

    current: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: SimpleNamespace(uuid=f"uuid-{i}", name="Fake GPU")
    )
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"Fake GPU {i}")
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    return current


def test_auto_without_cuda_is_the_cpu(tmp_path, no_cuda):
    choice = resolve_device("auto", folder=tmp_path)
    assert (choice.device, choice.lease) == ("cpu", None)
    assert choice.metadata() == {"device": "cpu"}
    assert resolve_device("cpu", require_gpu=True, folder=tmp_path).device == "cpu"  # asked for by name


@pytest.mark.parametrize(
    ("requested", "require_gpu", "says"), [("auto", True, "S2I_REQUIRE_GPU=1"), ("cuda", False, "'cuda'")]
)
def test_a_gpu_asked_for_and_not_found_fails_at_once(tmp_path, no_cuda, requested, require_gpu, says):
    with pytest.raises(GPUNotAvailable) as failure:
        resolve_device(requested, require_gpu=require_gpu, folder=tmp_path)
    message = str(failure.value)
    assert says in message
    for what_to_check in ("driver", "nvidia-smi", "nvidia-container-toolkit", "CUDA_VISIBLE_DEVICES"):
        assert what_to_check in message, what_to_check
    assert not list(tmp_path.iterdir())  # nothing leased


def test_each_step_leases_its_own_gpu(tmp_path, two_gpus):
    first = resolve_device("auto", require_gpu=True, folder=tmp_path, holder="gan_128")
    second = resolve_device("cuda", folder=tmp_path)
    assert (first.device, second.device) == ("cuda:0", "cuda:1")
    assert two_gpus == [0, 1]  # each made its GPU the process's current one
    assert first.metadata() == {"device": "cuda:0", "device_name": "Fake GPU 0"}
    assert first.describe() == f"cuda:0 (Fake GPU 0), leased in {tmp_path}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-uuid-0.0.lock", "gpu-uuid-1.0.lock"]
    with pytest.raises(NoFreeDevice):
        resolve_device("auto", folder=tmp_path, wait=False)
    first.release()
    pinned = resolve_device("cuda:0", folder=tmp_path, wait=False)
    assert pinned.device == "cuda:0"
    pinned.release()
    second.release()
    with pytest.raises(ValueError, match="cuda:x"):
        resolve_device("cuda:x", folder=tmp_path)


def test_other_devices_are_used_as_given(tmp_path, two_gpus):
    assert resolve_device("mps", folder=tmp_path).device == "mps"
    assert not list(tmp_path.iterdir())
