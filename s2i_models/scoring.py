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
