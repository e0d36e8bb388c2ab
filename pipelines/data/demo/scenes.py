"""Scenes: one per class. Each draws its details from the clip's generator, then renders sound and frames.

A scene's picture has two layers:

- the background: `self.background` (made once, in `__init__`), plus `paint_scenery(image, t)` for its
  moving parts (the railway's sleepers and rails);
- the object: `paint_object(image, t, skyline)`, the thing that tells the class and follows the sound
  (face, dog, train front, bursts of sparks, the water body), sized by `size_at(t)`.

`frame(t)` paints the object over a copy of the scene's own background; `render(t, with_object=...,
background=other_scene)` paints it, or not, over another scene's background (pipelines.data.demo.examples
uses this). For water_flowing the object is the water itself (its level, surface, wave bands and foam), and
the background is the bank it fills; for rail_transport the track is scenery, the train front the object.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from pipelines.data.demo.drawing import BLACK, WHITE, Canvas, hsv, paint, rgb, to_uint8
from pipelines.data.demo.sound import (
    band_limit,
    harmonic_tone,
    mix_in,
    ramp_envelope,
    set_loudness,
    shaped_noise,
)

if TYPE_CHECKING:
    from pipelines.data.demo.plan import ClipPlan

SIZE_RAMP_S = 0.15  # the object reaches its new size this long after a second starts


class Scene:
    """Base of the class scenes: shared timing, loudness and size bookkeeping, and the layering of a frame."""

    # The key colour's hue for pitch 0 and 1; never the full circle, where pitch 0 and 1 would look alike.
    hue_range: tuple[float, float] = (0.0, 0.83)
    pitch_range_hz: tuple[float, float] = (300.0, 600.0)
    size_range: tuple[float, float] = (0.3, 0.8)  # object extent for loudness 0 and 1
    background: np.ndarray  # (H, W, 3) float32 in [0, 1], made in __init__: the still part of the scenery
    # (H, W) coverage of the scenery that stands in front of the sky (the fireworks' city), or None: objects
    # in the sky (bursts) are hidden behind it.
    skyline: np.ndarray | None = None

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        self.plan = plan
        self.rng = rng
        self.canvas = Canvas(plan.width, plan.height)
        self.key_hue = self.hue(plan.pitch)
        self.f0 = self.pitch_hz(plan.pitch)
        self.n_seconds = len(plan.loudness)

    @classmethod
    def hue(cls, pitch: float) -> float:
        low, high = cls.hue_range
        return (low + (high - low) * pitch) % 1.0

    @classmethod
    def pitch_hz(cls, pitch: float) -> float:
        low, high = cls.pitch_range_hz
        return low * (high / low) ** pitch  # equal steps in musical pitch

    @classmethod
    def size(cls, loudness: float) -> float:
        low, high = cls.size_range
        return low + (high - low) * loudness

    def size_at(self, t: float) -> float:
        """Object extent at time t: the second's size, reached SIZE_RAMP_S after the second starts."""
        k = min(int(t), self.n_seconds - 1)
        current = self.size(self.plan.loudness[k])
        if k == 0 or t - k >= SIZE_RAMP_S:
            return current
        before = self.size(self.plan.loudness[k - 1])
        x = (t - k) / SIZE_RAMP_S
        return before + (current - before) * x * x * (3 - 2 * x)

    def frames(self) -> np.ndarray:
        out = np.empty((self.plan.n_frames, self.plan.height, self.plan.width, 3), dtype=np.uint8)
        for i in range(self.plan.n_frames):
            out[i] = to_uint8(self.frame(i / self.plan.fps))
        return out

    def audio(self) -> np.ndarray:
        sample_rate = self.plan.sample_rate
        sound = set_loudness(band_limit(self.raw_audio(), sample_rate), sample_rate, self.plan.loudness)
        room = 10 ** (-66 / 20) * self.rng.standard_normal(len(sound))  # a faint noise floor, like a room's
        return sound + room

    def times(self) -> np.ndarray:
        return np.arange(self.plan.n_samples) / self.plan.sample_rate

    def frame(self, t: float) -> np.ndarray:
        """The clip's picture at time t: (H, W, 3) float in [0, 1]."""
        return self.render(t)

    def render(self, t: float, *, with_object: bool = True, background: Scene | None = None) -> np.ndarray:
        """The picture at time t, with or without this scene's object, over this scene's background or over
        `background`'s (another scene of the same frame size, of any class): (H, W, 3) float in [0, 1]."""
        back = self if background is None else background
        if (back.plan.width, back.plan.height) != (self.plan.width, self.plan.height):
            raise ValueError(
                f"a {self.plan.width}x{self.plan.height} scene cannot be drawn over a "
                f"{back.plan.width}x{back.plan.height} background; plan both with the same frame size."
            )
        image = back.background.copy()
        back.paint_scenery(image, t)
        if with_object:
            self.paint_object(image, t, back.skyline)
        return image

    def paint_scenery(self, image: np.ndarray, t: float) -> None:
        """Paint the background's moving parts at time t into `image` (none by default)."""

    def paint_object(self, image: np.ndarray, t: float, skyline: np.ndarray | None) -> None:
        """Paint the class's object at time t into `image`; objects in the sky stay behind `skyline`."""
        raise NotImplementedError

    def raw_audio(self) -> np.ndarray:  # (n_samples,) any scale; set_loudness sets the level
        raise NotImplementedError


