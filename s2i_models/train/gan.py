"""Conditional GAN training (paper §4.3, Eqs. 2-6, Algorithm 1) on frozen-encoder audio embeddings.

Per batch (real frames Y, their sounds' embeddings x):
  1. Y_hat = G(x).
  2. On discriminator epochs/steps (see `GanConfig.discriminator_unit`), update D on the balanced batch
     [Y, Y_hat.detach()] to minimise Eq. 2: MSE(D(Y, x), r_max) + MSE(D(Y_hat, x), r_min).
  3. Update G with D frozen to minimise Eq. 6: pixel MSE (Eq. 3) + lambda * moving-average adversarial
     loss (Eq. 5 of the Eq. 4 batch loss MSE(D(Y_hat, x), r_max)).
The step itself is `fast_step.GanStep`: plain, or captured as CUDA graphs (`step: graphed`), with its losses
summed on the device and read once an epoch.

Decisions (the paper is silent):
- D stays in train mode throughout (dropout on, batch-statistics batch norm), and every forward pass of D
  sees a balanced real + synthetic batch, also when G is updated: D's last BatchNorm2d(1) normalises the
  scores across the batch, so on an all-synthetic batch the mean score is fixed by batch norm and G could
  not raise it. For G's update D's parameters are frozen (requires_grad False, only G's optimizer steps)
  and its batch-norm running statistics are put back afterwards: D's state changes only when D is updated.
- G is always in train mode (its dropout is on in training anyway).
- One GradScaler (fp16 only) serves both optimizers, updated once per batch.

Files in `out_dir`:
  checkpoints/epoch-{E:05d}.pt  {"epoch", "generator", "discriminator", "config"}: every
                                `checkpoint_every` epochs and at the last epoch, all kept (evaluation reads them)
  resume.pt                     full training state, written (atomically) right after each epoch checkpoint
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from s2i_models.checkpoint import load_checkpoint, remove_stale_temps, save_atomic
from s2i_models.loaders import InMemoryBatches, ShardStream
from s2i_models.losses import MovingAverageAdversarial
from s2i_models.train import (
    PRECISIONS,
    EventLog,
    OnEpoch,
    Stopwatch,
    TrainResult,
    batches_with_progress,
    check_choice,
    check_data,
    check_finite,
    check_positive_float,
    check_positive_int,
    check_same_config,
    check_start,
    epoch_bar,
    grad_scaler,
    restore_rng,
    rng_state,
    training_mode,
)
from s2i_models.train.fast_step import (
    MEMORY_FORMATS,
    SGD_KINDS,
    STEPS,
    GanStep,
    make_sgd,
    match_layouts,
    to_memory_format,
)

CHECKPOINT_NAME = re.compile(r"epoch-(\d{5,})\.pt")


@dataclass(frozen=True)
class GanConfig:
    """Training settings of the translator's GAN (the paper's: SGD lr 0.1, momentum 0.5, lambda 0.1, n_gd 5)."""

    dim: int  # audio embedding size f
    generator: str = "dense"  # dense (25 layers, the paper's) | sequential (13 layers, its baseline)
    width: float = 1.0  # multiplier on every hidden channel count of G and D
    epochs: int = 4000
    batch_size: int = 64
    lr: float = 0.1  # G and D each
    momentum: float = 0.5
    adversarial_weight: float = 0.1  # lambda, Eq. 6
    adversarial_average_epochs: int = 5  # k, Eq. 5
    discriminator_every: int = 5  # n_gd: D is updated once every n_gd epochs (or steps)
    discriminator_unit: str = "epoch"  # epoch: D trains on every batch of epochs n_gd, 2 n_gd, ... | step
    checkpoint_every: int = 50
    precision: str = "fp32"  # fp32 | bf16 | fp16
    compile: bool = False  # torch.compile G and D: fused kernels, fewer launches on a GPU; the same math
    seed: int = 0  # model init, batch order, dropout
    r_max: float = 1.0  # RC-score target of real images
    r_min: float = -1.0  # RC-score target of synthetic images
    # Speed options (fast_step.py; a run resumes across them): the step as CUDA graphs, G's and D's tensors
    # in NHWC order, SGD's implementation. The defaults are the reference numerics.
    step: str = "plain"  # plain | graphed (CUDA graphs of the whole step; on a CPU: plain, with a log line)
    memory_format: str = "contiguous"  # contiguous | channels_last
    sgd: str = "default"  # default (torch's choice) | foreach | fused

    def __post_init__(self) -> None:
        owner = "GanConfig"
        check_positive_int(owner, dim=self.dim, epochs=self.epochs, batch_size=self.batch_size)
        check_positive_int(
            owner,
            adversarial_average_epochs=self.adversarial_average_epochs,
            discriminator_every=self.discriminator_every,
            checkpoint_every=self.checkpoint_every,
        )
        check_positive_float(owner, width=self.width, lr=self.lr)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"{owner}: momentum must be in [0, 1), got {self.momentum!r}")
        if not 0 <= self.adversarial_weight < math.inf:
            raise ValueError(f"{owner}: adversarial_weight must be >= 0, got {self.adversarial_weight!r}")
        check_choice(owner, "generator", self.generator, ("dense", "sequential"))
        check_choice(owner, "discriminator_unit", self.discriminator_unit, ("epoch", "step"))
        check_choice(owner, "precision", self.precision, PRECISIONS)
        check_choice(owner, "step", self.step, STEPS)
        check_choice(owner, "memory_format", self.memory_format, MEMORY_FORMATS)
        check_choice(owner, "sgd", self.sgd, SGD_KINDS)
        if not -1 <= self.r_min < self.r_max <= 1:
            raise ValueError(
                f"{owner}: need -1 <= r_min < r_max <= 1, got r_min={self.r_min}, r_max={self.r_max}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"{owner}: seed must be an int, got {self.seed!r}")


def build_networks(config: GanConfig) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) as the config describes them, freshly initialised."""
    from s2i_models.discriminator import Discriminator
    from s2i_models.generator import DenseGenerator, SequentialGenerator

    kind = DenseGenerator if config.generator == "dense" else SequentialGenerator
    return kind(config.dim, width=config.width, mc_dropout=True), Discriminator(
        config.dim, width=config.width
    )


