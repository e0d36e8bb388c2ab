import struct

import pytest

from pipelines.data.classes import normalize_class_name
from pipelines.data.vegas import LayoutError, scan_local
from pipelines.media.mp4 import mp4_duration

CLASSES = ["baby_cry", "dog", "rail_transport", "fireworks", "water_flowing"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Baby cry", "baby_cry"),
        ("baby_crying", "baby_cry"),
        ("baby_cry", "baby_cry"),
        ("Rail-Transport", "rail_transport"),
        ("Water flowing", "water_flowing"),
        ("Dog", "dog"),
        ("fireworks ", "fireworks"),
    ],
)
def test_class_names_are_normalised(name, expected):
    assert normalize_class_name(name) == expected


def fake_mp4(path, seconds: float) -> None:
    """A minimal ftyp + moov/mvhd, enough for the header reader (not for decoding)."""
    mvhd = struct.pack(">B3sIIII", 0, b"\0\0\0", 0, 0, 1000, int(seconds * 1000)) + b"\0" * 80
    moov = (
        struct.pack(">I4s", 8 + 8 + len(mvhd), b"moov") + struct.pack(">I4s", 8 + len(mvhd), b"mvhd") + mvhd
    )
    ftyp = struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ftyp + moov)


def test_scan_local_layout(tmp_path):
    fake_mp4(tmp_path / "Baby cry" / "videos" / "video_00002.mp4", 9.5)
    fake_mp4(tmp_path / "Baby cry" / "videos" / "video_00001.mp4", 10.0)
    fake_mp4(tmp_path / "dog" / "videos" / "video_00001.mp4", 4.0)
    fake_mp4(tmp_path / "cat" / "videos" / "video_00001.mp4", 4.0)  # not a profile class
    (tmp_path / "dog" / "videos" / "notes.txt").write_text("not a video")
    records = scan_local(tmp_path, CLASSES)
    assert [r.clip_id for r in records] == ["baby_cry-video_00001", "baby_cry-video_00002", "dog-video_00001"]
    assert records[0].source == "Baby cry/videos/video_00001.mp4"
    assert [r.duration for r in records] == [10.0, 9.5, 4.0]
    assert {r.status for r in records} == {"ok"}


def test_scan_local_errors_say_what_to_do(tmp_path):
    with pytest.raises(LayoutError, match="is not a folder"):
        scan_local(tmp_path / "missing", CLASSES)
    (tmp_path / "cats").mkdir()
    with pytest.raises(LayoutError, match=r"no folder for any of the classes.*cats"):
        scan_local(tmp_path, CLASSES)


def test_mp4_duration_of_non_mp4_is_none(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"<html>nope</html>")
    assert mp4_duration(tmp_path / "x.mp4") is None
    assert mp4_duration(tmp_path / "missing.mp4") is None
