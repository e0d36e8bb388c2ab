"""Drawing: soft-edged shapes on a float canvas whose unit is the central square's side.

Frames are (H, W, 3) float32 images in [0, 1]; shapes are coverages (alpha in [0, 1], anti-aliased over one
pixel) blended in with `paint`.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np


def hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), dtype=np.float32)


def rgb(red: float, green: float, blue: float) -> np.ndarray:
    return np.array((red, green, blue), dtype=np.float32)


BLACK, WHITE = rgb(0.0, 0.0, 0.0), rgb(1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Patch:
    """A shape's coverage (alpha in [0, 1]) over the rows and columns of its bounding box."""

    alpha: np.ndarray
    rows: slice
    cols: slice


class Canvas:
    """Pixel coordinates (u, v): (0, 0) at the frame centre, the central square spans [-0.5, 0.5].

    Shapes are computed inside their bounding box only: most are small, and rendering dominates the cost.
    """

    def __init__(self, width: int, height: int) -> None:
        self.side = min(width, height)
        self.width, self.height = width, height
        self.u = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2) / self.side)[None, :]  # (1, W)
        self.v = ((np.arange(height, dtype=np.float32) + 0.5 - height / 2) / self.side)[:, None]  # (H, 1)
        self.pixel = 1.0 / self.side
        self.half_width = width / self.side / 2  # how far the frame reaches left and right, in these units
        self.half_height = height / self.side / 2

    def edge(self, signed_distance: np.ndarray) -> np.ndarray:
        """Coverage from a signed distance (negative inside), anti-aliased over one pixel."""
        return np.clip(0.5 - signed_distance / self.pixel, 0.0, 1.0)

    def _window(
        self, x0: float, y0: float, x1: float, y1: float
    ) -> tuple[slice, slice, np.ndarray, np.ndarray]:
        c0 = max(0, math.floor((x0 + self.half_width) * self.side) - 1)
        c1 = min(self.width, math.ceil((x1 + self.half_width) * self.side) + 2)
        r0 = max(0, math.floor((y0 + self.half_height) * self.side) - 1)
        r1 = min(self.height, math.ceil((y1 + self.half_height) * self.side) + 2)
        rows, cols = slice(r0, max(r0, r1)), slice(c0, max(c0, c1))
        return rows, cols, self.u[:, cols], self.v[rows, :]

    def disc(self, x: float, y: float, radius: float) -> Patch:
        rows, cols, u, v = self._window(x - radius, y - radius, x + radius, y + radius)
        return Patch(self.edge(np.hypot(u - x, v - y) - radius), rows, cols)

    def ellipse(self, x: float, y: float, rx: float, ry: float, angle: float = 0.0) -> Patch:
        reach = max(rx, ry)
        rows, cols, u, v = self._window(x - reach, y - reach, x + reach, y + reach)
        c, s = math.cos(angle), math.sin(angle)
        a, b = ((u - x) * c + (v - y) * s) / rx, (-(u - x) * s + (v - y) * c) / ry
        return Patch(self.edge((np.sqrt(a * a + b * b) - 1.0) * min(rx, ry)), rows, cols)

    def box(self, x0: float, y0: float, x1: float, y1: float, radius: float = 0.0) -> Patch:
        rows, cols, u, v = self._window(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        qx, qy = np.abs(u - cx) - hx + radius, np.abs(v - cy) - hy + radius
        outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
        inside = np.minimum(np.maximum(qx, qy), 0)
        return Patch(self.edge(outside + inside - radius), rows, cols)

    def segment(self, x0: float, y0: float, x1: float, y1: float, width: float) -> Patch:
        half = width / 2
        rows, cols, u, v = self._window(
            min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half
        )
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
        return Patch(self.edge(np.hypot(u - x0 - t * dx, v - y0 - t * dy) - half), rows, cols)

    def texture(self, rng: np.random.Generator, cell: int = 3) -> np.ndarray:
        """Smooth random texture in about [-1.5, 1.5], (H, W): grain for grass, gravel and blankets."""
        small = rng.standard_normal((self.height // cell + 2, self.width // cell + 2)).astype(np.float32)
        big = np.repeat(np.repeat(small, cell, axis=0), cell, axis=1)[: self.height + 2, : self.width + 2]
        blurred = sum(big[dy : dy + self.height, dx : dx + self.width] for dy in range(3) for dx in range(3))
        return np.clip(blurred / 9.0 / 0.6, -1.5, 1.5)


def paint(image: np.ndarray, shape: Patch | np.ndarray, color: np.ndarray, opacity: float = 1.0) -> None:
    """Blend `color` over `image` (H, W, 3) with a shape's coverage (a Patch, or a full (H, W) alpha)."""
    if isinstance(shape, Patch):
        region, alpha = image[shape.rows, shape.cols], shape.alpha
    else:
        region, alpha = image, shape
    region += (opacity * alpha)[..., None] * (color - region)  # a view: blends in place


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float frame in [0, 1] -> uint8, as the encoder receives it (round half up, clipped)."""
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
