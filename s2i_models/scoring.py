"""Score a generator's translations with the per-class informativity classifiers (paper §5.3; SPEC §5)."""

from __future__ import annotations

import numpy as np
from torch import nn

from s2i_models.train.classifier import classify
from s2i_models.translate import generate


def score_translations(
    generator: nn.Module,
    embeddings: np.ndarray,
    class_names: np.ndarray,
    classifiers: dict[str, nn.Module],
    samples: int,
    seed: int,
    device: str = "cpu",
) -> dict[str, dict[str, float]]:
    """Shares of a generator's translations that each class's classifier calls informative.

    `embeddings` (N, dim) are sounds of the classes `class_names` (N,); each is translated `samples` times
    with MC dropout. "informativity": per class, the share of its own sounds' translations called
    informative (the paper's measure). "cross_class": per class, the share of every *other* class's
    translations its classifier calls informative: a control, since a generator that drew the same picture
    whatever it heard would score as high there as on its own class.
    """
    images = generate(generator, embeddings, samples, seed=seed, device=device)  # (N, samples, 96, 96, 3)
    shares, cross = {}, {}
    for name, classifier in classifiers.items():
        verdicts = classify(classifier, images.reshape(-1, 96, 96, 3), device).reshape(len(images), samples)
        own = class_names == name
        shares[name] = float(verdicts[own].mean()) if own.any() else float("nan")
        cross[name] = float(verdicts[~own].mean()) if (~own).any() else float("nan")
    return {"informativity": shares, "cross_class": cross}


class EpochJudge:
    """Informativity of a generator at the end of a training epoch, in the training process (SPEC §5).

    Holds the test sounds' embeddings and the per-class judges on the device, loaded once. A call translates
    every test sound once (MC dropout on, batch norm in eval mode, as the authors' test script ran their
    generator), gives each translation, as it leaves tanh, to the judge of its sound's class, and returns the
    share called informative per class. Batched, without gradients; the global random state is saved and put
    back, so training goes on exactly as it would without judging, and each epoch's dropout is seeded with
    (seed, epoch), so a resumed run records the same values.
    """

    def __init__(
        self,
        embeddings,
        class_names,
        judges: dict[str, nn.Module],
        seed: int,
        device: str = "cpu",
        batch_size: int = 512,
    ) -> None:
        import torch

        names = [str(name) for name in class_names]
        unknown = sorted(set(names) - set(judges))
        if unknown:
            raise ValueError(
                f"EpochJudge: no judge for the test sounds of {unknown}; judges: {sorted(judges)}"
            )
        self.classes = [name for name in judges if name in set(names)]
        index = {name: i for i, name in enumerate(self.classes)}
        self.embeddings = torch.as_tensor(np.asarray(embeddings, dtype=np.float32), device=device)  # (N, dim)
        self.labels = torch.as_tensor([index[n] for n in names], device=device)  # (N,)
        self.judges = [judges[name].to(device).eval() for name in self.classes]
        self.counts = torch.bincount(self.labels, minlength=len(self.classes)).tolist()
        self.seed, self.device, self.batch_size = seed, device, batch_size

    def __call__(self, generator: nn.Module, epoch: int) -> dict[str, float]:
        import torch

        from s2i_models.train import restore_rng, rng_state

        saved = rng_state(self.device)
        was_training = generator.training
        informative = torch.zeros(len(self.classes), device=self.device)
        try:
            torch.manual_seed(self.seed * 100_003 + epoch)
            generator.eval()
            with torch.no_grad():
                for start in range(0, len(self.embeddings), self.batch_size):
                    images = generator(self.embeddings[start : start + self.batch_size])  # (B, 3, 96, 96)
                    labels = self.labels[start : start + self.batch_size]
                    for c, judge in enumerate(self.judges):
                        own = labels == c
                        if own.any():
                            informative[c] += (judge(images[own]).argmax(dim=1) == 1).sum()
        finally:
            generator.train(was_training)
            restore_rng(saved, self.device)
        return {
            name: float(informative[c]) / self.counts[c]
            for c, name in enumerate(self.classes)
            if self.counts[c]
        }