class BabyCry(Scene):
    """A crying voice (wails 300-600 Hz with vibrato, breaths between) and a crying face on a blanket."""

    hue_range = (0.0, 0.83)  # blanket: red, yellow, green, blue, to violet
    pitch_range_hz = (300.0, 600.0)
    size_range = (0.3, 0.78)  # face diameter

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        skins = [(0.96, 0.80, 0.68), (0.88, 0.68, 0.54), (0.70, 0.49, 0.36), (0.48, 0.33, 0.24)]
        self.skin = np.array(skins[rng.integers(len(skins))], np.float32) * rng.uniform(0.95, 1.03)
        self.center = rng.uniform(-0.05, 0.05, size=2)
        self.sway = (rng.uniform(0.3, 0.7), rng.uniform(0, 2 * np.pi))
        # The cry: wails separated by short breaths, covering every second.
        self.wails: list[tuple[float, float]] = []
        t = rng.uniform(0.0, 0.1)
        while t < plan.duration:
            length = rng.uniform(0.45, 1.2)
            self.wails.append((t, t + length))
            t += length + rng.uniform(0.06, 0.25)
        canvas = self.canvas
        blanket = hsv(self.key_hue, 0.5, 0.9)
        stripe = hsv(self.key_hue, 0.65, 0.72)
        angle = rng.uniform(0, np.pi)
        stripes = 0.5 + 0.5 * np.sin(
            2 * np.pi * rng.uniform(3, 6) * (canvas.u * math.cos(angle) + canvas.v * math.sin(angle))
        )
        self.background = np.empty((plan.height, plan.width, 3), np.float32)
        self.background[:] = blanket
        paint(self.background, stripes**4, stripe, 0.45)
        self.background *= (1 + 0.04 * canvas.texture(rng))[..., None]

    def mouth_open(self, t: float) -> float:
        for start, end in self.wails:
            if start <= t < end:
                return min(1.0, (t - start) / 0.08, (end - t) / 0.1)
        return 0.0

    def paint_object(self, image: np.ndarray, t: float, skyline: np.ndarray | None) -> None:
        c, skin = self.canvas, self.skin
        r = self.size_at(t) / 2  # face radius
        rate, phase = self.sway
        x = self.center[0] + 0.02 * math.sin(2 * np.pi * rate * t + phase)
        y = self.center[1] + 0.012 * math.sin(2 * np.pi * 1.7 * rate * t)
        paint(image, c.disc(x - 0.95 * r, y, 0.2 * r), skin * 0.92)  # ears
        paint(image, c.disc(x + 0.95 * r, y, 0.2 * r), skin * 0.92)
        paint(image, c.disc(x, y, r), skin)
        paint(image, c.ellipse(x, y - 0.92 * r, 0.22 * r, 0.12 * r, 0.3), skin * 0.55)  # curl of hair
        for side in (-1, 1):
            ex, ey = x + side * 0.38 * r, y - 0.14 * r
            paint(
                image, c.ellipse(ex, ey, 0.17 * r, 0.05 * r, side * 0.25), rgb(0.22, 0.13, 0.1)
            )  # shut eyes
            paint(
                image,
                c.ellipse(ex + side * 0.04 * r, ey + 0.2 * r, 0.04 * r, 0.07 * r),
                rgb(0.6, 0.8, 1),
                0.8,
            )
            paint(image, c.disc(x + side * 0.52 * r, y + 0.22 * r, 0.15 * r), rgb(0.95, 0.45, 0.45), 0.35)
        opening = 0.1 + 0.14 * self.mouth_open(t)
        paint(image, c.ellipse(x, y + 0.42 * r, 0.24 * r, opening * r), rgb(0.45, 0.08, 0.1))

    def raw_audio(self) -> np.ndarray:
        sr, rng = self.plan.sample_rate, self.rng
        out = np.zeros(self.plan.n_samples)
        vibrato_rate = rng.uniform(5.0, 7.0)

        def formants(harmonic: int, frequency: np.ndarray) -> np.ndarray:
            # 1/h roll-off with the resonances of a small vocal tract near 1.2 and 3 kHz
            peaks = 2.0 * np.exp(-(((frequency - 1200) / 450) ** 2)) + 1.2 * np.exp(
                -(((frequency - 3000) / 700) ** 2)
            )
            return (1 + peaks) / harmonic

        for start, end in self.wails:
            n = int((end - start) * sr)
            x = np.linspace(0.0, 1.0, n)
            local_t = np.arange(n) / sr
            contour = 1 + rng.uniform(0.1, 0.25) * np.sin(np.pi * x) - 0.08 * x  # rise and fall of a wail
            f0 = self.f0 * contour * (1 + 0.025 * np.sin(2 * np.pi * vibrato_rate * local_t))
            tone = harmonic_tone(f0, sr, formants, 14)
            breath = shaped_noise(rng, n, sr, lambda f: np.exp(-(((f - 2500) / 1500) ** 2)))
            wail = (tone + 0.15 * breath) * ramp_envelope(n, int(0.04 * sr), int(0.08 * sr))
            mix_in(out, int(start * sr), wail)
        return out


