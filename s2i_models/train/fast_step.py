"""One training step of the GAN (Algorithm 1) or of the autoencoder (Eq. 1), run plain or as CUDA graphs.

The training loops hand every batch to a `GanStep` / `AutoencoderStep`; it runs the step and adds the batch's
losses (times its size) to sums on the device, read once an epoch (`epoch_means`): nothing waits for the
device between steps. Three settings of `GanConfig` / `AutoencoderConfig` choose how a step runs. They set
speed, not what is computed (a run resumes across them), but they do change float rounding:

  step           plain: eager PyTorch, one kernel launch per operation (the reference).
                 graphed: on CUDA, each kind of step (G only; D then G) is captured once as a CUDA graph and
                 replayed from static input buffers: the whole step (forwards, backwards, both SGD steps,
                 D's statistics put back, the loss sums) is one launch. A last batch smaller than
                 `batch_size` runs plain. On a CPU, or in fp16 (its GradScaler checks for inf on the host),
                 it falls back to the plain step and logs one line saying so.
  memory_format  contiguous | channels_last: the networks' weights and the images in NHWC order, so cuDNN
                 needs no NCHW<->NHWC conversions. uint8 frames are stored NHWC: the images' channels_last
                 view costs nothing.
  sgd            default (torch's choice: foreach on CUDA, a per-tensor loop on the CPU) | foreach | fused.

Why torch.cuda.graphs and not torch.compile(mode="reduce-overhead"): reduce-overhead graphs only what it
compiled (the forward and backward), leaving both optimizer steps, the statistics restore and the loss sums
as separate launches; it recompiles D when its requires_grad flips between the D and the G update; and it
costs a compile per network and dim (about a minute each at full width). A direct capture takes the whole
step, costs a few warm-up steps, and stacks with `compile` (compile fuses the kernels, the graph removes
their launches). Its price is static shapes (a smaller last batch runs plain) and the bookkeeping below.

Capturing: a few warm-up steps on a side stream (cuDNN's algorithm search, the optimizers' momentum
buffers, compiled code), then the capture. Both run real updates, so the weights, batch-norm statistics,
momentum buffers, loss sums and random state are saved before and written back in place afterwards (the
graph holds their addresses): capturing changes nothing the run computes. A momentum buffer that did not
exist before comes back as zeros: SGD's first step sets buf = grad, the captured step buf = momentum * 0 +
grad, the same value. Eq. 5's moving average enters the graph as two device tensors (the previous epochs'
sum and the divisor) refreshed each epoch, so the captured step follows the epochs like the plain one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from s2i_models.loaders import image_batch, spectrogram_batch
from s2i_models.losses import (
    MovingAverageAdversarial,
    adversarial_batch_loss,
    autoencoder_loss,
    discriminator_loss,
    pixel_loss,
)

if TYPE_CHECKING:  # gan.py and autoencoder.py import this module
    from s2i_models.train.autoencoder import AutoencoderConfig
    from s2i_models.train.gan import GanConfig

log = logging.getLogger(__name__)

STEPS = ("plain", "graphed")
MEMORY_FORMATS = ("contiguous", "channels_last")
SGD_KINDS = ("default", "foreach", "fused")
WARMUP_STEPS = 3  # eager steps on a side stream before a capture


# ---- options -------------------------------------------------------------------------------------------------


def make_sgd(params: Iterable[nn.Parameter], lr: float, momentum: float, kind: str) -> torch.optim.SGD:
    """torch.optim.SGD with the implementation `kind` names (default: torch's own choice)."""
    options = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.SGD(params, lr=lr, momentum=momentum, **options)


def to_memory_format(module: nn.Module, memory_format: str) -> nn.Module:
    """The module's 4-d weights in `memory_format` (in place; call before building its optimizer)."""
    if memory_format == "channels_last":
        module.to(memory_format=torch.channels_last)
    return module


def match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Momentum buffers in their parameters' memory layout: one loaded from a checkpoint saved with another
    `memory_format` keeps that one's, and foreach and fused SGD want a parameter and its buffer alike."""
    for param, state in optimizer.state.items():
        buffer = state.get("momentum_buffer")
        if buffer is not None and buffer.stride() != param.stride():
            state["momentum_buffer"] = torch.empty_like(param).copy_(buffer)


def input_images(frames: torch.Tensor, memory_format: str) -> torch.Tensor:
    """(B, 96, 96, 3) uint8 -> (B, 3, 96, 96) float32 in [-1, 1], stored in `memory_format`."""
    if memory_format == "channels_last":  # the permuted NHWC frames already are channels_last: no copy
        images = frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return images.contiguous(memory_format=torch.channels_last)
    return image_batch(frames)


def graph_fallback(step: str, device: str, precision: str) -> str | None:
    """Why `step` cannot run as CUDA graphs on `device` in `precision` (None when it can or is plain)."""
    if step != "graphed":
        return None
    if torch.device(device).type != "cuda":
        return f"CUDA graphs need a CUDA device, this run trains on {device}"
    if precision == "fp16":
        return "fp16's GradScaler checks its gradients for inf on the host, which a CUDA graph cannot hold"
    return None


def _autocast(device: str, precision: str, cache: bool):
    from s2i_models.train import PRECISIONS, autocast

    if PRECISIONS[precision] is None or cache:
        return autocast(device, precision)
    # A capture must not keep autocast's cast-weight cache (its tensors would be freed under the graph).
    return torch.autocast(torch.device(device).type, dtype=PRECISIONS[precision], cache_enabled=False)


# ---- capture and replay ----------------------------------------------------------------------------------------


class _Snapshot:
    """Copies of everything a warm-up or a capture changes; `restore` writes them back in place."""

    def __init__(
        self, modules: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer], extra, device
    ) -> None:
        self.tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())] + list(extra)
        self.saved = [t.detach().clone() for t in self.tensors]
        self.optimizers = optimizers
        self.momentum = [
            {
                p: s["momentum_buffer"].clone()
                for p, s in o.state.items()
                if s.get("momentum_buffer") is not None
            }
            for o in optimizers
        ]
        self.device = torch.device(device)
        self.rng = (torch.get_rng_state(), torch.cuda.get_rng_state(self.device))

    def restore(self) -> None:
        with torch.no_grad():
            for tensor, saved in zip(self.tensors, self.saved, strict=True):
                tensor.copy_(saved)
            for optimizer, before in zip(self.optimizers, self.momentum, strict=True):
                for param, state in optimizer.state.items():
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        continue
                    if param in before:
                        buffer.copy_(before[param])
                    else:  # created by the warm-up: zeros act as "none yet"
                        buffer.zero_()
        torch.set_rng_state(self.rng[0])
        torch.cuda.set_rng_state(self.rng[1], self.device)


