"""Real kills and real concurrent runs (#13): `dagster asset materialize` in a subprocess of its own session,
SIGKILLed as a process group (the run, its step processes, the extraction pool, ffmpeg) in the middle of
extraction and of GAN training, run again, and compared with an uninterrupted run; and a second run of the
same GAN on the same data folder while the first trains.

Tiny demo sizes (tests/conftest.py): the upstream chain comes from the session's `trained` fixture, copied.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from pipelines.data.artifact_manifest import read_manifest
from pipelines.data.locks import read_holder
from pipelines.data.shards import current_shards

DAGSTER = str(Path(sys.executable).parent / "dagster")
SPLITS = ("train", "val", "test")
GAN_EPOCHS = 8  # long enough that a kill after epoch 2 lands mid-training on any machine


def environment(profile: Path, data: Path, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("S2I_")}
    env.update(
        S2I_PROFILE=str(profile),
        S2I_DATA_DIR=str(data),
        DAGSTER_HOME=str(home),
        S2I_DEVICE="cpu",
        S2I_CPU_THREADS="1",  # every run of a comparison trains alike
    )
    return env


def start(selection: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dagster asset materialize` as the leader of a new session, so that its whole group can be signalled."""
    with open(log, "ab") as stream:
        return subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "pipelines", "--select", selection],
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def finish(process: subprocess.Popen, log: Path, timeout: float = 300) -> str:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return log.read_text(errors="replace")


def run(selection: str, env: dict[str, str], log: Path) -> tuple[int, str]:
    process = start(selection, env, log)
    output = finish(process, log)
    return process.returncode, output


def wait_for(condition, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(
                f"the run ended (rc {process.returncode}) before the kill point:\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"no kill point after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def leftover_temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".tmp-*"))


def shard_bytes(data: Path) -> dict[str, bytes]:
    shards = current_shards(data / "shards")
    return {p.name: p.read_bytes() for split in SPLITS for p in shards.paths(split)}


# ---- extraction --------------------------------------------------------------------------------------------


def test_a_kill_in_the_middle_of_extraction_resumes_to_the_same_shards(trained, tmp_path):
    profile, reference, _ = trained
    data = tmp_path / "data"
    shutil.copytree(reference / "vegas_clips", data / "vegas_clips")  # the clip table (the clips stay put)
    env = environment(profile, data, tmp_path / "home")
    log = tmp_path / "run.log"
    cache = data / "segments" / "clips"

    first = start("segments,splits,shards", env, log)
    wait_for(lambda: len(list(cache.glob("*/*.npz"))) >= 6, first, log)  # 6 of 30 clips extracted
    kill_group(first)
    extracted = len(list(cache.glob("*/*.npz")))
    assert extracted < 30 and read_manifest(data / "segments") is None

    code, output = run("segments,splits,shards", env, log)
    assert code == 0, output[-3000:]
    segments = read_manifest(data / "segments").data["metadata"]
    assert segments["clips_from_cache"] >= extracted and segments["clips"] == 30  # resumed where it stopped
    assert not leftover_temps(data / "segments")  # the killed writers' temps are gone (their pids are dead)
    assert read_manifest(data / "shards").fingerprint == read_manifest(reference / "shards").fingerprint
    assert shard_bytes(data) == shard_bytes(reference)  # byte for byte what the uninterrupted run wrote


# ---- GAN training ------------------------------------------------------------------------------------------


def gan_checkpoint(data: Path, epoch: int) -> list[Path]:
    return list((data / "gan_128" / "train").glob(f"*/checkpoints/epoch-{epoch:05d}.pt"))


@pytest.fixture(scope="module")
def gan_copy(trained, tmp_path_factory):
    """(profile with a longer GAN run, a function making a copy of the trained chain without any GAN)."""
    profile, reference, _ = trained
    root = tmp_path_factory.mktemp("gan_kills")
    longer = root / "gan.yaml"
    text = profile.read_text()
    assert "gan: {width: 0.0625, epochs: 3," in text
    longer.write_text(
        text.replace("gan: {width: 0.0625, epochs: 3,", f"gan: {{width: 0.0625, epochs: {GAN_EPOCHS},")
    )

    def copy(name: str) -> Path:
        data = root / name / "data"
        shutil.copytree(
            reference, data, symlinks=True, ignore=shutil.ignore_patterns("gan_*", "informativity_*", "s2i_*")
        )
        return data

    return longer, copy, root