class Dog(Scene):
    """Bark bursts (short falling harmonic barks with noise) and a dog on a field under the sky."""

    hue_range = (45 / 360, 165 / 360)  # field: from dry yellow grass to green and teal
    pitch_range_hz = (180.0, 700.0)  # big dogs bark low, small dogs high
    size_range = (0.35, 0.88)  # dog length, tail to nose

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        furs = [
            (0.76, 0.57, 0.35),
            (0.45, 0.29, 0.16),
            (0.22, 0.16, 0.12),
            (0.9, 0.82, 0.66),
            (0.7, 0.38, 0.18),
        ]
        self.fur = np.array(furs[rng.integers(len(furs))], np.float32) * rng.uniform(0.93, 1.05)
        self.facing = 1 if rng.random() < 0.5 else -1
        self.wag_rate = rng.uniform(1.5, 3.0)
        self.barks: list[tuple[float, float]] = []
        for k in range(self.n_seconds):  # 1-3 barks in every second
            onsets = np.sort(rng.uniform(k, k + 0.8, size=rng.integers(1, 4)))
            for onset in onsets:
                if onset < plan.duration and (not self.barks or onset - self.barks[-1][0] > 0.2):
                    self.barks.append((float(onset), float(rng.uniform(0.09, 0.2))))
        canvas = self.canvas
        self.horizon = rng.uniform(-0.2, -0.08)
        sky = hsv(rng.uniform(0.53, 0.62), rng.uniform(0.15, 0.4), rng.uniform(0.82, 0.95))
        field = hsv(self.key_hue, 0.6, 0.62)
        self.background = np.empty((plan.height, plan.width, 3), np.float32)
        self.background[:] = sky
        depth = np.clip((canvas.v - self.horizon) / (0.5 - self.horizon), 0, 1)  # 0 far, 1 near
        ground = canvas.edge(self.horizon - canvas.v + 0 * canvas.u)
        paint(self.background, ground, field)
        grain = canvas.texture(rng, cell=2) * (0.04 + 0.08 * depth)
        self.background *= (1 + grain * ground)[..., None]

    def mouth_open(self, t: float) -> float:
        for onset, length in self.barks:
            if onset <= t < onset + length + 0.05:
                return 1.0
        return 0.0

    def paint_object(self, image: np.ndarray, t: float, skyline: np.ndarray | None) -> None:
        c = self.canvas
        g = self.size_at(t) / 1.17  # body unit; the dog spans about 1.17 units from tail to nose
        f = self.facing
        x0 = -f * 0.08 * g + 0.015 * math.sin(0.6 * t)
        feet = 0.16 + 0.22 * g  # a bigger (nearer) dog stands lower in the picture
        y0 = feet - 0.32 * g
        fur, shade = self.fur, self.fur * 0.7
        paint(image, c.ellipse(x0, feet, 0.42 * g, 0.05 * g), BLACK, 0.3)  # shadow
        for lx, colour in (
            (-0.26, shade),
            (0.2, shade),
            (-0.3, fur),
            (0.26, fur),
        ):  # far legs, then near legs
            leg = x0 + f * lx * g
            paint(image, c.box(leg - 0.035 * g, y0, leg + 0.035 * g, feet, 0.02 * g), colour)
        wag = 0.08 * g * math.sin(2 * np.pi * self.wag_rate * t)
        tail = c.segment(x0 - f * 0.34 * g, y0 - 0.06 * g, x0 - f * 0.5 * g + wag, y0 - 0.26 * g, 0.05 * g)
        paint(image, tail, fur)
        paint(image, c.ellipse(x0, y0, 0.38 * g, 0.17 * g), fur)  # body
        bark = self.mouth_open(t)
        hx, hy = x0 + f * 0.42 * g, y0 - 0.24 * g - 0.03 * g * bark  # the head lifts while barking
        paint(image, c.ellipse(x0 + f * 0.3 * g, y0 - 0.1 * g, 0.1 * g, 0.15 * g, f * 0.6), fur)  # neck
        paint(image, c.disc(hx, hy, 0.15 * g), fur)
        paint(image, c.ellipse(hx + f * 0.14 * g, hy + 0.05 * g, 0.11 * g, 0.065 * g), fur)  # snout
        if bark:
            paint(
                image,
                c.ellipse(hx + f * 0.13 * g, hy + 0.12 * g, 0.09 * g, 0.035 * g),
                rgb(0.35, 0.05, 0.08),
            )
        paint(image, c.disc(hx + f * 0.24 * g, hy + 0.03 * g, 0.028 * g), BLACK)  # nose
        paint(image, c.disc(hx + f * 0.04 * g, hy - 0.04 * g, 0.024 * g), BLACK)  # eye
        paint(
            image, c.ellipse(hx - f * 0.07 * g, hy + 0.02 * g, 0.05 * g, 0.12 * g, -f * 0.3), shade * 0.8
        )  # ear

    def raw_audio(self) -> np.ndarray:
        sr, rng = self.plan.sample_rate, self.rng
        out = np.zeros(self.plan.n_samples)
        band = (1.2 * self.f0, 5.0 * self.f0)
        for onset, length in self.barks:
            n = int(length * sr)
            x = np.linspace(0.0, 1.0, n)
            f0 = self.f0 * rng.uniform(0.92, 1.08) * (1.25 - 0.45 * x)  # a bark falls in pitch
            tone = harmonic_tone(f0, sr, lambda h, _f: h**-0.8, 10)
            rasp = shaped_noise(rng, n, sr, lambda f: ((f > band[0]) & (f < band[1])).astype(float))
            envelope = np.minimum(1.0, np.arange(n) / (0.006 * sr)) * np.exp(-3.0 * x)
            mix_in(out, int(onset * sr), (tone + 0.5 * rasp) * envelope)
        return out


