"""The speed options of the training loops (s2i_models/train/fast_step.py) and benchmarks/gpu_sweep.py.

The fast options must give the plain step's losses. At the tests' tiny width a whole run is chaotic: a
rounding difference of 1e-5 in one step grows to 13 % in the GAN's losses after six (channels_last on the
CPU), so runs are compared step by step instead ("lock-step"): before every step the fast side takes the
plain side's weights, statistics and momentum buffers, both draw the same dropout masks, and each step's
losses and its change to the weights must agree within the case's tolerances (relative). The steps cover
G's updates, D's updates, an epoch boundary of Eq. 5's moving average and a last batch smaller than the rest.

On the CPU: foreach and fused SGD, channels_last; `step: graphed` falls back to the plain step with one log
line; a run resumes across the options. On CUDA (`gpu` marker; skipped without a GPU, failing with
S2I_REQUIRE_GPU=1 as in tests/test_gpu.py): the graphed step against the plain one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from s2i_models.loaders import InMemoryBatches
from s2i_models.losses import MovingAverageAdversarial
from s2i_models.train import check_same_config, training_mode
from s2i_models.train.autoencoder import AutoencoderConfig, train_autoencoder
from s2i_models.train.fast_step import AutoencoderStep, GanStep
from s2i_models.train.gan import GanConfig, train_gan
from tests.test_gpu import REQUIRE_GPU, cuda_device  # noqa: F401  (the skip-or-fail switch for `gpu` tests)

ROOT = Path(__file__).parent.parent
DIM, WIDTH, BATCH = 128, 0.0625, 16
STATS = {"min": -12.0, "max": 3.0}
GAN_LOSSES = (
    "pixel_loss",
    "adversarial_batch_loss",
    "adversarial_ma_loss",
    "generator_loss",
    "discriminator_loss",
)
FAST_LOG = "s2i_models.train.fast_step"
# G's step x2 (the second on the short last batch) | epoch boundary | D's then G's x3 (one short) | G's step.
GAN_SCHEDULE = [
    (False, 0, None),
    (False, 2, None),
    (True, 1, 0.7),
    (True, 2, None),
    (True, 0, None),
    (False, 1, 0.9),
]
AE_SCHEDULE = [0, 2, 1, 0]


def data(n: int = 40) -> dict[str, np.ndarray]:
    """n samples; at 40, batches of 16, 16 and 8."""
    rng = np.random.default_rng(0)
    return {
        "mels": rng.normal(-5.0, 2.5, (n, 100, 128)).astype(np.float16),
        "frames": rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8),
        "embeddings": np.tanh(rng.normal(size=(n, DIM))).astype(np.float32),
    }


def batch_of(arrays: dict, index: int, fields, device: str) -> dict[str, torch.Tensor]:
    return {f: torch.from_numpy(arrays[f][index * BATCH : (index + 1) * BATCH]).to(device) for f in fields}


class Side:
    """One training step as `options` build it, with what lock-step copies between sides."""

    def __init__(self, work: str, device: str, width: float, options: dict) -> None:
        from s2i_models.train import autoencoder, gan

        torch.manual_seed(0)
        if work == "gan":
            self.config = GanConfig(dim=DIM, width=width, batch_size=BATCH, **options)
            g, d, optimizer_g, optimizer_d, scaler = gan.build_training(self.config, device)
            g.train()
            d.train()
            d.requires_grad_(False)  # as train_gan holds it between D's updates
            self.step = GanStep(self.config, g, d, optimizer_g, optimizer_d, scaler, device)
            self.modules, self.optimizers = [g, d], [optimizer_g, optimizer_d]
        else:
            self.config = AutoencoderConfig(dim=DIM, width=width, batch_size=BATCH, **options)
            model, optimizer, scaler = autoencoder.build_training(self.config, device)
            model.train()
            self.step = AutoencoderStep(self.config, model, optimizer, scaler, STATS, device)
            self.modules, self.optimizers = [model], [optimizer]

    def tensors(self) -> list[torch.Tensor]:
        found = [t for m in self.modules for t in (*m.parameters(), *m.buffers())]
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                found += [
                    optimizer.state[p]["momentum_buffer"] for p in group["params"] if p in optimizer.state
                ]
        return found

    def take(self, other: Side) -> None:
        mine, theirs = self.tensors(), other.tensors()
        assert len(mine) == len(theirs)  # the same momentum buffers exist on both sides
        with torch.no_grad():
            for a, b in zip(mine, theirs, strict=True):
                a.copy_(b)  # in place: a captured graph holds these addresses


def lockstep(work: str, device: str, width: float, fast: dict, plain: dict) -> tuple[float, float]:
    """In lock-step, the largest relative differences between the `plain` and the `fast` side of a step's
    losses and of a step's change to each network's weights (a network that one side's step leaves alone
    the other's must leave alone too)."""
    arrays = data()
    with training_mode(device):
        a, b = Side(work, device, width, plain), Side(work, device, width, fast)
        average = MovingAverageAdversarial(5)
        losses, updates = 0.0, 0.0
        schedule = GAN_SCHEDULE if work == "gan" else [(None, i, None) for i in AE_SCHEDULE]
        for number, (update_d, index, ended) in enumerate(schedule):
            if number:
                b.take(a)
            if ended is not None:
                average.end_epoch(ended)
            fields = ("frames", "embeddings") if work == "gan" else ("mels",)
            batch = batch_of(arrays, index, fields, device)
            before = [[p.detach().clone() for p in m.parameters()] for m in a.modules]
            for side in (a, b):
                torch.manual_seed(100 + number)  # the same dropout masks on both sides
                if work == "gan":
                    side.step.begin_epoch(average)  # zeroes the sums; Eq. 5's previous epochs
                    side.step(batch, update_d)
                else:
                    side.step.begin_epoch()
                    side.step(batch)
            x, y = a.step.sums, b.step.sums
            assert torch.isfinite(x).all() and torch.isfinite(y).all()
            relative = ((x - y).abs() / x.abs().clamp_min(1e-12)).tolist()
            if work == "gan" and not update_d:
                relative = relative[:4]  # no D loss on G's steps
            losses = max(losses, *relative)
            for start, one, other in zip(before, a.modules, b.modules, strict=True):
                change_a = torch.cat(
                    [(p - q).flatten() for p, q in zip(one.parameters(), start, strict=True)]
                )
                change_b = torch.cat(
                    [(p - q).flatten() for p, q in zip(other.parameters(), start, strict=True)]
                )
                if not change_a.any():
                    assert not change_b.any(), (
                        f"step {number}: only the fast side changed {type(other).__name__}"
                    )
                    continue
                updates = max(updates, ((change_a - change_b).norm() / change_a.norm()).item())
    return losses, updates


def gan_run(folder: Path, arrays: dict, device: str = "cpu", width: float = WIDTH, **options):
    config = GanConfig(
        **{"dim": DIM, "width": width, "epochs": 2, "batch_size": BATCH, "discriminator_every": 2} | options
    )
    batches = InMemoryBatches(
        device=device, frames=arrays["frames"], embeddings=arrays["embeddings"], batch_size=BATCH
    )
    return train_gan(config, batches, folder, device=device)


def ae_run(folder: Path, arrays: dict, device: str = "cpu", width: float = WIDTH, **options):
    config = AutoencoderConfig(**{"dim": DIM, "width": width, "epochs": 2, "batch_size": BATCH} | options)
    batches = InMemoryBatches(device=device, mels=arrays["mels"], batch_size=BATCH)
    return train_autoencoder(config, batches, None, STATS, folder, device=device)


def without_time(history: list[dict]) -> list[dict]:
    """Records without timings, NaN as None (NaN != NaN would fail every comparison)."""
    return [
        {k: None if v != v else v for k, v in r.items() if k not in ("seconds", "samples_per_second")}
        for r in history
    ]


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return data(48)  # 3 batches an epoch


@pytest.fixture(scope="module")
def plain_gan(arrays, tmp_path_factory):
    return gan_run(tmp_path_factory.mktemp("plain_gan"), arrays)


@pytest.fixture(scope="module")
def plain_ae(arrays, tmp_path_factory):
    return ae_run(tmp_path_factory.mktemp("plain_ae"), arrays)


# ---- the CPU -------------------------------------------------------------------------------------------------


# (work, name, the plain side's options, the fast side's, tolerance of the losses, of the weights' changes or
# None). Measured on a 2-core x86-64 CPU, torch 2.11: foreach and fused SGD 0 and 0, but the autoencoder's
# weight changes with fused SGD 1.5e-8 (momentum 0.9 rounds differently, 0.5 does not); channels_last losses
# 5.4e-4 (GAN: D's last batch norm over 2B scores amplifies the NHWC kernels' rounding) and 6e-7 (autoencoder).
# At this width a step's gradient is ill-conditioned (perturbing the weights by 1e-6, relative, changes it by
# up to 6 %, plain against plain), so channels_last's weight changes are not compared; fused SGD on
# channels_last tensors is, in its own case.
CHANNELS_LAST = {"memory_format": "channels_last"}
CPU_CASES = [
    ("gan", "foreach", {}, {"sgd": "foreach"}, 1e-6, 1e-6),
    ("gan", "fused", {}, {"sgd": "fused"}, 1e-6, 1e-5),
    ("gan", "channels_last", {}, CHANNELS_LAST, 5e-3, None),
    ("gan", "channels_last-fused", CHANNELS_LAST, {**CHANNELS_LAST, "sgd": "fused"}, 1e-6, 1e-5),
    ("ae", "fused", {}, {"sgd": "fused"}, 1e-6, 1e-5),
    ("ae", "channels_last", {}, CHANNELS_LAST, 1e-4, None),
]


@pytest.mark.parametrize(
    ("work", "name", "plain", "fast", "loss_tolerance", "update_tolerance"),
    CPU_CASES,
    ids=[f"{c[0]}-{c[1]}" for c in CPU_CASES],
)
def test_fast_options_give_the_plain_losses_step_by_step(
    work, name, plain, fast, loss_tolerance, update_tolerance
):
    losses, updates = lockstep(work, "cpu", WIDTH, fast, plain)
    print(
        f"{work} {name} in lock-step, largest relative difference: losses {losses:.3g}, weights {updates:.3g}"
    )
    assert losses <= loss_tolerance
    assert update_tolerance is None or updates <= update_tolerance


def test_eq5_from_device_tensors_is_the_moving_average_itself():
    """The captured step's (L + previous_total) / divisor, from device tensors, is Eq. 5 bit for bit."""
    generator = torch.Generator().manual_seed(0)
    for previous in ([], [0.3], [0.25, 1.7, 0.9, 2.4]):
        average = MovingAverageAdversarial(5)
        for mean in previous:
            average.end_epoch(mean)
        total = torch.zeros(()).fill_(average.previous_total)
        divisor = torch.ones(()).fill_(average.divisor)
        for _ in range(100):
            batch_loss = torch.rand((), generator=generator) * 3
            assert torch.equal((batch_loss + total) / divisor, average(batch_loss))


def test_training_loops_with_foreach_sgd_give_the_plain_history(tmp_path, arrays, plain_gan, plain_ae):
    gan = gan_run(tmp_path / "gan", arrays, sgd="foreach")
    assert [r["d_updates"] for r in gan.history] == [0, 3]
    assert without_time(gan.history) == without_time(plain_gan.history)
    ae = ae_run(tmp_path / "ae", arrays, sgd="foreach")
    assert without_time(ae.history) == without_time(plain_ae.history)


def test_graphed_on_a_cpu_falls_back_to_the_plain_step_and_says_so(
    tmp_path, arrays, plain_gan, plain_ae, caplog
):
    with caplog.at_level(logging.WARNING, logger=FAST_LOG):
        gan = gan_run(tmp_path / "gan", arrays, step="graphed")
    lines = [r.getMessage() for r in caplog.records if r.name == FAST_LOG]
    assert len(lines) == 1 and "falls back to the plain step" in lines[0] and "cpu" in lines[0], lines
    assert without_time(gan.history) == without_time(plain_gan.history)  # the plain step itself

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=FAST_LOG):
        ae = ae_run(tmp_path / "ae", arrays, step="graphed")
    assert len([r for r in caplog.records if r.name == FAST_LOG]) == 1
    assert without_time(ae.history) == without_time(plain_ae.history)


