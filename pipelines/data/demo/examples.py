"""Example pictures of the demo classes, as the chain's extraction cuts them from a clip: for judges.

`render_examples(class_name, n, rng)` draws `n` random clip plans of the class (frame size, frame rate,
length, pitch and so the key hue, loudness and so the object's size), picks a usable segment k of each and
renders the frame shown at k + 0.5 s, the one extraction keeps, then turns it into the (96, 96, 3) uint8
picture extraction would make of it. Options:

- `with_object=False`: the background alone (the scenery, without the face, dog, train, sparks or water);
- `background_class=B`: the object painted over the background of an independent scene of class B (of the
  same frame size, at the same time), e.g. a dog on a blanket; B may be the class itself;
- `size`, `pitch`, `frame_size`: fix the object's extent, the pitch (hue) or the frame's (width, height).

`render_layers(class_name, n, rng)` renders such moments as layers instead (the background, and the object
alone over black and over white; one extraction of the three, in torch), and `composite` puts the object on
any background from them in numpy, close to what `background_class=` renders: a cheap way to make thousands of
pictures of objects on other backgrounds (the demo oracle's training set).

What is object and what is background, per class (see pipelines.data.demo.scenes):

- baby_cry: object the face (ears, eyes, tears, cheeks, mouth); background the striped blanket;
- dog: the dog and its shadow; sky and field;
- rail_transport: the train front; sky, gravel, and the scrolling sleepers and rails;
- fireworks: the bursts of sparks (added light, behind the city when the background has one); night sky,
  stars and city;
- water_flowing: the water itself, i.e. its level (the size), surface, wave bands and foam; the bank it fills.

The key hue (from the pitch) colours the object for rail_transport, fireworks and water_flowing, but the
background for baby_cry (the blanket) and dog (the field): on another class's background those two objects
carry no trace of the pitch. Bursts are light added to the picture: over a bright background (a blanket,
a sky) they show much less than over the night sky. The water covers the picture from its surface down,
whatever the background.

From frame to picture, `extraction_view` follows pipelines.media.extract: the largest centred square (its
offset rounded down to even pixels, as ffmpeg's crop does on yuv420p video), then swscale's bicubic
(B = 0, C = 0.6, widened when shrinking, centre-aligned, edges clamped) to 96 x 96. It also blurs the
colour the way the clip's 4:2:0 chroma does (BT.601 YCbCr, chroma averaged over 2 x 2 pixels and
interpolated back). What it leaves out is H.264's compression (crf 20): on the demo clips the pictures
differ from extracted frames by about 1.3-2.5 grey levels on average (1.7-3.1 without the chroma step).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from pipelines.data.demo.drawing import to_uint8
from pipelines.data.demo.plan import ClipPlan, draw_plan
from pipelines.data.demo.scenes import SCENES, Scene

EXTRACT_SIZE = 96  # the chain's frame_size
SWSCALE_BICUBIC = (0.0, 0.6)  # swscale's default bicubic parameters (B, C)
# BT.601 RGB -> YCbCr (what ffmpeg's rgb24 -> yuv420p conversion uses by default); range does not matter here.
_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_RGB = np.linalg.inv(_YCBCR)


@dataclass(frozen=True)
class Example:
    """How one example picture was made."""

    class_name: str  # whose object (drawn or not)
    background_class: str  # whose background
    with_object: bool
    width: int  # the frame's size before extraction
    height: int
    t: float  # seconds into the clip: the frame displayed at segment k + 0.5
    pitch: float
    hue: float  # the class's key hue: of the object, but for baby_cry and dog of their backgrounds
    size: float  # the object's extent as a fraction of the central square (SCENES[class].size_range)


def render_examples(
    class_name: str,
    n: int,
    rng: np.random.Generator,
    *,
    with_object: bool = True,
    background_class: str | None = None,
    size: float | None = None,
    pitch: float | None = None,
    frame_size: tuple[int, int] | None = None,
    image_size: int = EXTRACT_SIZE,
) -> np.ndarray:
    """`n` pictures (n, image_size, image_size, 3) uint8 of `class_name`, as extraction would make them.

    `with_object`: draw the class's object, or leave the background alone. `background_class`: None for
    the class's own scene, or a class whose scene (an independent one) gives the background. `size`: the
    object's extent (a fraction of the central square, within the class's size range), None for a random
    loudness as in the demo clips. `pitch` in [0, 1] (sets the hue), None for random. `frame_size`:
    (width, height) of the rendered frame, None for one of the demo's FRAME_SIZES. Same rng state, same
    pictures.
    """
    return draw_examples(
        class_name,
        n,
        rng,
        with_object=with_object,
        background_class=background_class,
        size=size,
        pitch=pitch,
        frame_size=frame_size,
        image_size=image_size,
    )[0]


def draw_examples(
    class_name: str,
    n: int,
    rng: np.random.Generator,
    *,
    with_object: bool = True,
    background_class: str | None = None,
    size: float | None = None,
    pitch: float | None = None,
    frame_size: tuple[int, int] | None = None,
    image_size: int = EXTRACT_SIZE,
) -> tuple[np.ndarray, list[Example]]:
    """`render_examples`, with how each picture was made."""
    _check_class(class_name, "class_name")
    if background_class is not None:
        _check_class(background_class, "background_class")
    if n < 0:
        raise ValueError(f"demo examples: n is {n}; it must be at least 0.")
    if pitch is not None and not 0.0 <= pitch <= 1.0:
        raise ValueError(f"demo examples: pitch is {pitch}; it must lie in [0, 1].")
    loudness = None if size is None else _loudness_for(class_name, size)
    images = np.empty((n, image_size, image_size, 3), np.uint8)
    examples: list[Example] = []
    for i in range(n):
        plan = _plan(class_name, i, rng, pitch=pitch, loudness=loudness, frame_size=frame_size)
        scene = SCENES[class_name](plan, np.random.default_rng(plan.render_seed))
        t = central_frame_time(plan, int(rng.integers(int(plan.duration))))
        background: Scene | None = None
        if background_class is not None:
            other = _plan(background_class, i, rng, pitch=None, loudness=None, frame_size=None)
            other = replace(
                other,
                width=plan.width,
                height=plan.height,
                fps=plan.fps,
                n_frames=plan.n_frames,
                loudness=other.loudness[:1] * len(plan.loudness),
            )
            background = SCENES[background_class](other, np.random.default_rng(other.render_seed))
        frame = to_uint8(scene.render(t, with_object=with_object, background=background))
        images[i] = extraction_view(frame, image_size)
        examples.append(
            Example(
                class_name=class_name,
                background_class=background_class or class_name,
                with_object=with_object,
                width=plan.width,
                height=plan.height,
                t=t,
                pitch=plan.pitch,
                hue=round(scene.key_hue, 4),
                size=round(scene.size_at(t), 4),
            )
        )
    return images, examples


# Objects made of light (the bursts): added to the picture under them and clipped, not painted over it.
LIGHT_OBJECTS = frozenset({"fireworks"})


@dataclass(frozen=True)
class ObjectLayers:
    """`n` rendered moments of a class, split into layers that can be recombined in numpy (see `composite`).

    All (n, S, S, 3) float32 in [0, 1], as extraction makes them (every step of which is linear), unrounded:
    `background` the scene without its object (scenery included, as `with_object=False` renders it, but
    not rounded to uint8), `over_black` and `over_white` the object alone painted over plain black and plain
    white. For a painted object, `over_white - over_black` is how much of the background still shows through
    at each pixel; for light (LIGHT_OBJECTS) `over_black` is the light itself. Objects in the sky are drawn
    without the city in front (no skyline), wherever they go.
    """

    class_name: str
    background: np.ndarray
    over_black: np.ndarray
    over_white: np.ndarray
    examples: tuple[Example, ...]


def render_layers(
    class_name: str,
    n: int,
    rng: np.random.Generator,
    *,
    size: float | None = None,
    pitch: float | None = None,
    frame_size: tuple[int, int] | None = None,
    image_size: int = EXTRACT_SIZE,
) -> ObjectLayers:
    """`n` random moments of `class_name` (drawn as `render_examples` draws them) as layers: its background,
    and its object over black and over white. One scene and one (stacked) extraction per moment: about
    twice the cost of one `render_examples` picture for three pictures, and `composite` then puts the
    object on any background for almost nothing."""
    _check_class(class_name, "class_name")
    if n < 0:
        raise ValueError(f"demo examples: n is {n}; it must be at least 0.")
    if pitch is not None and not 0.0 <= pitch <= 1.0:
        raise ValueError(f"demo examples: pitch is {pitch}; it must lie in [0, 1].")
    loudness = None if size is None else _loudness_for(class_name, size)
    out = np.empty((3, n, image_size, image_size, 3), np.float32)
    examples: list[Example] = []
    for i in range(n):
        plan = _plan(class_name, i, rng, pitch=pitch, loudness=loudness, frame_size=frame_size)
        scene = SCENES[class_name](plan, np.random.default_rng(plan.render_seed))
        t = central_frame_time(plan, int(rng.integers(int(plan.duration))))
        background = to_uint8(scene.render(t, with_object=False)).astype(np.float32) / 255.0
        over_black = np.zeros_like(background)
        scene.paint_object(over_black, t, None)
        over_white = np.ones_like(background)
        scene.paint_object(over_white, t, None)
        stacked = np.stack([background, over_black, over_white], axis=2)
        out[:, i] = np.moveaxis(_extract_dense(stacked, image_size), 2, 0)
        examples.append(
            Example(
                class_name=class_name,
                background_class=class_name,
                with_object=True,
                width=plan.width,
                height=plan.height,
                t=t,
                pitch=plan.pitch,
                hue=round(scene.key_hue, 4),
                size=round(scene.size_at(t), 4),
            )
        )
    np.clip(out, 0.0, 1.0, out=out)
    return ObjectLayers(class_name, out[0], out[1], out[2], tuple(examples))


def composite(
    class_name: str, over_black: np.ndarray, over_white: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """`class_name`'s object layers (from `render_layers`) over `background` (same shape, float in [0, 1]):
    painted objects cover it (`over_black + (over_white - over_black) * background`); light (LIGHT_OBJECTS)
    adds to it, clipped at white. Close to `render_examples(..., background_class=...)` (which clips
    light before extraction, not after, and hides bursts behind a city)."""
    if class_name in LIGHT_OBJECTS:
        return np.minimum(background + over_black, 1.0)
    return over_black + (over_white - over_black) * background


def extraction_view(
    frame: np.ndarray, image_size: int = EXTRACT_SIZE, *, chroma_420: bool = True
) -> np.ndarray:
    """A (H, W, 3) uint8 frame -> (image_size, image_size, 3) uint8, as pipelines.media.extract makes it
    from the encoded clip: 4:2:0 chroma blur (unless `chroma_420` is False), the centred square crop, then
    swscale's bicubic resize. H.264's compression is not reproduced (see the module docstring)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"demo examples: expected an (H, W, 3) frame, got {frame.shape}")
    out = _extract(frame.astype(np.float64), image_size, chroma_420)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _extract(image: np.ndarray, image_size: int, chroma_420: bool) -> np.ndarray:
    """`extraction_view` without the final rounding, on a float (H, W, ..., 3) image: every operation is
    linear, so stacked layers (H, W, K, 3) come out as K pictures (image_size, image_size, K, 3)."""
    height, width = image.shape[:2]
    if chroma_420:
        image = _chroma_420(image)
    side = min(width, height)
    # ffmpeg's crop rounds the offsets down to the chroma grid (even pixels) on yuv420p video.
    left, top = ((width - side) // 2) & ~1, ((height - side) // 2) & ~1
    square = image[top : top + side, left : left + side]
    resize = _resize_weights(side, image_size)
    return _resize_axis(_resize_axis(square, resize, 0), resize, 1)


def central_frame_time(plan: ClipPlan, segment: int) -> float:
    """The time of the frame displayed at `segment` + 0.5 s, the one extraction keeps for that segment."""
    index = ((2 * segment + 1) * plan.fps) // 2  # the last frame that starts at or before k + 0.5
    return index / plan.fps  # as Scene.frames computes it


def _check_class(name: str, what: str) -> None:
    if name not in SCENES:
        raise ValueError(f"demo examples: {what} {name!r} is not a demo class; use one of {sorted(SCENES)}.")


def _loudness_for(class_name: str, size: float) -> float:
    low, high = SCENES[class_name].size_range
    if not low <= size <= high:
        raise ValueError(
            f"demo examples: size {size} is outside {class_name}'s object sizes [{low}, {high}] "
            "(a fraction of the central square's side)."
        )
    return (size - low) / (high - low)


def _plan(
    class_name: str,
    index: int,
    rng: np.random.Generator,
    *,
    pitch: float | None,
    loudness: float | None,
    frame_size: tuple[int, int] | None,
) -> ClipPlan:
    """A random plan like the demo's, with the given values fixed; at least one whole second long."""
    plan = draw_plan(class_name, index, rng)
    changes: dict = {}
    if pitch is not None:
        changes["pitch"] = pitch
    if loudness is not None:
        changes["loudness"] = (loudness,) * len(plan.loudness)
    if frame_size is not None:
        width, height = frame_size
        if width < 2 or height < 2:
            raise ValueError(f"demo examples: frame_size {frame_size} is too small.")
        changes["width"], changes["height"] = int(width), int(height)
    return replace(plan, **changes) if changes else plan


def _kernel(x: np.ndarray) -> np.ndarray:
    """The Mitchell-Netravali cubic with swscale's (B, C)."""
    b, c = SWSCALE_BICUBIC
    x = np.abs(x)
    near = ((12 - 9 * b - 6 * c) * x**3 + (-18 + 12 * b + 6 * c) * x**2 + (6 - 2 * b)) / 6
    far = ((-b - 6 * c) * x**3 + (6 * b + 30 * c) * x**2 + (-12 * b - 48 * c) * x + (8 * b + 24 * c)) / 6
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


@functools.lru_cache(maxsize=64)
def _resize_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """A centre-aligned bicubic resize n_in -> n_out, widened when shrinking, edges clamped: for each output
    sample, the input indices (n_out, taps) and their weights (n_out, taps)."""
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    reach = math.ceil(2 * stretch)
    centres = (np.arange(n_out) + 0.5) * scale - 0.5
    taps = np.floor(centres)[:, None] + np.arange(-reach, reach + 2)[None, :]
    weights = _kernel((taps - centres[:, None]) / stretch)
    weights /= weights.sum(axis=1, keepdims=True)
    indices = np.clip(taps, 0, n_in - 1).astype(np.intp)
    indices.flags.writeable = weights.flags.writeable = False  # shared through the cache
    return indices, weights


def _resize_axis(image: np.ndarray, resize: tuple[np.ndarray, np.ndarray], axis: int) -> np.ndarray:
    """Resample `image` along `axis` (a gather and a weighted sum: small arrays, no BLAS threads)."""
    indices, weights = resize
    moved = np.moveaxis(image, axis, 0)
    gathered = moved[indices]  # (n_out, taps, ...)
    out = (gathered * weights.reshape(weights.shape + (1,) * (moved.ndim - 1))).sum(axis=1)
    return np.moveaxis(out, 0, axis)


@functools.lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """`_resize_weights` as a dense (n_out, n_in) float32 matrix, for matrix products (shared through the
    cache: not to be written to)."""
    indices, weights = _resize_weights(n_in, n_out)
    matrix = np.zeros((n_out, n_in), np.float64)
    np.add.at(matrix, (np.arange(n_out)[:, None], indices), weights)
    return matrix.astype(np.float32)


def _extract_dense(image: np.ndarray, image_size: int) -> np.ndarray:
    """`_extract` (with the chroma step) of a float32 (H, W, K, 3) stack in any scale, as float32 matrix
    products in torch (on torch's current number of threads; numpy's BLAS may spin threads on a loaded
    machine): several times faster than the gathers; equal up to float32 rounding."""
    import torch

    height, width = image.shape[:2]
    ycc = torch.from_numpy(image) @ torch.from_numpy(_YCBCR.T.astype(np.float32))
    h2, w2 = height // 2 * 2, width // 2 * 2
    chroma = ycc[:h2, :w2, ..., 1:].reshape(h2 // 2, 2, w2 // 2, 2, *ycc.shape[2:-1], 2).mean(dim=(1, 3))
    up = torch.tensordot(torch.from_numpy(_resize_matrix(h2 // 2, height)), chroma, dims=([1], [0]))
    across = torch.tensordot(torch.from_numpy(_resize_matrix(w2 // 2, width)), up, dims=([1], [1]))
    ycc[..., 1:] = across.movedim(0, 1)
    rgb = ycc @ torch.from_numpy(_RGB.T.astype(np.float32))
    side = min(width, height)
    left, top = ((width - side) // 2) & ~1, ((height - side) // 2) & ~1
    matrix = torch.from_numpy(_resize_matrix(side, image_size))
    rows = torch.tensordot(matrix, rgb[top : top + side, left : left + side], dims=([1], [0]))
    return torch.tensordot(matrix, rows, dims=([1], [1])).movedim(0, 1).numpy()


def _chroma_420(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in 0..255 with its colour blurred as 4:2:0 video keeps it (luma untouched); also
    (H, W, ..., 3), stacked pictures."""
    height, width = image.shape[:2]
    ycc = image @ _YCBCR.T
    h2, w2 = height // 2 * 2, width // 2 * 2
    stacked = ycc.shape[2:-1]
    chroma = ycc[:h2, :w2, ..., 1:].reshape(h2 // 2, 2, w2 // 2, 2, *stacked, 2).mean(axis=(1, 3))
    up = _resize_axis(chroma, _resize_weights(h2 // 2, height), 0)
    ycc[..., 1:] = _resize_axis(up, _resize_weights(w2 // 2, width), 1)
    return ycc @ _RGB.T


__all__ = [
    "EXTRACT_SIZE",
    "LIGHT_OBJECTS",
    "Example",
    "ObjectLayers",
    "central_frame_time",
    "composite",
    "draw_examples",
    "extraction_view",
    "render_examples",
    "render_layers",
]
