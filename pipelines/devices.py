"""Which torch device a step runs on, and the lease that gives every GPU step a GPU of its own.

Plain Python, no Dagster import: `TorchDevice` (pipelines/resources.py) calls `resolve_device`; the tests call
`lease_device` with a device count of their choosing, so none of this needs a GPU to be tested.

The lease. Each visible GPU has `S2I_STEPS_PER_GPU` (default 1) lock files in a folder that every step on the
host shares: `S2I_GPU_LEASE_DIR`, by default `s2i-gpu-leases-<uid>` in the temporary folder (`/tmp`); the compose
deployment mounts its `s2i_gpu_leases` volume there in every run container. A step holds one with `flock` on a
file descriptor that it keeps open, so the kernel gives the GPU back whenever the step ends, however it ends
(SIGKILL and the OOM killer included): there is no file to delete and nothing to clean up. Forked children
(DataLoader workers, process pools) close their copies, so an orphan cannot keep a dead step's GPU. The files
are named after each GPU's UUID, so processes that number the GPUs differently (another CUDA_VISIBLE_DEVICES)
still agree on which card is taken. When every GPU is taken, a step waits, saying for what, rather than share a
card. On Kubernetes a GPU step's pod sees one GPU, so its lease is that one.

`S2I_REQUIRE_GPU=1` (set by the GPU deployments: `make dev` on a machine with NVIDIA GPUs, docker-compose.gpu.yml,
the GPU steps' pods) makes a step that finds no usable GPU fail at once, with what to check, instead of training
on the CPU for days.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LEASE_DIR_ENV = "S2I_GPU_LEASE_DIR"
STEPS_PER_GPU_ENV = "S2I_STEPS_PER_GPU"
REQUIRE_GPU_ENV = "S2I_REQUIRE_GPU"

# The oldest driver branch that runs each CUDA major version (NVIDIA's minor-version compatibility table).
MIN_DRIVER = {"11": "450", "12": "525", "13": "580"}

Log = Callable[[str], None]


class NoFreeDevice(RuntimeError):
    """Every device is leased and the caller asked not to wait."""


class GPUNotAvailable(RuntimeError):
    """A GPU was asked for (`cuda`, or `S2I_REQUIRE_GPU=1`) and torch cannot use one."""


# --- settings from the environment --------------------------------------------------------------------------


def env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off (unset or empty: no)."""
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={raw!r} is neither on nor off; use 1 or 0")


def steps_per_gpu(environ: Mapping[str, str] = os.environ) -> int:
    """How many GPU steps may share one GPU (`S2I_STEPS_PER_GPU`, default 1)."""
    raw = environ.get(STEPS_PER_GPU_ENV, "").strip() or "1"
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{STEPS_PER_GPU_ENV}={raw!r} is not a whole number of at least 1")
    return value