def test_a_run_resumes_across_the_speed_options(tmp_path, arrays):
    gan_run(tmp_path / "gan", arrays, epochs=1)  # contiguous, torch's SGD; "killed" after epoch 1
    resumed = gan_run(tmp_path / "gan", arrays, step="graphed", memory_format="channels_last", sgd="fused")
    assert resumed.resumed_from == 1 and [r["d_updates"] for r in resumed.history] == [0, 3]
    assert all(math.isfinite(r[name]) for r in resumed.history for name in GAN_LOSSES if r["d_updates"])
    first, second = resumed.history  # Eq. 5 in epoch 2: its batch losses averaged with epoch 1's mean
    expected = (second["adversarial_batch_loss"] + first["adversarial_batch_loss"]) / 2
    assert second["adversarial_ma_loss"] == pytest.approx(expected, rel=1e-5)
    saved = asdict(GanConfig(dim=DIM))
    check_same_config(saved, GanConfig(dim=DIM, step="graphed", sgd="foreach"), tmp_path / "resume.pt")
    ae = asdict(AutoencoderConfig(dim=DIM))
    check_same_config(ae, AutoencoderConfig(dim=DIM, compile=True, memory_format="channels_last"), tmp_path)
    with pytest.raises(ValueError, match="lr: 0.1 -> 0.2"):
        check_same_config(saved, GanConfig(dim=DIM, step="graphed", lr=0.2), tmp_path / "resume.pt")


