"""Train one binary informativity classifier (SPEC §5): SGD lr 0.001, momentum 0.9, weight decay 5e-5, NLL.

Inputs are labelled synthetic images of one class's sounds: (N, 96, 96, 3) uint8 and labels 1 = informative,
0 = not. The split into training and held-out images is stratified by label and seeded, so the same data
and seed give the same classifier on the CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from s2i_models.informativity import InformativityClassifier
from s2i_models.loaders import image_batch
from s2i_models.train import EventLog


@dataclass(frozen=True)
class ClassifierConfig:
    width: float = 1.0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-5
    train_fraction: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"ClassifierConfig: epochs and batch_size must be >= 1, got {self}")
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"ClassifierConfig: train_fraction must be in (0, 1), got {self.train_fraction}")


@dataclass
class ClassifierResult:
    model: InformativityClassifier
    history: list[dict]  # per epoch: epoch, train_loss, train_accuracy, test_accuracy
    train_index: np.ndarray
    test_index: np.ndarray
    test_accuracy: float
    chance: float  # accuracy of always answering the held-out images' commoner label

    def state(self) -> dict:
        """What a checkpoint holds: weights, architecture and the split."""
        return {
            "model": self.model.state_dict(),
            "arch": asdict(self.model.arch),
            "test_accuracy": self.test_accuracy,
            "chance": self.chance,
        }


def stratified_split(labels: np.ndarray, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): each label's images shuffled with `seed`, the first `train_fraction` to train."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for value in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == value))
        cut = int(round(len(index) * train_fraction))
        cut = min(max(cut, 1), len(index) - 1) if len(index) > 1 else len(index)
        train.append(index[:cut])
        test.append(index[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


class NeverInformative(nn.Module):
    """The judge of a class none of whose candidates was recognisable: every picture is non-informative."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # log-probabilities, (B, 2)
        out = torch.full((images.shape[0], 2), -30.0, device=images.device)
        out[:, 0] = 0.0
        return out


@torch.no_grad()
def classify(model: nn.Module, images: np.ndarray, device: str = "cpu", batch_size: int = 256) -> np.ndarray:
    """(N, 96, 96, 3) uint8 -> (N,) bool: informative (the classifier in eval mode, no dropout)."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = image_batch(torch.from_numpy(images[start : start + batch_size]).to(device))  # (B, 3, 96, 96)
        out.append((model(batch).argmax(dim=1) == 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, train_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with every group (a source video) wholly on one side, stratified by label as
    far as whole groups allow: groups in seeded order go to the held-out side while neither label's
    held-out count would pass its share (1 - train_fraction), else to training.

    Translations of one sound (or of one video's sounds) look alike; split by image, they would sit on both
    sides and the held-out accuracy would measure memory, not judgement.
    """
    labels, groups = np.asarray(labels), np.asarray(groups)
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise ValueError(
            f"grouped_split: all {len(labels)} images come from one source video ({names[0] if len(names) else '-'}); "
            "a held-out set needs images of at least two"
        )
    target = {v: int(round((labels == v).sum() * (1 - train_fraction))) for v in np.unique(labels)}
    held = dict.fromkeys(target, 0)
    test_groups = []
    for g in np.random.default_rng(seed).permutation(len(names)):
        members = labels[inverse == g]
        counts = {v: int((members == v).sum()) for v in target}
        if all(held[v] + counts[v] <= max(target[v], 1) for v in target):
            test_groups.append(g)
            for v in target:
                held[v] += counts[v]
    if not test_groups or len(test_groups) == len(names):  # both sides need images
        sizes = np.bincount(inverse)
        test_groups = [int(np.argmin(sizes))]
    in_test = np.isin(inverse, test_groups)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    config: ClassifierConfig,
    device: str = "cpu",
    groups: np.ndarray | None = None,
    log_dir: Path | None = None,
) -> ClassifierResult:
    """Fit on `train_fraction` of (images, labels); report accuracy on the rest. With `groups` (each image's
    source video) the split keeps every group on one side (`grouped_split`), else it is stratified by image.
    With `log_dir`, TensorBoard events of every epoch go to `log_dir/tensorboard`."""
    labels = np.asarray(labels, dtype=np.int64)
    if images.shape[1:] != (96, 96, 3) or len(images) != len(labels):
        raise ValueError(f"train_classifier: images {images.shape} and labels {labels.shape} do not match")
    if set(np.unique(labels)) != {0, 1}:
        raise ValueError("train_classifier: needs both informative (1) and non-informative (0) images")
    if groups is not None:
        train_index, test_index = grouped_split(labels, groups, config.train_fraction, config.seed)
    else:
        train_index, test_index = stratified_split(labels, config.train_fraction, config.seed)
    torch.manual_seed(config.seed)
    model = InformativityClassifier(width=config.width).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    loss_fn = nn.NLLLoss()
    x_train = torch.from_numpy(images[train_index])
    y_train = torch.from_numpy(labels[train_index])
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    events = EventLog(log_dir, 0, "classifier") if log_dir is not None else None
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        total, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), config.batch_size):
            pick = order[start : start + config.batch_size]
            if len(pick) < 2:  # BatchNorm needs two images
                continue
            x = image_batch(x_train[pick].to(device))  # (B, 3, 96, 96)
            y = y_train[pick].to(device)
            log_probs = model(x)  # (B, 2)
            loss = loss_fn(log_probs, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(pick)
            correct += int((log_probs.argmax(dim=1) == y).sum())
            seen += len(pick)
        if not np.isfinite(total):
            raise FloatingPointError(f"train_classifier: loss is not finite at epoch {epoch}; lower lr")
        test_accuracy = float((classify(model, images[test_index], device) == labels[test_index]).mean())
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / max(seen, 1),
                "train_accuracy": correct / max(seen, 1),
                "test_accuracy": test_accuracy,
            }
        )
        if events is not None:
            events.epoch(history[-1], {"lr": config.lr})
    if events is not None:
        events.close()
    held_out = labels[test_index]
    chance = float(max(held_out.mean(), 1 - held_out.mean()))
    return ClassifierResult(
        model.cpu().eval(), history, train_index, test_index, history[-1]["test_accuracy"], chance
    )


def load_classifier(state: dict, device: str = "cpu") -> InformativityClassifier:
    """A classifier from `ClassifierResult.state()` (loaded with weights_only=True), in eval mode."""
    model = InformativityClassifier(**state["arch"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()
