"""The demo's stand-in for the person who labels synthetic images as informative or not (paper §5.3).

Rule: a picture is **informative** of class C when the class's object (baby_cry: the face; dog: the dog;
rail_transport: the train front; fireworks: the bursts of sparks; water_flowing: the water) is recognisable
in it, on any background, sharp or blurred; not when only C's background is there (blanket, field, track,
night sky, bank). In numbers: a judge (a small CNN) gives each picture probabilities over the classes and
NONE ("no class's object"); the picture is informative of C when p(C) is at least `margin` (0.5 by default;
the profile's `evaluation.oracle_margin`) above every other answer, NONE included.

Judgement calls, as a person would make them:
- baby_cry's face and the dog carry no trace of the pitch off their own scene (the pitch colours their
  blanket and field): they are judged by shape and their own colours.
- Bursts over a bright background (a blanket, a sky) show as pale rays, still a burst: informative. Where an
  object all but vanishes into its background (under half of its footprint changed by 30 grey levels) the
  composite is left out of the training set: the judge decides.
- Pictures that mix classes are not informative: averages of 2-5 pictures of different classes, and the
  mean of many pictures of several classes (what a generator that collapsed to one picture for every sound
  draws). The mean of many pictures of ONE class shows that class's object, ghosted (a blurred face, a dog
  with two heads, a train front): it is judged like any picture and is mostly informative (measured below).
  Fitted with such means as "none", the judge also turned real, low-contrast objects down (a tan dog on an
  olive field: 53-60 % of one clip's frames informative instead of 87-100 %), so they are not in the set.

Training set (fit_demo_oracle, about 8,200 pictures, made anew for each fit): 48 moments of every demo class
rendered as layers (pipelines.data.demo.examples.render_layers: background, object over black, object over
white; pitches and sizes spread evenly over their ranges), shrunk to 48 x 48 (2 x 2 pixel means, what the
judge sees), and recombined in torch. Half the pictures are objects of the answered classes: on a random
background of any class (10 % on their own class's), half of them tinted (x 0.75-1.25 per channel), or (15 %)
one of up to 64 real training frames of the class (`frames`). The other half are NONE: backgrounds alone of
every class (36 %), white noise (8 %), blocky noise of 2-48 cells a side (10 %), pictures with their pixels
shuffled (8 %), averages of 2-5 pictures of different classes (20 %), means of 12 or more pictures of 2-5
classes (10 %), and, when `class_names` leave out some demo classes, their objects (8 %). Every picture is
blurred with a Gaussian of sigma uniform in BLUR_SIGMA = [0, 2] pixels of the 96 x 96 picture (the GAN's
translations are blurry: an object blurred that much must still count), and at each step mirrored, with
contrast x 0.8-1.2, brightness +-0.05, colour balance x 0.92-1.08 and pixel noise (sd up to 0.03).

Judge: 3 x 3 convolutions 16, 32, 48 channels (stride 2: 48 -> 24 -> 12 -> 6), one more of 48 channels,
each with batch norm and ReLU; the mean and maximum of each channel; a linear layer. Adam, one-cycle learning
rate up to 0.01, 300 steps of 128 pictures. Cost on one core of the 2-core EPYC this was written on (loaded
by other work): 15-19 s of CPU time per fit, about 2.5 s of it rendering, plus about 3 s the first time a
process uses torch; judging 3,000 pictures takes about 1 s. `load_or_fit_demo_oracle` stores a fit and
reuses it for the same (ORACLE_VERSION, classes, seed, margin, frames), so a run fits once.

Determinism: torch runs on one thread inside the fit and the judging, draws come from a numpy generator and
a torch generator seeded with `seed`, and the global torch generator is restored afterwards: the same seed
and frames on the same machine give the same weights. On another CPU, oneDNN and BLAS pick other kernels
(rounding differs in the last bits, and 300 steps of training amplify it): margins move a little and
pictures near the margin may change label.

Measured (4 seeds; fitted on 191 frames of 25 generated demo clips; judged on pictures made independently
with pipelines.data.demo.examples and on 78 frames of 10 other clips), share called informative of C:
- C's background alone: 0 % of 40 per class, for every class (the previous oracle: dog 85 %, fireworks
  100 %, rail_transport 30 %);
- C's object on another class's background: 94-100 % per class, fireworks 91-95 % (of 80; the worst
  object and background pair 80-85 % of 20, mostly bursts over a bright one); the previous oracle: 1-30 %;
- C's object on its own background: 90-100 % per class (of 40); frames of real clips: 87-100 % per class;
- blurred with sigma 2: 90-100 % on its own background, 89-100 % on another class's;
- the mean of 30 pictures of C: baby_cry 40-100 %, water_flowing 80-100 %, the others 100 % (of 5);
- of any class: white noise, blocky noise, the mean of pictures of all classes or of two: 0 %; averages of
  2-5 pictures of different classes: 0-2 % of 100.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.data.demo.examples import LIGHT_OBJECTS, render_layers
from pipelines.data.demo.plan import LOUDNESS_RANGE
from pipelines.data.demo.scenes import SCENES
from pipelines.data.files import atomic_open

ORACLE_VERSION = 2  # bump when the rule, the training set or the network change: cached oracles are refitted
NONE = "none"  # the extra answer: no class's object in the picture
IMAGE_SIZE = 96  # the pictures judged: (N, 96, 96, 3) uint8
POOL = 2  # the network sees 2 x 2 pixel means: 48 x 48
WIDTHS, DEEP, NORM = (16, 32, 48), True, True  # the network's channels (see _network)
BLUR_SIGMA = (0.0, 2.0)  # Gaussian blur of every training picture, sigma in pixels of the 96 x 96 picture
NOISE_CELLS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48)  # blocky noise: cells per side
VISIBLE_LEVEL = 30 / 255  # a pixel shows the object when the object changes it by this much
VISIBLE_SHARE = 0.5  # a composite is a positive when this share of the object's footprint shows
REAL_PER_CLASS = 64  # real training frames kept per class (extra positives)
MEAN_OF = 12  # a "mixed_mean" negative averages at least this many pictures
TINTED, TINT = 0.5, (0.75, 1.25)  # share of rendered objects tinted, and the gain per channel
OWN_BACKGROUND = 0.1  # share of rendered positives put on their own class's background (else: any class's)
# Shares of the "none" half of a batch; an object of a demo class that is not an answer counts as none too.
NEGATIVE_KINDS = {
    "background": 0.36,
    "white_noise": 0.08,
    "blocky_noise": 0.1,
    "shuffled": 0.08,
    "class_average": 0.2,  # 2-5 pictures of different classes, averaged
    "mixed_mean": 0.1,  # MEAN_OF or more pictures of 2-5 classes averaged: a collapsed generator's
    "other_object": 0.08,  # only when class_names leave out some demo classes
}


def _check_images(images: np.ndarray, what: str = "images") -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"demo oracle: expected (N, 96, 96, 3) {what}, got {images.shape}")
    return images


class _Threads:
    """torch on one thread inside (deterministic for a seed on one machine), the caller's setting after."""

    def __enter__(self) -> None:
        import torch

        self.previous = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self.previous)