class RailTransport(Scene):
    """A low rumble, a hum and rhythmic wheel clacks, and a train front on rails in perspective."""

    hue_range = (0.0, 0.83)  # train: red to violet
    pitch_range_hz = (45.0, 160.0)  # engine hum; the clack resonance follows it (x 16)
    size_range = (0.2, 0.72)  # train width

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        canvas = self.canvas
        self.horizon = rng.uniform(-0.2, -0.1)
        self.vanish_x = rng.uniform(-0.05, 0.05)
        # Sleepers scroll past (the camera rides along), slower than half a spacing per frame at 10 fps.
        self.speed = rng.uniform(0.2, 0.5)
        self.clack_period = rng.uniform(0.35, 0.6)
        self.clack_gap = rng.uniform(0.07, 0.12)
        self.clack_phase = rng.uniform(0, self.clack_period)
        skies = [(0.62, 0.75, 0.9), (0.72, 0.74, 0.76), (0.86, 0.72, 0.6), (0.55, 0.66, 0.82)]
        sky = np.array(skies[rng.integers(len(skies))], np.float32) * rng.uniform(0.95, 1.03)
        gravel = np.array((0.42, 0.39, 0.36), np.float32) * rng.uniform(0.85, 1.1)
        self.background = np.empty((plan.height, plan.width, 3), np.float32)
        self.background[:] = sky
        below = canvas.v - self.horizon
        ground = canvas.edge(-below + 0 * canvas.u)
        paint(self.background, ground, gravel)
        self.background *= (1 + 0.08 * canvas.texture(rng, cell=2) * ground)[..., None]
        self.depth = np.where(below > 0.004, 0.25 / np.maximum(below, 0.004), 1e3)  # (H, 1) depth per row
        self.track_half = 0.42 * np.clip(below / (0.5 - self.horizon), 0, None)  # (H, 1) rail half-gauge
        self.sleeper_fade = np.clip(1.5 - self.depth / 3, 0, 1)  # far sleepers blur into the gravel
        self.train_colour = hsv(self.key_hue, 0.8, 0.85)

    def paint_scenery(self, image: np.ndarray, t: float) -> None:
        c = self.canvas
        across = np.abs(c.u - self.vanish_x)  # (H, W)
        on_track = across < self.track_half * 1.35
        sleepers = (np.mod(self.depth + self.speed * t, 0.15) < 0.05) & on_track
        paint(image, sleepers * self.sleeper_fade, rgb(0.3, 0.22, 0.16), 0.9)
        rail_width = np.maximum(0.012 * self.track_half / 0.42, c.pixel * 0.6)
        rails = c.edge(np.abs(across - self.track_half) - rail_width) * (self.depth < 60)
        paint(image, rails, rgb(0.62, 0.62, 0.66))

    def paint_object(self, image: np.ndarray, t: float, skyline: np.ndarray | None) -> None:
        c = self.canvas
        # The train front: a bigger (nearer) train stands lower, centred on the track.
        width = self.size_at(t)
        height = 1.05 * width
        bottom = self.horizon + 0.1 + 0.5 * width
        x = self.vanish_x + 0.004 * math.sin(7.0 * t)
        left, right, top = x - width / 2, x + width / 2, bottom - height
        paint(image, c.box(left, top, right, bottom, 0.08 * width), self.train_colour)
        paint(
            image, c.box(left, top, right, top + 0.12 * height, 0.06 * width), self.train_colour * 0.6
        )  # roof
        windscreen = c.box(left + 0.1 * width, top + 0.18 * height, right - 0.1 * width, top + 0.45 * height)
        paint(image, windscreen, rgb(0.12, 0.16, 0.24))
        paint(image, c.box(left, top + 0.62 * height, right, top + 0.68 * height), WHITE * 0.92)  # stripe
        for side in (-1, 1):
            paint(
                image, c.disc(x + side * 0.3 * width, top + 0.8 * height, 0.06 * width), rgb(1.0, 0.97, 0.75)
            )
        buffer_beam = c.box(left + 0.05 * width, bottom - 0.06 * height, right - 0.05 * width, bottom)
        paint(image, buffer_beam, rgb(0.12, 0.12, 0.12))

    def raw_audio(self) -> np.ndarray:
        sr, rng, n = self.plan.sample_rate, self.rng, self.plan.n_samples
        t = self.times()
        rumble = shaped_noise(rng, n, sr, lambda f: 1 / (1 + (f / (80 + self.f0)) ** 2))
        wobble = 1 + 0.01 * np.sin(2 * np.pi * 0.3 * t)
        hum = harmonic_tone(self.f0 * wobble, sr, lambda h, _f: 0.9**h, 4)
        clacks = np.zeros(n)
        resonance = 16 * self.f0  # 720-2560 Hz: wheel on rail joint, pitched with the hum
        m = int(0.06 * sr)
        local = np.arange(m) / sr
        for beat in np.arange(self.clack_phase, self.plan.duration, self.clack_period):
            for offset in (0.0, self.clack_gap):
                strike = np.exp(-local / rng.uniform(0.012, 0.022))
                ring = np.sin(2 * np.pi * resonance * local) + 0.5 * np.sin(
                    2 * np.pi * 1.6 * resonance * local
                )
                click = rng.standard_normal(m) * np.exp(-local / 0.002)
                mix_in(clacks, int((beat + offset) * sr), (ring + click) * strike * rng.uniform(0.7, 1.0))
        return rumble + 0.6 * hum + 2.5 * clacks


