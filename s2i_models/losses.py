"""The paper's losses (§4.3, Eqs. 1-6), each a batch-averaged mean squared error.

Scores are realness-and-coherence scores (RC-scores) in [-1, 1]: r_max = +1 means real and coherent with
the sound, r_min = -1 synthetic. All losses are computed in float32, whatever precision the networks ran in.
"""

from __future__ import annotations

from collections import deque

import torch
import torch.nn.functional as F


def autoencoder_loss(spec: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Eq. 1: MSE between the spectrograms (B, 1, 128, 100) and their reconstructions."""
    return F.mse_loss(recon.float(), spec.float())


def _score_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    scores = scores.float()
    return F.mse_loss(scores, torch.full_like(scores, target))


def discriminator_loss(
    score_real: torch.Tensor, score_fake: torch.Tensor, r_max: float = 1.0, r_min: float = -1.0
) -> torch.Tensor:
    """Eq. 2 applied to a balanced batch (Algorithm 1, line 9): MSE(D(Y, x), r_max) + MSE(D(G(x), x), r_min).

    score_real, score_fake: (B,) RC-scores of the real frames and of the generator's images for the same sounds.
    """
    return _score_loss(score_real, r_max) + _score_loss(score_fake, r_min)


def pixel_loss(images: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """Eq. 3: MSE between the real frames (B, 3, 96, 96) and the generated images, both in [-1, 1]."""
    return F.mse_loss(generated.float(), images.float())


def adversarial_batch_loss(score_fake: torch.Tensor, r_max: float = 1.0) -> torch.Tensor:
    """Eq. 4: MSE between D's RC-scores (B,) of generated images and r_max (G wants them called real)."""
    return _score_loss(score_fake, r_max)


class MovingAverageAdversarial:
    """Eq. 5 as written: (L_batch + sum of the mean adversarial losses of the previous k-1 epochs) / k.

    The previous epochs' means are plain numbers (constants), so the gradient of this loss is the batch
    loss's gradient scaled by 1/k: with the paper's lambda = 0.1 and k = 5 the adversarial term steers G
    with an effective weight of 0.02, while its value moves slowly (the paper's stabiliser).

    Early epochs: while fewer than k-1 previous epochs exist (epochs 1 .. k-1), the sum runs over the
    `available` ones and the divisor is 1 + available (epoch 1: the batch loss itself). Dividing by k
    instead would shrink both the value and the gradient of the first epochs for no reason.

    Call `end_epoch(mean of the epoch's Eq. 4 batch losses)` after every epoch. A captured training step
    cannot call this (Python numbers would be frozen in the graph): it computes (L_batch + previous_total)
    / divisor from two device tensors refreshed each epoch (s2i_models/train/fast_step.py), the same value.
    """

    def __init__(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"MovingAverageAdversarial: k (epochs averaged) must be an int >= 1, got {k!r}")
        self.k = k
        self.previous: deque[float] = deque(maxlen=k - 1)  # means of the last k-1 finished epochs

    @property
    def divisor(self) -> int:
        return 1 + len(self.previous)

    @property
    def previous_total(self) -> float:
        """The sum of the previous epochs' means (0.0 in epoch 1)."""
        return float(sum(self.previous))

    def __call__(self, batch_loss: torch.Tensor) -> torch.Tensor:
        return (batch_loss + self.previous_total) / self.divisor

    def end_epoch(self, epoch_mean: float) -> None:
        if self.k > 1:
            self.previous.append(float(epoch_mean))

    def state_dict(self) -> dict:
        return {"k": self.k, "previous": list(self.previous)}

    def load_state_dict(self, state: dict) -> None:
        if state["k"] != self.k:
            raise ValueError(f"MovingAverageAdversarial: state has k={state['k']}, this instance k={self.k}")
        self.previous = deque((float(v) for v in state["previous"]), maxlen=self.k - 1)