def _network(n_answers: int) -> Any:
    """A small CNN: strided 3 x 3 convolutions WIDTHS (48 -> 24 -> 12 -> 6), one more at 6 x 6 (DEEP),
    then the mean and the maximum of each channel over the picture, and a linear layer to the answers."""
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    channels = 3
    for width in WIDTHS:
        layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1)]
        layers += [nn.BatchNorm2d(width), nn.ReLU()] if NORM else [nn.ReLU()]
        channels = width
    if DEEP:
        layers += [nn.Conv2d(channels, channels, 3, padding=1)]
        layers += [nn.BatchNorm2d(channels), nn.ReLU()] if NORM else [nn.ReLU()]

    class Judge(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.head = nn.Linear(2 * channels, n_answers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.features(x - 0.5)
            return self.head(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))

    return Judge()


def _to_input(images: np.ndarray) -> Any:
    """(N, 96, 96, 3) uint8 -> (N, 3, 48, 48) float tensor in [0, 1]."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return F.avg_pool2d(x, POOL)


@dataclass(eq=False)
class DemoOracle:
    """A fitted judge; `answers` = the class names (sorted) then NONE, in output order."""

    answers: list[str]
    margin: float
    params: dict[str, np.ndarray]
    seed: int = 0
    key: str = ""  # what it was fitted from (see `fit_key`)
    _net: Any = field(default=None, init=False, repr=False, compare=False)

    def _module(self) -> Any:
        if self._net is None:
            import torch

            net = _network(len(self.answers))
            net.load_state_dict({name: torch.from_numpy(value) for name, value in self.params.items()})
            self._net = net.to(memory_format=torch.channels_last).eval()
        return self._net

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 96, 96, 3) uint8 -> (N, classes + 1) probabilities (last column: NONE)."""
        import torch

        images = _check_images(images)
        out = np.empty((len(images), len(self.answers)))
        with _Threads(), torch.no_grad():
            net = self._module()
            for start in range(0, len(images), 500):
                x = _to_input(images[start : start + 500]).contiguous(memory_format=torch.channels_last)
                logits = net(x)
                out[start : start + 500] = torch.softmax(logits.double(), dim=1).numpy()
        return out

    def margins(self, images: np.ndarray, class_names: list[str]) -> np.ndarray:
        """p(the given class) - max p(any other answer), per image."""
        if len(class_names) != len(images):
            raise ValueError(f"demo oracle: {len(class_names)} class names for {len(images)} images")
        return self._margins(self.probabilities(images), self._indices(class_names))

    def _indices(self, class_names: list[str]) -> np.ndarray:
        unknown = sorted(set(class_names) - set(self.answers[:-1]))
        if unknown:
            raise ValueError(f"demo oracle: classes {unknown} are not among its answers {self.answers[:-1]}")
        return np.array([self.answers.index(name) for name in class_names], dtype=np.intp)

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

    def save(self, path: Path | str) -> None:
        """Write the fitted oracle to `path` (npz, no pickles), atomically."""
        arrays = {f"param/{name}": value for name, value in self.params.items()}
        meta = {"version": ORACLE_VERSION, "answers": self.answers, "margin": self.margin, "seed": self.seed}
        meta["key"] = self.key
        with atomic_open(Path(path)) as stream:
            np.savez(stream, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, path: Path | str) -> DemoOracle:
        with np.load(Path(path), allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            if meta.get("version") != ORACLE_VERSION:
                raise ValueError(
                    f"demo oracle: {path} was written by oracle version {meta.get('version')}, "
                    f"this is version {ORACLE_VERSION}; fit it again."
                )
            params = {name.removeprefix("param/"): stored[name] for name in stored.files if name != "meta"}
        return cls(meta["answers"], float(meta["margin"]), params, int(meta["seed"]), meta["key"])


def fit_key(frames: np.ndarray, class_names: list[str], *, margin: float, seed: int) -> str:
    """What a fit depends on: the oracle's version, its classes, seed and margin, and the real frames."""
    digest = hashlib.sha256(np.ascontiguousarray(frames).tobytes())
    digest.update(json.dumps(list(class_names)).encode())
    spec = {
        "version": ORACLE_VERSION,
        "classes": sorted(set(class_names)),
        "seed": seed,
        "margin": margin,
        "frames": digest.hexdigest(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def load_or_fit_demo_oracle(
    cache_path: Path | str,
    frames: np.ndarray,
    class_names: list[str],
    *,
    margin: float = 0.5,
    seed: int = 0,
) -> DemoOracle:
    """The oracle stored at `cache_path` when it was fitted from the same (version, classes, seed, margin,
    frames); otherwise a new fit, stored there (atomically) for the next caller."""
    cache_path = Path(cache_path)
    key = fit_key(frames, class_names, margin=margin, seed=seed)
    if cache_path.exists():
        try:
            stored = DemoOracle.load(cache_path)
            if stored.key == key:
                stored._module()  # its weights fit the network
                return stored
        except (OSError, EOFError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile):
            pass  # unreadable, or of another version: fitted again below
    oracle = fit_demo_oracle(frames, class_names, margin=margin, seed=seed)
    oracle.key = key
    oracle.save(cache_path)
    return oracle


# ---- the training set ------------------------------------------------------------------------------------------


class _Material:
    """Rendered layers of every demo class and some real frames, pooled to the network's input size:
    (N, 3, 48, 48) float tensors in [0, 1]. Objects are put on backgrounds at that size (a product of pooled
    layers: exact but for the object's edge pixels over textured backgrounds)."""

    def __init__(
        self, frames: np.ndarray, class_names: list[str], classes: list[str], renders: int, rng
    ) -> None:
        import torch
        import torch.nn.functional as F

        def pooled(a: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()
            return F.avg_pool2d(x, POOL)

        self.kinds = sorted(SCENES)  # every demo class: the objects of those not answered are negatives
        colour, through, backgrounds = [], [], []
        for kind in self.kinds:
            # Pitches (so hues) and sizes spread evenly over their ranges, in random pairs: few renders, no
            # gap (a red train, a small dog); frame sizes and moments as the demo draws them.
            low, high = SCENES[kind].size_range
            low += (high - low) * LOUDNESS_RANGE[0]
            pitches = (rng.permutation(renders) + rng.random(renders)) / renders
            sizes = low + (high - low) * (rng.permutation(renders) + rng.random(renders)) / renders
            parts = [
                render_layers(kind, 1, rng, pitch=p, size=z) for p, z in zip(pitches, sizes, strict=True)
            ]
            colour.append(pooled(np.concatenate([part.over_black for part in parts])))
            if kind in LIGHT_OBJECTS:
                through.append(torch.ones_like(colour[-1]))
            else:
                through.append(pooled(np.concatenate([part.over_white for part in parts])) - colour[-1])
            backgrounds.append(pooled(np.concatenate([part.background for part in parts])))
        self.colour = torch.cat(colour)  # the object's paint (its light, for LIGHT_OBJECTS)
        self.through = torch.cat(through)  # how much of the background shows through it
        self.backgrounds = torch.cat(backgrounds)
        self.kind = np.repeat(np.arange(len(self.kinds)), renders)  # of each object and each background
        self.light = torch.tensor([self.kinds[k] in LIGHT_OBJECTS for k in self.kind])
        self.scenes = (self.colour + self.through * self.backgrounds).clamp_(0, 1)  # each object at home
        self.renders = renders
        names = np.asarray(class_names)
        real, real_kind = [], []
        for name in classes:
            index = np.flatnonzero(names == name)
            if len(index) > REAL_PER_CLASS:
                index = np.sort(rng.choice(index, REAL_PER_CLASS, replace=False))
            real.append(pooled(frames[index]) / 255.0)
            real_kind += [self.kinds.index(name)] * len(index)
        self.real, self.real_kind = torch.cat(real), np.array(real_kind)


def _flip(x: Any, flips: np.ndarray) -> Any:
    """The pictures (B, 3, H, W), mirrored where `flips` (B,) is true (a new tensor)."""
    import torch

    x = x.clone()
    index = torch.from_numpy(np.flatnonzero(flips))
    x[index] = x[index].flip(-1)
    return x


def _objects(material: _Material, kinds: np.ndarray, rng, real_share: float) -> tuple[Any, np.ndarray]:
    """Pictures of the objects of `kinds` (indices into material.kinds), each on a random background (its own
    class's OWN_BACKGROUND of the time, else any class's) or a real frame of its class (`real_share` of the
    time); and whether the object shows in each (one in the colour of its background may vanish)."""
    import torch

    n, r = len(kinds), material.renders
    objects = torch.from_numpy(kinds * r + rng.integers(r, size=n))
    own = kinds * r + rng.integers(r, size=n)
    backgrounds = torch.from_numpy(
        np.where(rng.random(n) < OWN_BACKGROUND, own, rng.integers(len(material.backgrounds), size=n))
    )
    flip = rng.random(n) < 0.5
    colour, through = _flip(material.colour[objects], flip), _flip(material.through[objects], flip)
    # Half the objects tinted (each channel x 0.75-1.25): a dog a shade lighter is still a dog, and the
    # judge meets objects as close in colour to their background as the scenes allow.
    tint = np.where(rng.random((n, 1, 1, 1)) < TINTED, rng.uniform(*TINT, (n, 3, 1, 1)), 1.0)
    colour = colour * torch.from_numpy(tint.astype(np.float32))
    background = _flip(material.backgrounds[backgrounds], rng.random(n) < 0.5)
    pictures = (colour + through * background).clamp_(0, 1)
    light = material.light[objects][:, None, None]
    footprint = torch.where(light, colour.amax(1) > 0.15, (1 - through).amax(1) > 0.5)
    shows = ((pictures - background).abs().amax(1) > VISIBLE_LEVEL) & footprint
    visible = (shows.sum((1, 2)) >= VISIBLE_SHARE * footprint.sum((1, 2)).clamp(min=1)).numpy()
    # Real frames of the class instead, where there are some.
    real_pool = [np.flatnonzero(material.real_kind == k) for k in range(len(material.kinds))]
    use_real = (rng.random(n) < real_share) & np.array([len(real_pool[k]) > 0 for k in kinds], bool)
    if use_real.any():
        chosen = [int(rng.choice(real_pool[k])) for k in kinds[use_real]]
        real = _flip(material.real[torch.tensor(chosen)], rng.random(len(chosen)) < 0.5)
        pictures[torch.from_numpy(use_real)] = real
        visible[use_real] = True
    return pictures, visible


def _scenes(material: _Material, n: int, rng) -> Any:
    """Any pictures of a scene (an object on its own background) or real frames."""
    import torch

    pool = torch.cat([material.scenes, material.real])
    return _flip(pool[torch.from_numpy(rng.integers(len(pool), size=n))], rng.random(n) < 0.5)


def _noise(n: int, rng, generator, *, blocky: bool) -> Any:
    """White noise (uniform, or around a random colour) or blocky noise (NOISE_CELLS), as pooled 96 x 96
    pictures: (n, 3, 48, 48)."""
    import torch
    import torch.nn.functional as F

    size = IMAGE_SIZE // POOL
    if not blocky:
        # The mean of POOL x POOL uniform pixels: about normal, sd 0.29 / POOL.
        centre = torch.where(
            torch.from_numpy(rng.random(n) < 0.5)[:, None, None, None],
            torch.full((n, 3, 1, 1), 0.5),
            torch.rand((n, 3, 1, 1), generator=generator),
        )
        spread = rng.uniform(0.05, 0.4, (n, 1, 1, 1)).astype(np.float32)
        spread[rng.random(n) < 0.5] = 0.29
        noise = torch.randn((n, 3, size, size), generator=generator) * torch.from_numpy(spread) / POOL
        return (centre + noise).clamp_(0, 1)
    parts = [torch.zeros((0, 3, size, size))]
    for _ in range(n):
        cells = NOISE_CELLS[int(rng.integers(len(NOISE_CELLS)))]
        low = torch.rand((1, 3, cells, cells), generator=generator)
        mode = "nearest" if rng.random() < 0.5 else "bilinear"
        parts.append(F.avg_pool2d(F.interpolate(low, size=(IMAGE_SIZE, IMAGE_SIZE), mode=mode), POOL))
    return torch.cat(parts)


def _negatives(material: _Material, counts: dict[str, int], others: np.ndarray, rng, generator) -> list[Any]:
    """Pictures of no answer's object, `counts[kind]` of each kind of NEGATIVE_KINDS."""
    import torch

    out = []
    n = counts.get("background", 0)
    index = torch.from_numpy(rng.integers(len(material.backgrounds), size=n))
    out.append(_flip(material.backgrounds[index], rng.random(n) < 0.5))
    out.append(_noise(counts.get("white_noise", 0), rng, generator, blocky=False))
    out.append(_noise(counts.get("blocky_noise", 0), rng, generator, blocky=True))
    n = counts.get("shuffled", 0)
    size = material.scenes.shape[2]
    pictures = _scenes(material, n, rng).reshape(n, 3, size * size)
    order = torch.from_numpy(np.argsort(rng.random((n, pictures.shape[2])), axis=1))
    out.append(
        pictures.gather(2, order[:, None, :].expand(-1, 3, -1)).reshape(n, 3, *material.scenes.shape[2:])
    )
    # Averages of 2-5 pictures of different classes.
    n, k, r = counts.get("class_average", 0), len(material.kinds), material.renders
    picks = np.arange(k)[None, :] * r + rng.integers(r, size=(n, k))  # one picture of each class
    members = np.argsort(rng.random((n, k)), axis=1) < rng.integers(2, min(5, k) + 1, size=(n, 1))
    weights = members / members.sum(axis=1, keepdims=True)
    stacked = material.scenes[torch.from_numpy(picks)]  # (n, k, 3, H, W)
    flat = torch.from_numpy(weights.astype(np.float32))[:, :, None, None, None] * stacked
    out.append(flat.sum(1))
    # Means of MEAN_OF or more pictures of 2-5 classes, as many of each: what a generator draws that has
    # collapsed to one picture whatever the sound (with all classes), or to a mix of a few classes.
    n, total = counts.get("mixed_mean", 0), len(material.scenes)
    weights = np.zeros((n, total), np.float32)
    for i in range(n):
        mixed = rng.choice(k, int(rng.integers(2, k + 1)), replace=False)
        each = int(rng.integers(min(-(-MEAN_OF // len(mixed)), r), r + 1))
        chosen = np.concatenate([c * r + rng.choice(r, each, replace=False) for c in mixed])
        weights[i, chosen] = 1.0 / len(chosen)
    means = torch.from_numpy(weights) @ material.scenes.reshape(total, -1)
    out.append(means.reshape(n, *material.scenes.shape[1:]))
    n = counts.get("other_object", 0)
    if n:
        out.append(_objects(material, others[rng.integers(len(others), size=n)], rng, 0.0)[0])
    return out


def _pool(
    material: _Material,
    size: int,
    answered: np.ndarray,
    others: np.ndarray,
    rng,
    generator,
    real_share: float,
) -> tuple[Any, Any]:
    """About `size` training pictures (uint8 (size, 3, 48, 48), blurred) and their answers: half objects of
    the answered classes (index into answered; those that vanish into their background left out), half NONE
    (index len(answered)), of the kinds in NEGATIVE_KINDS."""
    import torch

    kinds = [k for k in NEGATIVE_KINDS if k != "other_object" or len(others)]
    shares = np.array([NEGATIVE_KINDS[k] for k in kinds])
    pictures, answers = [], []
    for start in range(0, size, 512):
        n = min(512, size - start)
        which = rng.integers(len(answered), size=n - n // 2)
        objects, visible = _objects(material, answered[which], rng, real_share)
        drawn = rng.multinomial(n // 2, shares / shares.sum())
        negatives = _negatives(
            material, dict(zip(kinds, drawn.tolist(), strict=True)), others, rng, generator
        )
        pictures.append(_blur(torch.cat([objects[torch.from_numpy(visible)], *negatives]), rng))
        answers += [which[visible], np.full(n // 2, len(answered))]
    quantised = torch.cat(pictures).mul_(255.0).round_().to(torch.uint8)
    return quantised, torch.from_numpy(np.concatenate(answers))


def _blur(x: Any, rng) -> Any:
    """Pictures (B, 3, 48, 48) blurred with a Gaussian of a random sigma in BLUR_SIGMA (96 x 96 pixels)."""
    import torch
    import torch.nn.functional as F

    n = len(x)
    sigma = rng.uniform(*BLUR_SIGMA, size=n) / POOL  # in pooled pixels
    radius = 3
    taps = np.arange(-radius, radius + 1)
    kernels = np.exp(-0.5 * (taps[None, :] / np.maximum(sigma, 1e-3)[:, None]) ** 2)
    kernels /= kernels.sum(axis=1, keepdims=True)
    k = torch.from_numpy(np.repeat(kernels, 3, axis=0).astype(np.float32))  # (B*3, taps)
    flat = F.pad(x.reshape(1, n * 3, *x.shape[2:]), (radius,) * 4, mode="replicate")
    flat = F.conv2d(flat, k[:, None, :, None], groups=n * 3)
    flat = F.conv2d(flat, k[:, None, None, :], groups=n * 3)
    return flat.reshape(n, 3, *x.shape[2:])


def _jitter(x: Any, rng, noise: Any) -> Any:
    """Pictures (B, 3, 48, 48) in [0, 1], mirrored half the time, with their contrast, brightness and colour
    balance jittered and pixel noise added (rows of `noise`, standard normal, times a random sd <= 0.03)."""
    import torch

    n = len(x)
    x = _flip(x, rng.random(n) < 0.5)

    def uniform(low: float, high: float, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.from_numpy(rng.uniform(low, high, shape).astype(np.float32))

    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(0.8, 1.2, (n, 1, 1, 1)) + mean + uniform(-0.05, 0.05, (n, 1, 1, 1))
    x = x * uniform(0.92, 1.08, (n, 3, 1, 1))
    x = x + uniform(0.0, 0.03, (n, 1, 1, 1)) * noise[torch.from_numpy(rng.integers(len(noise), size=n))]
    return x.clamp_(0, 1)


def fit_demo_oracle(
    frames: np.ndarray,
    class_names: list[str],
    *,
    margin: float = 0.5,
    seed: int = 0,
    renders_per_class: int = 48,
    pool_size: int = 8192,
    steps: int = 300,
    batch_size: int = 128,
    learning_rate: float = 1e-2,
    real_share: float = 0.15,
) -> DemoOracle:
    """Fit the judge on rendered pictures (see the module docstring); `frames` (N, 96, 96, 3) uint8 and
    `class_names` are the real training frames: they set the classes and add real positives."""
    frames = _check_images(frames, "frames")
    if len(frames) != len(class_names) or len(frames) == 0:
        raise ValueError(f"demo oracle: {len(frames)} frames but {len(class_names)} class names")
    classes = sorted(set(class_names))
    unknown = sorted(set(classes) - set(SCENES))
    if unknown:
        raise ValueError(
            f"demo oracle: {unknown} are not demo classes ({sorted(SCENES)}); it judges those only"
        )
    import torch
    import torch.nn.functional as F

    answers = [*classes, NONE]
    kinds = sorted(SCENES)
    answered = np.array([kinds.index(name) for name in classes])
    others = np.array([i for i, kind in enumerate(kinds) if kind not in classes], dtype=np.intp)
    rng = np.random.default_rng(seed)
    with _Threads(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        material = _Material(frames, list(class_names), classes, renders_per_class, rng)
        pictures, targets = _pool(material, pool_size, answered, others, rng, generator, real_share)
        del material
        noise = torch.randn((256, 3, *pictures.shape[2:]), generator=generator)
        net = _network(len(answers)).to(memory_format=torch.channels_last)
        optimiser = torch.optim.Adam(net.parameters(), lr=learning_rate)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=steps)
        for _ in range(steps):
            batch = torch.from_numpy(rng.integers(len(pictures), size=batch_size))
            x = _jitter(pictures[batch].float().div_(255.0), rng, noise)
            x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(x), targets[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    params = {name: value.detach().numpy().copy() for name, value in net.state_dict().items()}
    return DemoOracle(answers, margin, params, seed, fit_key(frames, class_names, margin=margin, seed=seed))