class Fireworks(Scene):
    """Bangs (decaying noise, a thump, crackle) and radial bursts of sparks on a dark sky over a city."""

    hue_range = (0.0, 0.83)  # sparks: red to violet
    pitch_range_hz = (300.0, 4000.0)  # the bang's brightness (spectral corner)
    size_range = (0.25, 0.9)  # burst diameter

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        canvas = self.canvas
        # One main burst per second, early in it, so it is full-grown and bright at the central frame.
        self.bursts: list[tuple[float, float, float, float, int, float]] = []
        for k in range(self.n_seconds):
            onset = k + rng.uniform(0.03, 0.2)
            if onset < plan.duration - 0.05:
                radius = self.size(plan.loudness[k]) / 2
                x, y = rng.uniform(-0.08, 0.08), rng.uniform(-0.1, 0.02)
                self.bursts.append((onset, x, y, radius, int(rng.integers(10, 22)), rng.uniform(0, np.pi)))
        top = np.array((0.02, 0.02, 0.08), np.float32) * rng.uniform(0.8, 1.3)
        low = np.array((0.12, 0.07, 0.2), np.float32) * rng.uniform(0.8, 1.3)
        mix = np.clip((canvas.v + canvas.half_height) / (2 * canvas.half_height), 0, 1)[..., None]
        self.background = (top + (low - top) * mix) * np.ones((plan.height, plan.width, 1), np.float32)
        stars = rng.random((plan.height, plan.width)) < 0.006
        self.background[stars] += 0.25
        roofs = np.zeros(plan.width, np.float32)  # building height per column
        x_edges = np.cumsum(rng.uniform(0.04, 0.1, size=64)) - canvas.half_width
        heights = rng.uniform(0.04, 0.14, size=64)
        columns = np.searchsorted(x_edges, canvas.u[0])
        roofs[:] = heights[np.minimum(columns, 63)]
        city = (canvas.v > 0.5 - roofs[None, :]).astype(np.float32)
        paint(self.background, city, rgb(0.01, 0.01, 0.02))
        self.skyline = city  # the bursts are behind the city
        self.spark_colour = hsv(self.key_hue, 0.85, 1.0)

    def paint_object(self, image: np.ndarray, t: float, skyline: np.ndarray | None) -> None:
        c = self.canvas
        for onset, x, y, radius, spokes, rotation in self.bursts:
            age = t - onset
            if age < 0 or age > 1.6:
                continue
            grown = radius * (1 - math.exp(-age / 0.12))
            brightness = math.exp(-max(age - 0.35, 0.0) / 0.3)
            du, dv = c.u - x, c.v - y - 0.08 * age * age  # sparks droop as they fall
            rho = np.hypot(du, dv)
            theta = np.arctan2(dv, du)
            rays = (0.5 + 0.5 * np.cos(spokes * (theta - rotation))) ** 12
            along = np.clip(rho / (grown + 1e-6), 0, 1.2)
            streak = rays * np.where(along <= 1.0, along**2, np.exp(-(((along - 1) / 0.05) ** 2)))
            tips = rays * np.exp(-(((rho - grown) / (0.03 + 0.1 * grown)) ** 2))
            core = np.exp(-((rho / (0.2 * grown + 1e-6)) ** 2)) * 0.6
            light = brightness * (np.maximum(streak, tips) * 1.2 + 0.15 * np.exp(-((rho / grown) ** 2)))
            glow = light[..., None] * self.spark_colour + (brightness * core)[..., None] * 0.9
            image += glow if skyline is None else glow * (1 - skyline[..., None])
        np.minimum(image, 1.0, out=image)

    def raw_audio(self) -> np.ndarray:
        sr, rng, n = self.plan.sample_rate, self.rng, self.plan.n_samples
        noise_track = np.zeros(n)
        thumps = np.zeros(n)
        for onset, *_ in self.bursts:
            m = int(1.0 * sr)
            local = np.arange(m) / sr
            bang = rng.standard_normal(m) * np.exp(-local / rng.uniform(0.08, 0.2))
            crackle = (
                (rng.random(m) < 40 / sr)
                * rng.standard_normal(m)
                * 6.0
                * (local > 0.25)
                * np.exp(-local / 0.5)
            )
            mix_in(noise_track, int(onset * sr), bang + crackle)
            mix_in(
                thumps,
                int(onset * sr),
                np.sin(2 * np.pi * rng.uniform(45, 70) * local) * np.exp(-local / 0.1),
            )
        corner = self.f0
        shaped = np.fft.irfft(
            np.fft.rfft(noise_track) / np.sqrt(1 + (np.fft.rfftfreq(n, 1 / sr) / corner) ** 2), n
        )
        shaped /= np.sqrt(np.mean(shaped**2)) + 1e-12
        distant = 0.05 * shaped_noise(rng, n, sr, lambda f: 1 / (1 + (f / 200) ** 2))
        return shaped + 0.8 * thumps + distant


