"""Example pictures of the demo classes (pipelines.data.demo.examples): the object drawn or not, on its own
background or another class's, cut and resized as extraction does."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.data.demo import SCENES, generate_demo, plan_demo
from pipelines.data.demo.drawing import to_uint8
from pipelines.data.demo.examples import (
    central_frame_time,
    draw_examples,
    extraction_view,
    render_examples,
)

CLASSES = sorted(SCENES)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("class_name", CLASSES)
def test_shape_dtype_and_determinism(class_name):
    images = render_examples(class_name, 3, rng(1))
    assert images.shape == (3, 96, 96, 3) and images.dtype == np.uint8
    assert np.array_equal(images, render_examples(class_name, 3, rng(1)))
    assert not np.array_equal(images, render_examples(class_name, 3, rng(2)))
    assert images.std() > 5  # a picture, not a flat colour


@pytest.mark.parametrize("class_name", CLASSES)
def test_the_object_changes_the_picture(class_name):
    with_object = render_examples(class_name, 4, rng(3)).astype(int)
    background = render_examples(class_name, 4, rng(3), with_object=False).astype(int)
    # Same plans, same times: only the object differs, and it is not a detail.
    changed = np.abs(with_object - background).max(axis=3) > 24
    assert changed.mean(axis=(1, 2)).min() > 0.04


@pytest.mark.parametrize("class_name", CLASSES)
def test_the_object_on_another_background(class_name):
    other = CLASSES[(CLASSES.index(class_name) + 1) % len(CLASSES)]
    images, info = draw_examples(class_name, 3, rng(4), background_class=other)
    bare = render_examples(class_name, 3, rng(4), background_class=other, with_object=False)
    assert [example.background_class for example in info] == [other] * 3
    changed = np.abs(images.astype(int) - bare.astype(int)).max(axis=3) > 24
    assert changed.mean(axis=(1, 2)).min() > 0.04
    # The background is the other class's, not the object's own.
    own = render_examples(class_name, 3, rng(4), with_object=False)
    assert not np.array_equal(bare, own)


def test_fixed_size_pitch_and_frame_size():
    _, info = draw_examples("dog", 3, rng(5), size=0.5, pitch=0.25, frame_size=(150, 100))
    assert {(e.size, e.pitch, e.width, e.height) for e in info} == {(0.5, 0.25, 150, 100)}
    assert render_examples("dog", 2, rng(5), image_size=64).shape == (2, 64, 64, 3)
    assert render_examples("dog", 0, rng(5)).shape == (0, 96, 96, 3)
    with pytest.raises(ValueError, match="size"):
        render_examples("dog", 1, rng(5), size=0.05)
    with pytest.raises(ValueError, match="not a demo class"):
        render_examples("cat", 1, rng(5))


def test_extraction_view_crops_the_centre_square_on_even_pixels():
    frame = np.zeros((100, 150, 3), np.uint8)
    frame[:, 24:124] = 200  # the square ffmpeg's crop keeps on yuv420p video: offset 25 rounded down to 24
    view = extraction_view(frame, chroma_420=False)
    assert view.shape == (96, 96, 3) and view.min() == view.max() == 200


def test_central_frame_time_is_the_frame_shown_at_the_half_second():
    plan = plan_demo(["dog"], 1, 0)[0]
    for k in range(3):
        t = central_frame_time(plan, k)
        assert t <= k + 0.5 < t + 1 / plan.fps


def test_pictures_match_what_extraction_cuts_from_a_clip(tmp_path):
    from pipelines.media.extract import extract_clip

    (clip,) = generate_demo(tmp_path, ["rail_transport"], 1, 3)
    plan = plan_demo(["rail_transport"], 1, 3)[0]
    extracted = extract_clip(clip.path).frames[:3].astype(int)
    scene = SCENES[plan.class_name](plan, np.random.default_rng(plan.render_seed))
    ours = np.stack([extraction_view(to_uint8(scene.frame(central_frame_time(plan, k)))) for k in range(3)])
    # What remains is H.264's compression: a couple of grey levels on average.
    assert np.abs(ours.astype(int) - extracted).mean() < 3.5
    shifted = np.stack([extraction_view(to_uint8(scene.frame(k + 0.9))) for k in range(3)])
    assert np.abs(shifted.astype(int) - extracted).mean() > np.abs(ours.astype(int) - extracted).mean()