def default_lease_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """`S2I_GPU_LEASE_DIR`, else `s2i-gpu-leases-<uid>` in the temporary folder (shared by this user's steps)."""
    configured = environ.get(LEASE_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(tempfile.gettempdir()) / f"s2i-gpu-leases-{os.getuid()}"


# --- the lease ----------------------------------------------------------------------------------------------

_held_fds: set[int] = set()
_held_lock = threading.Lock()


def _close_leases_in_child() -> None:
    """A forked child must not keep its parent's GPU: its copies of the lease descriptors are closed, so the
    lock lives exactly as long as the process that took it (flock locks belong to the open file, which a fork
    shares)."""
    for fd in list(_held_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_fds.clear()


os.register_at_fork(after_in_child=_close_leases_in_child)


@dataclass
class DeviceLease:
    """One GPU (`index`, as this process numbers them) held by this process until `release()` or its end."""

    index: int
    slot: int
    path: Path
    _fd: int | None = field(repr=False)
    _pid: int = field(repr=False)

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"

    @property
    def held(self) -> bool:
        return self._fd is not None and self._pid == os.getpid()

    def release(self) -> None:
        """Give the GPU back (closing the descriptor drops the lock). Idempotent; a no-op in a forked child."""
        fd, self._fd = self._fd, None
        if fd is None or self._pid != os.getpid():
            return
        with _held_lock:
            _held_fds.discard(fd)
        os.close(fd)

    def __enter__(self) -> DeviceLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a lease nobody holds on to any more is given back
        try:
            self.release()
        except Exception:  # noqa: S110  (interpreter shutdown: the process's end frees it anyway)
            pass


def lease_device(
    count: int,
    folder: Path | str | None = None,
    *,
    names: Sequence[str] | None = None,
    only: int | None = None,
    per_device: int = 1,
    wait: bool = True,
    poll_s: float = 1.0,
    log: Log | None = None,
    log_every_s: float = 300.0,
    holder: str = "",
) -> DeviceLease:
    """Lease one of `count` devices (`cuda:0` .. `cuda:{count-1}`), or device `only`, for this process.

    `names[i]` names device i's lock files (resolve_device passes the GPU UUIDs; default `cuda{i}`), and each
    device has `per_device` of them, so that many steps may share it. Free devices are taken in order, first
    slots before second ones, so steps spread over the GPUs before they double up. When all are held: wait,
    polling every `poll_s` seconds and logging what is waited for (at once, then every `log_every_s`), or
    raise NoFreeDevice when `wait` is False. `holder` (e.g. the asset and run) is written into the lock file
    for the messages of those who wait.
    """
    if count < 1:
        raise ValueError(f"no device to lease: count={count}")
    if per_device < 1:
        raise ValueError(f"per_device={per_device} must be at least 1")
    names = list(names) if names is not None else [f"cuda{i}" for i in range(count)]
    if len(names) != count:
        raise ValueError(f"{len(names)} names for {count} devices")
    if only is not None and not 0 <= only < count:
        raise ValueError(f"device cuda:{only} does not exist: {count} visible (cuda:0 .. cuda:{count - 1})")
    folder = Path(folder) if folder is not None else default_lease_dir()
    _prepare_folder(folder)
    indices = [only] if only is not None else list(range(count))
    candidates = [
        (index, slot, folder / f"{_file_stem(names[index])}.{slot}.lock")
        for slot in range(per_device)
        for index in indices
    ]
    started = time.monotonic()
    last_logged: float | None = None
    while True:
        for index, slot, path in candidates:
            fd = _try_lock(path)
            if fd is not None:
                _write_holder(fd, holder)
                lease = DeviceLease(index, slot, path, fd, os.getpid())
                if last_logged is not None and log is not None:
                    log(f"leased {lease.device} after waiting {time.monotonic() - started:.0f} s")
                return lease
        if not wait:
            raise NoFreeDevice(_busy_message(candidates, folder))
        now = time.monotonic()
        if log is not None and (last_logged is None or now - last_logged >= log_every_s):
            log(f"waiting for a free GPU: {_busy_message(candidates, folder)}")
            last_logged = now
        time.sleep(poll_s)


def _prepare_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder == default_lease_dir({}) and folder.stat().st_uid != os.getuid():
        raise PermissionError(
            f"{folder} belongs to another user; set {LEASE_DIR_ENV} to a folder of yours that every step shares"
        )


def _file_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding `path`'s exclusive flock, or None when another open file holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    with _held_lock:
        _held_fds.add(fd)
    return fd


def _write_holder(fd: int, holder: str) -> None:
    """Who holds the lease, for the messages of those who wait (the lock itself is the flock, not this text)."""
    record = {
        "holder": holder,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)


def _describe_holder(path: Path) -> str:
    try:
        record = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        record = {}
    if not record:
        return "?"
    who = f"{record['holder']}, " if record.get("holder") else ""
    return f"{who}pid {record.get('pid')} on {record.get('host')} since {record.get('since')}"


def _busy_message(candidates: Sequence[tuple[int, int, Path]], folder: Path) -> str:
    held = "; ".join(f"cuda:{index} held by {_describe_holder(path)}" for index, _slot, path in candidates)
    return f"all {len(candidates)} leases are taken ({held}); leases live in {folder}"


# --- choosing the device ------------------------------------------------------------------------------------


@dataclass
class DeviceChoice:
    """The device a step runs on, and the lease that keeps it its own (None for the CPU)."""

    device: str
    lease: DeviceLease | None = None
    name: str = ""

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()

    def describe(self) -> str:
        """E.g. `cuda:1 (NVIDIA H200), leased in /tmp/s2i-gpu-leases-1000`, or `cpu`."""
        text = self.device + (f" ({self.name})" if self.name else "")
        if self.lease is not None:
            text += f", leased in {self.lease.path.parent}"
        return text

    def metadata(self) -> dict[str, str]:
        """What a materialization records about where it ran."""
        return {"device": self.device, **({"device_name": self.name} if self.name else {})}


def resolve_device(
    requested: str = "auto",
    *,
    require_gpu: bool = False,
    folder: Path | str | None = None,
    per_device: int | None = None,
    wait: bool = True,
    poll_s: float = 1.0,
    log: Log | None = None,
    holder: str = "",
) -> DeviceChoice:
    """The device for `requested` (`S2I_DEVICE`): `auto` leases a free GPU when torch sees one, else the CPU;
    `cuda` leases a free GPU, `cuda:N` that GPU (waiting for it if leased); `cpu` (and any other device torch
    knows, e.g. `mps`) is used as given, without a lease. With `require_gpu` (`S2I_REQUIRE_GPU`), `auto` fails
    instead of falling back to the CPU. A leased GPU becomes this process's current CUDA device.
    """
    import torch

    requested = (requested or "auto").strip().lower()
    wants_cuda = requested == "cuda" or requested.startswith("cuda:")
    if requested != "auto" and not wants_cuda:
        return DeviceChoice(requested)
    if not torch.cuda.is_available():
        if wants_cuda or require_gpu:
            asked = (
                f"S2I_DEVICE={requested!r} asks for a GPU"
                if wants_cuda
                else f"{REQUIRE_GPU_ENV}=1 says this step needs a GPU"
            )
            raise GPUNotAvailable(why_no_gpu(asked))
        return DeviceChoice("cpu")
    count = torch.cuda.device_count()
    only = None
    if requested.startswith("cuda:"):
        try:
            only = int(requested.removeprefix("cuda:"))
        except ValueError:
            raise ValueError(f"device {requested!r} is not cuda:N") from None
    lease = lease_device(
        count,
        folder,
        names=[_gpu_name_for_lock(torch, index) for index in range(count)],
        only=only,
        per_device=per_device or steps_per_gpu(),
        wait=wait,
        poll_s=poll_s,
        log=log,
        holder=holder,
    )
    torch.cuda.set_device(lease.index)  # so that a bare "cuda" in any library means this GPU, not cuda:0
    return DeviceChoice(lease.device, lease, torch.cuda.get_device_name(lease.index))


def _gpu_name_for_lock(torch, index: int) -> str:
    """The GPU's UUID: the same card has the same name in every process and container on the host."""
    try:
        uuid = torch.cuda.get_device_properties(index).uuid
    except (AttributeError, RuntimeError):
        uuid = None
    return f"gpu-{uuid}" if uuid else f"cuda{index}"


def why_no_gpu(asked: str) -> str:
    """Why torch cannot use a GPU here, and what to check, in the order to check it."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    cuda = torch.version.cuda
    if cuda is None:
        reason = f"torch {torch.__version__} is a CPU-only build"
    else:
        try:
            torch.cuda.init()
            reason = f"torch {torch.__version__} (CUDA {cuda}) sees {torch.cuda.device_count()} GPUs"
        except Exception as error:  # torch words it: no driver, no device, driver too old
            reason = f"torch {torch.__version__} (CUDA {cuda}) cannot start CUDA: {error}"
    driver = MIN_DRIVER.get((cuda or "").split(".")[0])
    driver_hint = f" (this torch's CUDA {cuda} needs driver {driver} or newer)" if driver else ""
    return (
        f"{asked}, but no GPU is usable: {reason}. Check, in this order: the NVIDIA driver, with `nvidia-smi` on "
        f"the host{driver_hint}; that the container was given the GPUs (the NVIDIA Container Toolkit, "
        "nvidia-container-toolkit, with docker/docker-compose.gpu.yml or `docker run --gpus all`; on Kubernetes "
        "the NVIDIA device plugin and the step's nvidia.com/gpu request); and CUDA_VISIBLE_DEVICES "
        f"({'unset' if visible is None else repr(visible)}; empty or a wrong id hides every GPU). "
        f"To train on the CPU instead, set {REQUIRE_GPU_ENV}=0 and S2I_DEVICE=auto or cpu."
    )