class _Graphs:
    """One CUDA graph per kind of step, captured on first use, replayed from static inputs."""

    def __init__(
        self,
        step: Callable[..., None],
        device: str,
        modules: Sequence[nn.Module],
        optimizers: Sequence[torch.optim.Optimizer],
        state: Sequence[torch.Tensor],
    ) -> None:
        self.step, self.device = step, device
        self.modules, self.optimizers, self.state = modules, optimizers, state
        self.graphs: dict[object, torch.cuda.CUDAGraph] = {}
        self.inputs: list[torch.Tensor] | None = None
        self.pool = None  # one memory pool for all graphs: they never run at once and share no outputs

    def run(self, kind: object, inputs: Sequence[torch.Tensor]) -> bool:
        """Run the step on `inputs` as kind `kind`'s graph; False (nothing done) when capturing failed."""
        with torch.cuda.device(self.device):  # captures and replays go to the training device's streams
            if self.inputs is None:
                self.inputs = [torch.empty_like(x) for x in inputs]
            for static, given in zip(self.inputs, inputs, strict=True):
                static.copy_(given)
            if kind not in self.graphs:
                graph = self._capture(kind)
                if graph is None:
                    return False
                self.graphs[kind] = graph
            self.graphs[kind].replay()
        return True

    def _capture(self, kind: object) -> torch.cuda.CUDAGraph | None:
        snapshot = _Snapshot(self.modules, self.optimizers, self.state, self.device)
        try:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self.step(kind, *self.inputs)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
                self.step(kind, *self.inputs)
        except Exception as error:  # an operation a graph cannot hold: train on, plain
            snapshot.restore()
            log.warning(
                f"step=graphed falls back to the plain step: capturing the step failed "
                f"({type(error).__name__}: {error})"
            )
            return None
        self.pool = graph.pool()
        snapshot.restore()
        return graph