def build_training(
    config: GanConfig, device: str
) -> tuple[nn.Module, nn.Module, torch.optim.Optimizer, torch.optim.Optimizer, torch.amp.GradScaler]:
    """G and D freshly initialised (from torch's current seed) on `device` in the config's memory format,
    their SGD optimizers and the GradScaler: what `train_gan` trains (and benchmarks/gpu_sweep.py times)."""
    generator, discriminator = build_networks(config)
    generator = to_memory_format(generator.to(device), config.memory_format)
    discriminator = to_memory_format(discriminator.to(device), config.memory_format)
    optimizer_g = make_sgd(generator.parameters(), config.lr, config.momentum, config.sgd)
    optimizer_d = make_sgd(discriminator.parameters(), config.lr, config.momentum, config.sgd)
    return generator, discriminator, optimizer_g, optimizer_d, grad_scaler(device, config.precision)


def updates_discriminator(config: GanConfig, epoch: int, step: int) -> bool:
    """Whether D is updated on this batch (1-based epoch and global step)."""
    counter = epoch if config.discriminator_unit == "epoch" else step
    return counter % config.discriminator_every == 0


def checkpoint_path(out_dir: Path, epoch: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"epoch-{epoch:05d}.pt"


def list_checkpoints(out_dir: Path, up_to: int | None = None) -> list[Path]:
    """The epoch checkpoints in `out_dir/checkpoints`, by epoch (those after `up_to` left out)."""
    found = []
    for path in (Path(out_dir) / "checkpoints").glob("epoch-*.pt"):
        match = CHECKPOINT_NAME.fullmatch(path.name)
        if match and (up_to is None or int(match.group(1)) <= up_to):
            found.append((int(match.group(1)), path))
    return [path for _epoch, path in sorted(found)]


def _start_from(
    init: Mapping[str, Any],
    config: GanConfig,
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer_g: torch.optim.Optimizer,
    optimizer_d: torch.optim.Optimizer,
) -> None:
    """Fine-tuning: G and D take the given weights, and the optimizers their momentum buffers when given;
    the profile's lr and momentum still apply (a loaded optimizer state would bring back the old ones)."""
    generator.load_state_dict(init["generator"])
    discriminator.load_state_dict(init["discriminator"])
    for optimizer, key in ((optimizer_g, "optimizer_g"), (optimizer_d, "optimizer_d")):
        if init.get(key) is not None:
            optimizer.load_state_dict(init[key])
            for group in optimizer.param_groups:
                group["lr"], group["momentum"] = config.lr, config.momentum


def _preview(generator: nn.Module, embeddings: torch.Tensor, device: str) -> torch.Tensor:
    """G's images for fixed sounds (eval mode, MC dropout on, seeded); the random state is put back."""
    saved = rng_state(device)
    try:
        torch.manual_seed(0)
        generator.eval()
        with torch.no_grad():
            return generator(embeddings.to(device).float())  # (N, 3, 96, 96)
    finally:
        generator.train()
        restore_rng(saved, device)


def train_gan(
    config: GanConfig,
    train: InMemoryBatches | ShardStream,
    out_dir: Path,
    device: str = "cpu",
    resume: bool = True,
    on_epoch: OnEpoch = None,
    progress: bool = False,
    judge: Callable[[nn.Module, int], dict[str, float]] | None = None,
    preview_embeddings: torch.Tensor | None = None,
    init: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train (or continue training) G and D on `train`'s frames and precomputed embeddings (Algorithm 1).

    With resume=True and an `out_dir/resume.pt`, training continues after its epoch (only `epochs` may
    differ from its config); resume=False starts over, deleting the old epoch checkpoints. History records:
    epoch, pixel_loss, adversarial_batch_loss, adversarial_ma_loss, generator_loss, discriminator_loss (NaN
    in epochs without a D update), d_updates, seconds, samples_per_second (losses are epoch means).

    With a `judge` (`s2i_models.scoring.EpochJudge`), every epoch also records its informativity on the test
    sounds: `informativity_<class>` per class, `informativity` (their mean) and `judge_seconds`; they are
    part of the history, so they are saved with the resume state and survive a kill.

    TensorBoard events go to `out_dir/tensorboard` as training goes (`EventLog`): every history field per
    epoch, and at each checkpoint the images G makes for `preview_embeddings` (fixed validation sounds).

    Fine-tuning: with `init` ({"generator", "discriminator"} state dicts, and optionally "optimizer_g" and
    "optimizer_d" states), a run that starts fresh starts from those weights instead of the seeded init;
    `epochs` then counts the epochs of fine-tuning. A run that resumes continues from its own resume.pt.
    """
    out_dir = Path(out_dir)
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    remove_stale_temps(out_dir / "checkpoints")
    resume_path = out_dir / "resume.pt"
    check_data(train, ["frames", "embeddings"], "GAN training")
    if not resume:
        for stale in list_checkpoints(out_dir):
            stale.unlink()

    with training_mode(device):
        torch.manual_seed(config.seed)
        generator, discriminator, optimizer_g, optimizer_d, scaler = build_training(config, device)
        moving_average = MovingAverageAdversarial(config.adversarial_average_epochs)
        train.reseed(config.seed)
        history: list[dict] = []
        start, step, resumed_from = 0, 0, None
        if resume and resume_path.exists():
            state = load_checkpoint(resume_path)
            check_same_config(state["config"], config, resume_path)
            if state["n_samples"] != train.n_samples:
                raise ValueError(
                    f"cannot resume from {resume_path}: it was trained on {state['n_samples']} samples, the "
                    f"training split now has {train.n_samples}. Delete {out_dir} to start over."
                )
            check_start(state["epoch"], config.epochs, resume_path)
            generator.load_state_dict(state["generator"])
            discriminator.load_state_dict(state["discriminator"])
            optimizer_g.load_state_dict(state["optimizer_g"])
            optimizer_d.load_state_dict(state["optimizer_d"])
            scaler.load_state_dict(state["scaler"])
            moving_average.load_state_dict(state["moving_average"])
            train.load_state(state["data_order"])
            restore_rng(state["rng"], device)
            history = list(state["history"])
            start = resumed_from = state["epoch"]
            step = state["step"]
        elif init is not None:
            _start_from(init, config, generator, discriminator, optimizer_g, optimizer_d)
        last_good = f"The last good checkpoint is {resume_path} (epoch {start})." if start else ""
        events = EventLog(out_dir, start, "gan")

        generator.train()
        discriminator.train()
        discriminator.requires_grad_(False)
        match_layouts(optimizer_g)
        match_layouts(optimizer_d)
        # Runs each batch's D and G updates, plain or as CUDA graphs; sums the losses on the device.
        run_step = GanStep(config, generator, discriminator, optimizer_g, optimizer_d, scaler, device)
        bar = epoch_bar(progress, start, config.epochs, f"GAN {config.dim}")
        for epoch in range(start + 1, config.epochs + 1):
            clock = Stopwatch(device)
            run_step.begin_epoch(moving_average)  # Eq. 5's previous epochs, on the device
            d_samples, d_updates, count = 0, 0, 0
            for batch in batches_with_progress(train, progress, f"epoch {epoch}"):
                step += 1
                update_d = updates_discriminator(config, epoch, step)
                run_step(batch, update_d)  # queued on the device: no sync per batch
                size = len(batch["frames"])
                if update_d:
                    d_samples += size
                    d_updates += 1
                count += size

            means = run_step.epoch_means(count, d_samples)  # the epoch's one sync
            d_mean = means["discriminator"]
            train_seconds = clock.seconds()
            losses = {
                "pixel_loss (Eq. 3)": means["pixel"],
                "adversarial_batch_loss (Eq. 4)": means["adversarial"],
                "adversarial_ma_loss (Eq. 5)": means["moving_average"],
                "generator_loss (Eq. 6)": means["generator"],
            }
            if d_samples:
                losses["discriminator_loss (Eq. 2)"] = d_mean
            check_finite(losses, epoch, "GAN training", last_good)
            moving_average.end_epoch(means["adversarial"])
            record = {
                "epoch": epoch,
                "pixel_loss": means["pixel"],
                "adversarial_batch_loss": means["adversarial"],
                "adversarial_ma_loss": means["moving_average"],
                "generator_loss": means["generator"],
                "discriminator_loss": d_mean,
                "d_updates": d_updates,
                "seconds": train_seconds,
                "samples_per_second": count / max(train_seconds, 1e-9),
            }
            if judge is not None:
                judge_clock = Stopwatch(device)
                shares = judge(generator, epoch)
                record.update({f"informativity_{name}": share for name, share in shares.items()})
                record["informativity"] = sum(shares.values()) / max(len(shares), 1)
                record["judge_seconds"] = judge_clock.seconds()
            history.append(record)
            events.epoch(record, {"lr": config.lr})
            if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
                if preview_embeddings is not None:
                    events.images("validation_sounds", _preview(generator, preview_embeddings, device), epoch)
                # the epoch file first: a kill between the two writes repeats this epoch, losing nothing
                save_atomic(
                    {
                        "epoch": epoch,
                        "generator": generator.state_dict(),
                        "discriminator": discriminator.state_dict(),
                        "config": asdict(config),
                    },
                    checkpoint_path(out_dir, epoch),
                )
                save_atomic(
                    {
                        "epoch": epoch,
                        "step": step,
                        "config": asdict(config),
                        "n_samples": train.n_samples,
                        "generator": generator.state_dict(),
                        "discriminator": discriminator.state_dict(),
                        "optimizer_g": optimizer_g.state_dict(),
                        "optimizer_d": optimizer_d.state_dict(),
                        "scaler": scaler.state_dict(),
                        "moving_average": moving_average.state_dict(),
                        "data_order": train.state(),
                        "rng": rng_state(device),
                        "history": history,
                    },
                    resume_path,
                )
                last_good = f"The last good checkpoint is {resume_path} (epoch {epoch})."
            if bar is not None:
                bar.update(1)
                bar.set_postfix(pixel=f"{means['pixel']:.4g}", d_updates=d_updates)
            if on_epoch is not None:
                on_epoch(dict(record))
        if bar is not None:
            bar.close()
        events.close()
        discriminator.requires_grad_(True)

    final_epoch = history[-1]["epoch"] if history else start
    final = checkpoint_path(out_dir, final_epoch)
    if not final.exists():
        raise FileNotFoundError(f"{final} is missing although {resume_path} reached epoch {final_epoch}")
    return TrainResult(
        history=history,
        final_checkpoint=final,
        checkpoints=list_checkpoints(out_dir, up_to=final_epoch),
        resumed_from=resumed_from,
    )
