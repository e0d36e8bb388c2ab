"""The demo data set: small synthetic audio-visual clips in the VEGAS layout, made with ffmpeg.

A user without a GPU or a VEGAS copy runs the whole chain on these. Each clip is a real mp4 (H.264 video,
AAC audio) at `<root>/<class>/videos/video_NNNNN.mp4`, with a class-typical sound and picture:

- baby_cry: a crying voice (harmonic wails with vibrato, breaths between) and a baby's face on a blanket.
- dog: bark bursts (short falling harmonic barks with noise) and a dog on a field under the sky.
- rail_transport: a low rumble, a hum and rhythmic clacks, and a train front on rails in perspective.
- fireworks: bangs (decaying noise, thump, crackle) and radial bursts of sparks on a dark sky.
- water_flowing: band-filtered flowing noise with bubbles, and a body of water with moving wave bands.

Sound and picture share properties, so a translator can beat guessing the class:
- per clip, `pitch` in [0, 1] sets the sound's pitch or spectral centre AND the hue of the class's key
  colour (blanket, field, train, sparks, water; `hue` in the latent values);
- per second k, `loudness` in [0, 1] sets the sound level of [k, k+1) (RMS from -38 to -10 dBFS) AND the
  size of the object in the central frame (t = k + 0.5); `size` is its extent as a fraction of the
  central square's side (face and burst diameter, dog length, train width, water level).
The key content sits in the central square, which is what extraction keeps (centre crop, 96x96).

Everything derives from (seed, class, index): same seed and settings give the same bytes, file by file.
`root/demo_truth.json` records every clip's settings, latent values, per-second loudness and size, and
its sha256, so a later run reuses clips it finds intact and later stages can use it as ground truth.

Modules: `plan` (clip plans and latent values), `scenes` (one Scene per class: picture and sound), `drawing`
(canvas, shapes, colours), `sound` (noise shaping, tones, loudness), `truth` (demo_truth.json), `clips`
(ffmpeg encoding and `generate_demo`), `examples` (96x96 pictures as extraction sees them, with or without
the object, on any class's background) and `oracle` (the demo's stand-in for a person labelling images).
"""

from __future__ import annotations

from pipelines.data.demo.clips import generate_demo, make_clip
from pipelines.data.demo.plan import (
    FRAME_RATES,
    FRAME_SIZES,
    GENERATOR_VERSION,
    SAMPLE_RATES,
    ClipPlan,
    DemoClip,
    plan_demo,
)
from pipelines.data.demo.scenes import SCENES, Scene
from pipelines.data.demo.truth import TRUTH_FILE, read_demo_truth

__all__ = [
    "FRAME_RATES",
    "FRAME_SIZES",
    "GENERATOR_VERSION",
    "SAMPLE_RATES",
    "SCENES",
    "TRUTH_FILE",
    "ClipPlan",
    "DemoClip",
    "Scene",
    "generate_demo",
    "make_clip",
    "plan_demo",
    "read_demo_truth",
]