class WaterFlowing(Scene):
    """Flowing band-filtered noise with bubbles, and water with moving wave bands below a bank."""

    hue_range = (165 / 360, 250 / 360)  # water: from green-teal to deep blue
    pitch_range_hz = (350.0, 3000.0)  # the flow noise's band centre
    size_range = (0.3, 0.85)  # water level, from the bottom of the central square

    def __init__(self, plan: ClipPlan, rng: np.random.Generator) -> None:
        super().__init__(plan, rng)
        canvas = self.canvas
        banks = [(0.26, 0.4, 0.2), (0.48, 0.47, 0.45), (0.45, 0.35, 0.24), (0.33, 0.45, 0.28)]
        bank = np.array(banks[rng.integers(len(banks))], np.float32) * rng.uniform(0.85, 1.1)
        self.background = bank * (1 + 0.12 * canvas.texture(rng, cell=3))[..., None]
        self.flow = rng.uniform(0.4, 1.0) * (1 if rng.random() < 0.5 else -1)
        self.wave_count = rng.uniform(5, 9)
        self.water = hsv(self.key_hue, 0.72, 0.78)
        self.foam = hsv(self.key_hue, 0.25, 0.97)

    def paint_object(self, image: np.ndarray, t: float, skyline: np.ndarray | None) -> None:
        c = self.canvas
        level = self.size_at(t)
        surface = 0.5 - level + 0.012 * np.sin(2 * np.pi * (3 * c.u - 0.6 * self.flow * t))  # (1, W)
        water = c.edge(surface - c.v)
        depth = np.clip(c.v - surface, 0, None)
        bands = np.sin(2 * np.pi * (self.wave_count * (c.v + 0.35 * c.u) * (1 + depth) - self.flow * t))
        shade = (1 + 0.14 * bands)[..., None] * self.water
        shade = np.minimum(shade, 1.0)
        image += water[..., None] * (shade - image)
        paint(image, water * np.clip((bands - 0.8) / 0.2, 0, 1), self.foam, 0.7)

    def raw_audio(self) -> np.ndarray:
        sr, rng, n = self.plan.sample_rate, self.rng, self.plan.n_samples
        t = self.times()
        centre = self.f0
        flow = shaped_noise(
            rng, n, sr, lambda f: np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre) / 0.8) ** 2)
        )
        swell = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t) + 0.15 * np.sin(2 * np.pi * 1.3 * t)
        bubbles = np.zeros(n)
        for onset in np.sort(rng.uniform(0, self.plan.duration, size=int(12 * self.plan.duration))):
            m = int(rng.uniform(0.015, 0.04) * sr)
            local = np.arange(m) / sr
            start_hz = centre * rng.uniform(0.8, 1.5)
            sweep = start_hz * (1 + 0.6 * local / local[-1])  # a bubble rises in pitch as it closes
            mix_in(
                bubbles,
                int(onset * sr),
                np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.sin(np.pi * local / local[-1]),
            )
        return flow * swell + 0.8 * bubbles


SCENES: dict[str, type[Scene]] = {
    "baby_cry": BabyCry,
    "dog": Dog,
    "rail_transport": RailTransport,
    "fireworks": Fireworks,
    "water_flowing": WaterFlowing,
}