class _Stepper:
    """What both steps share: plain or graphed running, and the loss sums."""

    def __init__(self, device: str, precision: str, step: str, slots: int) -> None:
        self.device, self.precision = device, precision
        self.sums = torch.zeros(slots, device=device)  # sum over the epoch's batches of loss x batch size
        reason = graph_fallback(step, device, precision)
        if reason is not None:
            log.warning(f"step=graphed falls back to the plain step: {reason}")
        self.graphed = step == "graphed" and reason is None
        self.graphs: _Graphs | None = None
        self.cache = not self.graphed

    def autocast(self):
        return _autocast(self.device, self.precision, self.cache)

    def _run(self, kind: object, inputs: Sequence[torch.Tensor], full: bool) -> None:
        if self.graphs is not None and full:
            if self.graphs.run(kind, inputs):
                return
            self.graphs = None  # capturing failed (logged): plain for the rest of the run
        self.step(kind, *inputs)

    def step(self, kind: object, *inputs: torch.Tensor) -> None:
        raise NotImplementedError


# ---- the GAN -------------------------------------------------------------------------------------------------------


class GanStep(_Stepper):
    """Algorithm 1's step on one batch: D's update on its epochs or steps (`update_d`), then G's update.

    D stays in train mode; in G's update its parameters are frozen and its batch-norm running statistics
    are put back afterwards (see s2i_models/train/gan.py). Losses are summed on the device.
    """

    SLOTS = ("pixel", "adversarial", "moving_average", "generator", "discriminator")

    def __init__(
        self,
        config: GanConfig,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: torch.optim.Optimizer,
        optimizer_d: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        device: str,
    ) -> None:
        super().__init__(device, config.precision, config.step, len(self.SLOTS))
        self.config = config
        self.discriminator = discriminator
        # Forward passes may go through compiled wrappers; weights, optimizers and checkpoints use the modules.
        self.run_generator = torch.compile(generator) if config.compile else generator
        self.run_discriminator = torch.compile(discriminator) if config.compile else discriminator
        self.optimizer_g, self.optimizer_d, self.scaler = optimizer_g, optimizer_d, scaler
        self.statistics = list(discriminator.buffers())
        self.saved_statistics = [b.detach().clone() for b in self.statistics]
        self.ma_sum = torch.zeros((), device=device)  # Eq. 5: the previous epochs' mean adversarial losses
        self.ma_divisor = torch.ones((), device=device)  # ... and 1 + how many there are
        if self.graphed:
            modules, optimizers = [generator, discriminator], [optimizer_g, optimizer_d]
            self.graphs = _Graphs(self.step, device, modules, optimizers, [self.sums])

    def begin_epoch(self, moving_average: MovingAverageAdversarial) -> None:
        self.sums.zero_()
        self.ma_sum.fill_(moving_average.previous_total)
        self.ma_divisor.fill_(moving_average.divisor)

    def __call__(self, batch: dict[str, torch.Tensor], update_d: bool) -> None:
        frames, embeddings = batch["frames"], batch["embeddings"]
        self._run(update_d, (frames, embeddings), full=len(frames) == self.config.batch_size)

    def step(self, update_d: bool, frames: torch.Tensor, embeddings: torch.Tensor) -> None:
        config = self.config
        real = input_images(frames, config.memory_format)  # (B, 3, 96, 96)
        embedding = embeddings.float()  # (B, dim)
        size = len(real)
        pair_embedding = torch.cat([embedding, embedding])  # (2B, dim): real half, synthetic half
        with self.autocast():
            fake = self.run_generator(embedding)  # (B, 3, 96, 96)

        if update_d:
            self.discriminator.requires_grad_(True)
            with self.autocast():
                scores = self.run_discriminator(torch.cat([real, fake.detach()]), pair_embedding)  # (2B,)
            d_loss = discriminator_loss(scores[:size], scores[size:], config.r_max, config.r_min)  # Eq. 2
            self.optimizer_d.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self.scaler.step(self.optimizer_d)
            self.discriminator.requires_grad_(False)
            self.sums[4].add_(d_loss.detach() * size)

        with torch.no_grad():
            torch._foreach_copy_(self.saved_statistics, self.statistics)
        with self.autocast():
            scores = self.run_discriminator(torch.cat([real, fake]), pair_embedding)  # (2B,)
        adversarial = adversarial_batch_loss(scores[size:], config.r_max)  # Eq. 4
        averaged = (adversarial + self.ma_sum) / self.ma_divisor  # Eq. 5
        pixels = pixel_loss(real, fake)  # Eq. 3
        g_loss = pixels + config.adversarial_weight * averaged  # Eq. 6
        self.optimizer_g.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        with torch.no_grad():  # after backward: autograd saved the statistics' versions
            torch._foreach_copy_(self.statistics, self.saved_statistics)  # D frozen: its statistics too
        self.scaler.step(self.optimizer_g)
        self.scaler.update()
        self.sums[:4].add_(torch.stack([pixels, adversarial, averaged, g_loss]).detach() * size)

    def epoch_means(self, count: int, d_samples: int) -> dict[str, float]:
        """The epoch's mean losses by slot (NaN for the discriminator without a D update): one sync."""
        divisors = torch.tensor([count] * 4 + [max(d_samples, 1)], dtype=torch.float32, device=self.device)
        means = dict(zip(self.SLOTS, (self.sums / divisors).tolist(), strict=True))
        if not d_samples:
            means["discriminator"] = float("nan")
        return means


