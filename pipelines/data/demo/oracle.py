"""The demo's stand-in for the person who labels synthetic images as informative or not (paper §5.3).

Rule: an image is **informative** of its sound's class when a simple classifier fitted on the demo's real
training frames gives that class a probability at least `margin` above every other answer, "none of the
classes" included.

The classifier is multinomial logistic regression (numpy, full-batch gradient descent) on the frame shrunk
to 12 x 12 colour blocks (8 x 8 pixel means: layout and colour, which is what tells the demo's scenes
apart and what a blurry translation can get right). Its extra class "none" is fitted on pictures of no
scene: white noise, blocky noise at four scales, and real frames with their pixels shuffled. Without it,
logistic regression extrapolates and calls an untrained generator's noise a confident "baby cry".
Images that average several classes (what an early generator draws) mostly land on "none" or below the
margin, as a person would judge them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NONE = "none"  # the extra answer: not a picture of any class
BLOCK = 8  # 96 / 8 = 12 blocks a side
NOISE_SCALES = (3, 6, 12, 24)  # blocky noise: cells per side


def block_features(frames: np.ndarray) -> np.ndarray:
    """(N, 96, 96, 3) uint8 -> (N, 432) float32: the mean colour of each 8 x 8 block, in [0, 1]."""
    if frames.ndim != 4 or frames.shape[1:] != (96, 96, 3):
        raise ValueError(f"demo oracle: expected (N, 96, 96, 3) frames, got {frames.shape}")
    n = len(frames)
    blocks = frames.reshape(n, 96 // BLOCK, BLOCK, 96 // BLOCK, BLOCK, 3).astype(np.float32).mean(axis=(2, 4))
    return (blocks / 255.0).reshape(n, -1)


def scene_free_pictures(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pictures of no scene, as many as `frames`: white noise, blocky noise, pixel-shuffled real frames."""
    n = len(frames)
    parts = [rng.integers(0, 256, (max(1, n // 4), 96, 96, 3), dtype=np.uint8)]
    for cells in NOISE_SCALES:
        low = rng.integers(0, 256, (max(1, n // 8), cells, cells, 3), dtype=np.uint8)
        parts.append(np.repeat(np.repeat(low, 96 // cells, axis=1), 96 // cells, axis=2))
    shuffled = frames[: max(1, n // 4)].reshape(-1, 96 * 96, 3)
    parts.append(shuffled[:, rng.permutation(96 * 96)].reshape(-1, 96, 96, 3))
    return np.concatenate(parts)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class DemoOracle:
    """Fitted weights; `answers` = the class names then NONE, in output order."""

    answers: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    margin: float

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 96, 96, 3) uint8 -> (N, classes + 1) probabilities (last column: NONE)."""
        x = (block_features(images) - self.mean) / self.scale
        return _softmax(x @ self.weights + self.bias)

    def margins(self, images: np.ndarray, class_names: list[str]) -> np.ndarray:
        """p(the given class) - max p(any other answer), per image."""
        if len(class_names) != len(images):
            raise ValueError(f"demo oracle: {len(class_names)} class names for {len(images)} images")
        return self._margins(self.probabilities(images), self._indices(class_names))

    def _indices(self, class_names: list[str]) -> np.ndarray:
        unknown = sorted(set(class_names) - set(self.answers[:-1]))
        if unknown:
            raise ValueError(
                f"demo oracle: classes {unknown} were not in its training frames {self.answers[:-1]}"
            )
        return np.array([self.answers.index(name) for name in class_names])

    @staticmethod
    def _margins(p: np.ndarray, index: np.ndarray) -> np.ndarray:
        rows = np.arange(len(p))
        others = p.copy()
        others[rows, index] = -1.0
        return p[rows, index] - others.max(axis=1)

    def informative(self, images: np.ndarray, class_names: list[str]) -> np.ndarray:
        return self.margins(images, class_names) >= self.margin

    def evaluate(self, frames: np.ndarray, class_names: list[str]) -> dict[str, float]:
        """On real frames: how often the top answer is the class, and how often the rule says informative."""
        p = self.probabilities(frames)
        truth = self._indices(class_names)
        return {
            "top_answer_accuracy": round(float((p.argmax(axis=1) == truth).mean()), 4),
            "informative_share": round(float((self._margins(p, truth) >= self.margin).mean()), 4),
        }


def fit_demo_oracle(
    frames: np.ndarray,
    class_names: list[str],
    *,
    margin: float = 0.5,
    seed: int = 0,
    steps: int = 500,
    learning_rate: float = 1.0,
    l2: float = 1e-3,
) -> DemoOracle:
    """Fit on real (N, 96, 96, 3) frames with their class names, plus as many scene-free pictures."""
    if len(frames) != len(class_names) or len(frames) == 0:
        raise ValueError(f"demo oracle: {len(frames)} frames but {len(class_names)} class names")
    rng = np.random.default_rng(seed)
    classes = sorted(set(class_names))
    answers = [*classes, NONE]
    negatives = scene_free_pictures(frames, rng)
    features = np.concatenate([block_features(frames), block_features(negatives)])
    targets = np.concatenate([[classes.index(c) for c in class_names], np.full(len(negatives), len(classes))])
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-3
    x = (features - mean) / scale
    # "none" weighs as much as one class, however many scene-free pictures there are.
    weight = np.where(targets == len(classes), len(frames) / len(classes) / len(negatives), 1.0)[:, None]
    onehot = np.eye(len(answers))[targets]
    weights = np.zeros((x.shape[1], len(answers)))
    bias = np.zeros(len(answers))
    for _ in range(steps):
        gradient = weight * (_softmax(x @ weights + bias) - onehot) / len(x)
        weights -= learning_rate * (x.T @ gradient + l2 * weights)
        bias -= learning_rate * gradient.sum(axis=0)
    return DemoOracle(answers, mean, scale, weights, bias, margin)