def test_configs_reject_unknown_speed_options():
    with pytest.raises(ValueError, match="step must be one of plain, graphed"):
        GanConfig(dim=DIM, step="captured")
    with pytest.raises(ValueError, match="memory_format"):
        AutoencoderConfig(dim=DIM, memory_format="nhwc")
    with pytest.raises(ValueError, match="sgd must be one of default, foreach, fused"):
        GanConfig(dim=DIM, sgd="apex")
    with pytest.raises(ValueError, match="compile"):
        AutoencoderConfig(dim=DIM, compile="yes")


# ---- benchmarks/gpu_sweep.py ------------------------------------------------------------------------------------


def run_sweep(*arguments: str, require_gpu: bool = False, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != REQUIRE_GPU}
    env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, on any machine
    if require_gpu:
        env[REQUIRE_GPU] = "1"
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_sweep.py"), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_gpu_sweep_smoke_runs_every_code_path_on_the_cpu(tmp_path):
    report = tmp_path / "sweep.json"
    done = run_sweep("--smoke", "--json", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(report.read_text())["rows"]
    works = {(r["work"], r["mode"]) for r in rows if not r.get("error")}
    assert {("gan_128", "plain"), ("gan_128", "channels_last"), ("gan_128", "graphed")} <= works, rows
    assert {("autoencoder_512", "plain"), ("autoencoder_512", "graphed")} <= works, rows
    assert {r["concurrent"] for r in rows if r["work"] == "gan_512 sweep"} == {1, 2}, rows
    graphed = next(r for r in rows if r["work"] == "gan_128" and r["mode"] == "graphed")
    assert "plain step" in graphed["note"]  # on the CPU the graphed step fell back, and the table says so
    timed = [r for r in rows if r["work"] == "gan_128" and r["mode"] in ("plain", "channels_last", "graphed")]
    assert all(r["g_step_ms"] > 0 and r["dg_step_ms"] > 0 and r["hours"] > 0 for r in timed), timed
    assert "| work |" in done.stdout and "4000 epochs" in done.stdout


def test_gpu_sweep_projections():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_sweep", ROOT / "benchmarks" / "gpu_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    row = {
        "work": "gan_512",
        "mode": "graphed",
        "dim": 512,
        "kind": "gan",
        "g_step_ms": 10.0,
        "dg_step_ms": 20.0,
    }
    sweep.add_projections(row, batch=64)
    # 765 steps an epoch (48,945 / 64), D's step in one epoch of five: (4 x 10 + 20) / 5 = 12 ms a step
    assert row["epoch_s"] == pytest.approx(765 * 0.012) and row["samples_per_s"] == pytest.approx(64 / 0.012)
    assert row["hours"] == pytest.approx(4000 * 765 * 0.012 / 3600)
    hours = sweep.five_dims({128: 2.0, 512: 4.0, 2048: 8.0})
    assert hours == {128: 2.0, 256: 3.0, 512: 4.0, 1024: 6.0, 2048: 8.0}
    ones = dict.fromkeys((128, 256, 512, 1024, 2048), 1.0)
    assert sweep.sweep_hours(ones, {1: 1.0}, 1) == pytest.approx(5.0)
    # two at a time, each at 0.75 of its speed alone: pairs end at 4/3 and 8/3 h, the fifth alone 1 h later
    assert sweep.sweep_hours(ones, {1: 1.0, 2: 0.75}, 2) == pytest.approx(1 / 0.75 * 2 + 1)
    text = sweep.table([row], [("five dims, one at a time", "23.0 h")], "H200", 64, 1.0)
    assert "| gan_512 | graphed |" in text and "**23.0 h**" in text


def test_gpu_sweep_without_a_gpu_says_it_needs_one_or_fails_when_one_is_required():
    told = run_sweep()
    assert told.returncode == 0 and "needs a CUDA device" in told.stdout, told.stdout + told.stderr
    required = run_sweep(require_gpu=True)
    assert required.returncode != 0, required.stdout + required.stderr
    assert f"{REQUIRE_GPU}=1 but no CUDA device" in required.stderr


# ---- CUDA ------------------------------------------------------------------------------------------------------


@pytest.fixture
def exact_fp32():
    """fp32 convolutions without TF32, deterministic cuDNN algorithms, while comparing."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic
    torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic = False, True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic = before


@pytest.mark.gpu
@pytest.mark.parametrize("work", ["gan", "ae"])
@pytest.mark.parametrize(
    "options",
    [{}, {"memory_format": "channels_last", "sgd": "fused"}],
    ids=["contiguous", "channels_last-fused"],
)
def test_graphed_step_gives_the_plain_losses_step_by_step_on_cuda(work, options, caplog, exact_fp32):
    with caplog.at_level(logging.WARNING, logger=FAST_LOG):
        losses, updates = lockstep(work, "cuda", 0.25, {**options, "step": "graphed"}, options)
    assert not [r for r in caplog.records if r.name == FAST_LOG]  # graphs, no fallback
    print(
        f"{work} graphed {options} on CUDA, in lock-step: losses {losses:.3g}, weight changes {updates:.3g}"
    )
    assert losses <= 1e-4 and updates <= 1e-3


@pytest.mark.gpu
def test_graphed_training_runs_like_the_plain_one_on_cuda(tmp_path, caplog, exact_fp32):
    """Whole runs (3 epochs, D in the second, a short last batch): the same schedule, close losses (whole
    runs drift apart chaotically from any rounding difference; the lock-step test is the tight one)."""
    arrays = data(40)
    common = {"epochs": 3, "width": 0.25, "device": "cuda", "memory_format": "channels_last", "sgd": "fused"}
    plain = gan_run(tmp_path / "plain", arrays, **common)
    with caplog.at_level(logging.WARNING, logger=FAST_LOG):
        graphed = gan_run(tmp_path / "graphed", arrays, **common, step="graphed")
        ae = ae_run(tmp_path / "ae", arrays, **common, step="graphed")
    assert not [r for r in caplog.records if r.name == FAST_LOG]
    assert [r["d_updates"] for r in graphed.history] == [0, 3, 0]
    for a, b in zip(plain.history, graphed.history, strict=True):
        for name in GAN_LOSSES:
            if b["d_updates"] or name != "discriminator_loss":
                assert b[name] == pytest.approx(a[name], rel=5e-2), (a["epoch"], name)
    assert all(math.isfinite(r["train_loss"]) for r in ae.history)


@pytest.mark.gpu
def test_graphed_generator_steps_leave_the_discriminator_alone_on_cuda():
    config = {"step": "graphed", "memory_format": "channels_last"}
    with training_mode("cuda"):
        side = Side("gan", "cuda", 0.25, config)
        generator, discriminator = side.modules
        side.step.begin_epoch(MovingAverageAdversarial(5))
        batch = batch_of(data(BATCH), 0, ("frames", "embeddings"), "cuda")
        d_before = {k: v.clone() for k, v in discriminator.state_dict().items()}
        g_before = {k: v.clone() for k, v in generator.state_dict().items()}
        for _ in range(3):
            side.step(batch, update_d=False)
        assert side.step.graphs is not None and list(side.step.graphs.graphs) == [False]
        assert all(torch.equal(v, discriminator.state_dict()[k]) for k, v in d_before.items())
        assert not all(torch.equal(v, generator.state_dict()[k]) for k, v in g_before.items())
        side.step(batch, update_d=True)
        assert list(side.step.graphs.graphs) == [False, True]
        assert not all(torch.equal(v, discriminator.state_dict()[k]) for k, v in d_before.items())
        means = side.step.epoch_means(count=4 * BATCH, d_samples=BATCH)
        assert all(math.isfinite(v) for v in means.values())


@pytest.mark.gpu
@pytest.mark.parametrize(("precision", "compiled"), [("bf16", False), ("fp32", True)])
def test_graphed_gan_trains_in_bf16_and_compiled_on_cuda(tmp_path, caplog, precision, compiled):
    with caplog.at_level(logging.WARNING, logger=FAST_LOG):
        result = gan_run(
            tmp_path,
            data(40),
            device="cuda",
            width=0.25,
            step="graphed",
            precision=precision,
            compile=compiled,
        )
    assert not [r for r in caplog.records if r.name == FAST_LOG]
    assert all(math.isfinite(r[name]) for r in result.history for name in GAN_LOSSES if r["d_updates"])
