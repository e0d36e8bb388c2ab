"""Audio autoencoder training (paper §4.3, Eq. 1): MSE reconstruction of log-mel spectrograms, SGD.

Files in `out_dir`:
  resume.pt       full training state, every `checkpoint_every` epochs and at the last epoch (atomic)
  autoencoder.pt  {"epoch", "model": state_dict, "config": asdict(config), "stats": {"min", "max"}}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from s2i_models.checkpoint import load_checkpoint, remove_stale_temps, save_atomic
from s2i_models.loaders import InMemoryBatches, ShardStream, spectrogram_batch
from s2i_models.losses import autoencoder_loss
from s2i_models.train import (
    PRECISIONS,
    EventLog,
    OnEpoch,
    Stopwatch,
    TrainResult,
    autocast,
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
    AutoencoderStep,
    make_sgd,
    match_layouts,
    to_memory_format,
)


@dataclass(frozen=True)
class AutoencoderConfig:
    """Training settings of the audio autoencoder (the paper's: SGD lr 0.05, momentum 0.9, batch 64)."""

    dim: int  # embedding size f
    width: float = 1.0  # multiplier on every hidden channel count (1.0 = the reference network)
    epochs: int = 1000
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    checkpoint_every: int = 10  # epochs between resume checkpoints
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 adds a GradScaler)
    seed: int = 0  # model init, batch order, dropout
    # Speed options (fast_step.py; a run resumes across them). The defaults are the reference numerics.
    compile: bool = False  # torch.compile the autoencoder: fused kernels, fewer launches on a GPU
    step: str = "plain"  # plain | graphed (CUDA graphs of the whole step; on a CPU: plain, with a log line)
    memory_format: str = "contiguous"  # contiguous | channels_last
    sgd: str = "default"  # default (torch's choice) | foreach | fused

    def __post_init__(self) -> None:
        owner = "AutoencoderConfig"
        check_positive_int(owner, dim=self.dim, epochs=self.epochs, batch_size=self.batch_size)
        check_positive_int(owner, checkpoint_every=self.checkpoint_every)
        check_positive_float(owner, width=self.width, lr=self.lr)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"{owner}: momentum must be in [0, 1), got {self.momentum!r}")
        check_choice(owner, "precision", self.precision, PRECISIONS)
        check_choice(owner, "step", self.step, STEPS)
        check_choice(owner, "memory_format", self.memory_format, MEMORY_FORMATS)
        check_choice(owner, "sgd", self.sgd, SGD_KINDS)
        if not isinstance(self.compile, bool):
            raise ValueError(f"{owner}: compile must be true or false, got {self.compile!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"{owner}: seed must be an int, got {self.seed!r}")


def _scaling(stats: dict) -> dict:
    return {"min": float(stats["min"]), "max": float(stats["max"])}


def _validation_loss(model, val, stats: dict, device: str, precision: str) -> float:
    """Mean Eq. 1 loss over the validation split, in eval mode (no dropout, running BN statistics)."""
    model.eval()
    total, count = torch.zeros((), device=device), 0
    with torch.no_grad():
        for batch in val:
            spec = spectrogram_batch(batch["mels"], stats)  # (B, 1, 128, 100)
            with autocast(device, precision):
                recon, _ = model(spec)  # (B, 1, 128, 100)
            total += autoencoder_loss(spec, recon) * len(spec)
            count += len(spec)
    model.train()
    return float(total / count)


def build_training(
    config: AutoencoderConfig, device: str
) -> tuple[nn.Module, torch.optim.Optimizer, torch.amp.GradScaler]:
    """The autoencoder freshly initialised (from torch's current seed) on `device` in the config's memory
    format, its SGD optimizer and the GradScaler: what `train_autoencoder` trains."""
    from s2i_models.autoencoder import AudioAutoencoder

    model = to_memory_format(
        AudioAutoencoder(config.dim, width=config.width).to(device), config.memory_format
    )
    optimizer = make_sgd(model.parameters(), config.lr, config.momentum, config.sgd)
    return model, optimizer, grad_scaler(device, config.precision)


def train_autoencoder(
    config: AutoencoderConfig,
    train: InMemoryBatches | ShardStream,
    val: InMemoryBatches | ShardStream | None,
    stats: dict,
    out_dir: Path,
    device: str = "cpu",
    resume: bool = True,
    on_epoch: OnEpoch = None,
    progress: bool = False,
) -> TrainResult:
    """Train (or continue training) the audio autoencoder on `train`'s mels; validate on `val` each epoch.

    With resume=True and an `out_dir/resume.pt`, training continues after its epoch (only `epochs` may
    differ from its config); resume=False starts over and overwrites it. History records: epoch,
    train_loss, val_loss (NaN without val), seconds, samples_per_second.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    resume_path, final_path = out_dir / "resume.pt", out_dir / "autoencoder.pt"
    check_data(train, ["mels"], "autoencoder training")
    if val is not None:
        check_data(val, ["mels"], "autoencoder validation")
    if train.n_samples % config.batch_size == 1 and not train.drop_last:
        raise ValueError(
            f"the training split has {train.n_samples} samples: with batch_size {config.batch_size} the last "
            f"batch holds 1 sample, which batch norm cannot train on. Use drop_last=True or another batch size."
        )
    scaling = _scaling(stats)

    with training_mode(device):
        torch.manual_seed(config.seed)
        model, optimizer, scaler = build_training(config, device)
        train.reseed(config.seed)
        history: list[dict] = []
        start, resumed_from = 0, None
        if resume and resume_path.exists():
            state = load_checkpoint(resume_path)
            check_same_config(state["config"], config, resume_path)
            if state["stats"] != scaling:
                raise ValueError(
                    f"cannot resume from {resume_path}: it was trained with spectrogram scaling {state['stats']}, "
                    f"now {scaling}. Delete {out_dir} to start over."
                )
            if state["n_samples"] != train.n_samples:
                raise ValueError(
                    f"cannot resume from {resume_path}: it was trained on {state['n_samples']} samples, the "
                    f"training split now has {train.n_samples}. Delete {out_dir} to start over."
                )
            check_start(state["epoch"], config.epochs, resume_path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            train.load_state(state["data_order"])
            restore_rng(state["rng"], device)
            history = list(state["history"])
            start = resumed_from = state["epoch"]
        last_good = f"The last good checkpoint is {resume_path} (epoch {start})." if start else ""

        bar = epoch_bar(progress, start, config.epochs, f"autoencoder {config.dim}")
        events = EventLog(out_dir, start, "autoencoder")
        model.train()
        match_layouts(optimizer)
        # Runs each batch's update, plain or as a CUDA graph; sums the loss on the device.
        run_step = AutoencoderStep(config, model, optimizer, scaler, stats, device)
        for epoch in range(start + 1, config.epochs + 1):
            clock = Stopwatch(device)
            run_step.begin_epoch()
            count = 0
            for batch in batches_with_progress(train, progress, f"epoch {epoch}"):
                run_step(batch)  # queued on the device: no sync per batch
                count += len(batch["mels"])
            train_loss = run_step.epoch_mean(count)  # the epoch's one sync
            train_seconds = clock.seconds()
            val_loss = (
                _validation_loss(model, val, stats, device, config.precision) if val is not None else math.nan
            )
            losses = {"train_loss (Eq. 1)": train_loss}
            if val is not None:
                losses["val_loss"] = val_loss
            check_finite(losses, epoch, "autoencoder training", last_good)
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "seconds": clock.seconds(),
                "samples_per_second": count / max(train_seconds, 1e-9),
            }
            history.append(record)
            events.epoch(record, {"lr": config.lr})
            if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
                save_atomic(
                    {
                        "epoch": epoch,
                        "config": asdict(config),
                        "stats": scaling,
                        "n_samples": train.n_samples,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict(),
                        "data_order": train.state(),
                        "rng": rng_state(device),
                        "history": history,
                    },
                    resume_path,
                )
                last_good = f"The last good checkpoint is {resume_path} (epoch {epoch})."
            if bar is not None:
                bar.update(1)
                bar.set_postfix(train=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
            if on_epoch is not None:
                on_epoch(dict(record))
        if bar is not None:
            bar.close()
        events.close()

    final_epoch = history[-1]["epoch"] if history else start
    save_atomic(
        {"epoch": final_epoch, "model": model.state_dict(), "config": asdict(config), "stats": scaling},
        final_path,
    )
    return TrainResult(
        history=history, final_checkpoint=final_path, checkpoints=[final_path], resumed_from=resumed_from
    )