# ---- the autoencoder ------------------------------------------------------------------------------------------------


class AutoencoderStep(_Stepper):
    """Eq. 1's step on one batch of unscaled mels: scale, reconstruct, SGD; the loss summed on the device."""

    def __init__(
        self,
        config: AutoencoderConfig,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        stats: dict,
        device: str,
    ) -> None:
        super().__init__(device, config.precision, config.step, 1)
        self.config, self.stats = config, stats
        self.run_model = torch.compile(model) if config.compile else model
        self.optimizer, self.scaler = optimizer, scaler
        if self.graphed:
            self.graphs = _Graphs(self.step, device, [model], [optimizer], [self.sums])

    def begin_epoch(self) -> None:
        self.sums.zero_()

    def __call__(self, batch: dict[str, torch.Tensor]) -> None:
        mels = batch["mels"]
        self._run(None, (mels,), full=len(mels) == self.config.batch_size)

    def step(self, _kind: object, mels: torch.Tensor) -> None:
        spec = spectrogram_batch(mels, self.stats)  # (B, 1, 128, 100): one channel, any memory format
        with self.autocast():
            recon, _ = self.run_model(spec)  # (B, 1, 128, 100)
        loss = autoencoder_loss(spec, recon)  # Eq. 1
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.sums.add_(loss.detach() * len(spec))

    def epoch_mean(self, count: int) -> float:
        return (self.sums[0] / count).item()