@pytest.fixture(scope="module")
def concurrent(gan_copy):
    """Run A trains gan_128; while it holds the lock (stopped with SIGSTOP after epoch 2, so the timing is
    certain), run B materializes gan_128 on the same data folder. A then finishes: an uninterrupted run."""
    profile, copy, root = gan_copy
    data = copy("concurrent")
    # Separate instances (DAGSTER_HOME): a run stopped mid-write to a shared SQLite file would block the other's
    # event log; the lock is the data folder's, whatever instance a run belongs to.
    log_a, log_b = root / "concurrent" / "a.log", root / "concurrent" / "b.log"
    first = start("gan_128", environment(profile, data, root / "concurrent" / "home_a"), log_a)
    wait_for(lambda: gan_checkpoint(data, 2), first, log_a)
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        holder = read_holder(data / "gan_128")
        started = time.monotonic()
        code_b, output_b = run("gan_128", environment(profile, data, root / "concurrent" / "home_b"), log_b)
        seconds_b = time.monotonic() - started
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    output_a = finish(first, log_a)
    return {
        "data": data,
        "holder": holder,
        "a": (first.returncode, output_a),
        "b": (code_b, output_b, seconds_b),
    }


def test_a_second_run_of_the_same_gan_fails_at_once_and_the_first_finishes(concurrent):
    data, holder = concurrent["data"], concurrent["holder"]
    code_b, output_b, seconds_b = concurrent["b"]
    assert holder["asset"] == "gan_128" and holder["run_id"]
    assert code_b != 0 and seconds_b < 90  # it did not wait for the first run
    assert f"gan_128 is being written by run {holder['run_id']} since {holder['since']}" in output_b, (
        output_b[-3000:]
    )
    code_a, output_a = concurrent["a"]
    assert code_a == 0, output_a[-3000:]
    manifest = read_manifest(data / "gan_128")
    assert manifest.data["metadata"]["resumed_from_epoch"] == 0  # A trained alone, start to end
    assert len(manifest.data["checkpoints"]) == GAN_EPOCHS


def test_a_kill_in_the_middle_of_gan_training_resumes_to_the_uninterrupted_weights(gan_copy, concurrent):
    profile, copy, root = gan_copy
    data = copy("killed")
    env = environment(profile, data, root / "killed" / "home")
    log = root / "killed" / "run.log"
    first = start("gan_128", env, log)
    wait_for(lambda: gan_checkpoint(data, 2), first, log)
    kill_group(first)
    assert read_manifest(data / "gan_128") is None and not gan_checkpoint(data, GAN_EPOCHS)

    code, output = run("gan_128", env, log)
    assert code == 0, output[-3000:]
    manifest = read_manifest(data / "gan_128")
    # resumed, not started over (from epoch 1 when the kill fell between the epoch-2 checkpoint and resume.pt)
    assert 1 <= manifest.data["metadata"]["resumed_from_epoch"] < GAN_EPOCHS
    assert not leftover_temps(data / "gan_128")

    (killed,) = gan_checkpoint(data, GAN_EPOCHS)
    (straight,) = gan_checkpoint(concurrent["data"], GAN_EPOCHS)
    assert killed.relative_to(data) == straight.relative_to(concurrent["data"])  # same settings key
    killed_state = torch.load(killed, weights_only=True)
    straight_state = torch.load(straight, weights_only=True)
    for network in ("generator", "discriminator"):
        for name, tensor in straight_state[network].items():
            assert torch.equal(killed_state[network][name], tensor), f"{network}.{name}"
    timing = ["seconds", "samples_per_second"]
    killed_history = pd.read_parquet(data / "gan_128" / "history.parquet").drop(columns=timing)
    straight_history = pd.read_parquet(concurrent["data"] / "gan_128" / "history.parquet").drop(
        columns=timing
    )
    pd.testing.assert_frame_equal(killed_history, straight_history)
