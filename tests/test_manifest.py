"""read_manifest: good files of each accepted shape, and every kind of bad row named with its row number."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines.data.classes import VEGAS_CLASSES
from pipelines.data.manifest import ManifestError, ManifestRow, read_manifest


def write(tmp_path: Path, text: str, name: str = "manifest.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_plain_youtube_manifest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "class_name,ytid,start_seconds,end_seconds\nBaby cry,--PJHxphWEs,30,40\ndog,a_b-C1234xY,0.5,10.25\n",
    )
    rows = read_manifest(path, VEGAS_CLASSES)
    assert rows == [
        ManifestRow(
            row=2,
            class_name="baby_cry",
            url="https://www.youtube.com/watch?v=--PJHxphWEs",
            ytid="--PJHxphWEs",
            start=30.0,
            end=40.0,
            clip_id="--PJHxphWEs_00030000",
        ),
        ManifestRow(
            row=3,
            class_name="dog",
            url="https://www.youtube.com/watch?v=a_b-C1234xY",
            ytid="a_b-C1234xY",
            start=0.5,
            end=10.25,
            clip_id="a_b-C1234xY_00000500",
        ),
    ]


def test_audioset_style_comments_spaces_and_header_in_comment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=2, num_segs=2\n"
        "# YTID, start_seconds, end_seconds, class_name, positive_labels\n"
        '--PJHxphWEs, 30.000, 40.000, Water flowing, "/m/09x0r,/t/dd00088"\n'
        "\n"
        '--ZhevVpy1s, 50.000, 60.000, fireworks, "/m/012xff"\n',
    )
    rows = read_manifest(path, VEGAS_CLASSES)
    assert [(r.row, r.ytid, r.class_name, r.start, r.end) for r in rows] == [
        (4, "--PJHxphWEs", "water_flowing", 30.0, 40.0),
        (6, "--ZhevVpy1s", "fireworks", 50.0, 60.0),
    ]


def test_url_rows_get_stable_hashed_ids(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8000/clips/dog one.mp4"
    path = write(tmp_path, f"class_name, url, start_seconds, end_seconds\ndog, {url}, 1.5, 4\n")
    (row,) = read_manifest(path, VEGAS_CLASSES)
    assert row.url == url and row.ytid is None
    assert row.clip_id == f"url{hashlib.sha1(url.encode()).hexdigest()[:12]}_00001500"
    assert read_manifest(path, VEGAS_CLASSES)[0].clip_id == row.clip_id  # same file, same id


def test_every_bad_row_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "class_name,ytid,url,start_seconds,end_seconds\n"
        "dog,--PJHxphWEs,,30,40\n"  # row 2 fine
        "dog,abc,,30,40\n"  # row 3 short ytid
        "dog,--PJHxphWE!,,30,40\n"  # row 4 bad character
        "dog,--ZhevVpy1s,,thirty,40\n"  # row 5 not a number
        "dog,--ZhevVpy1s,,40,30\n"  # row 6 start after end
        "dog,--ZhevVpy1s,,-1,3\n"  # row 7 negative
        "cat,--ZhevVpy1s,,1,3\n"  # row 8 unknown class
        "dog,,ftp://host/a.mp4,1,3\n"  # row 9 not http
        "dog,,,1,3\n"  # row 10 nothing to fetch
        "dog,--PJHxphWEs,,30,41\n"  # row 11 same clip as row 2
        "dog,--ZhevVpy1s,,nan,3\n",  # row 12 not finite
    )
    with pytest.raises(ManifestError) as caught:
        read_manifest(path, VEGAS_CLASSES)
    message = str(caught.value)
    expected = {
        3: "ytid 'abc' is not 11 chars of [A-Za-z0-9_-]",
        4: "ytid '--PJHxphWE!' is not 11 chars",
        5: "start_seconds 'thirty' is not a number",
        6: "start_seconds 40 is not before end_seconds 30",
        7: "start_seconds -1 is negative",
        8: "class 'cat' is not a known class (baby_cry, dog, fireworks, rail_transport, water_flowing)",
        9: "url 'ftp://host/a.mp4' is not an http(s) address",
        10: "neither ytid nor url is given",
        11: "clip --PJHxphWEs_00030000 repeats row 2 (same video and start)",
        12: "start_seconds 'nan' is not a finite number",
    }
    for row, text in expected.items():
        assert f"manifest.csv row {row}: {text}" in message
    assert "row 2:" not in message
    assert len(caught.value.problems) == len(expected)


def test_missing_columns_say_which_are_required(tmp_path: Path) -> None:
    path = write(tmp_path, "class_name,video,start_seconds\ndog,--PJHxphWEs,30\n")
    with pytest.raises(ManifestError, match=r"missing column\(s\) ytid \(or url\), end_seconds") as caught:
        read_manifest(path, VEGAS_CLASSES)
    assert "class_name, ytid or url, start_seconds, end_seconds" in str(caught.value)


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("", "empty"),
        ("# only a comment\n\n", "empty"),
        ("class_name,ytid,start_seconds,end_seconds\n,,,\n", "no clip rows"),
    ],
)
def test_empty_manifest_is_an_error(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(ManifestError, match=complaint):
        read_manifest(write(tmp_path, text), VEGAS_CLASSES)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv", VEGAS_CLASSES)


def test_classes_restrict_what_is_known(tmp_path: Path) -> None:
    path = write(tmp_path, "class_name,ytid,start_seconds,end_seconds\nFireworks,--PJHxphWEs,0,10\n")
    with pytest.raises(ManifestError, match=r"row 2: class 'Fireworks' is not a known class \(dog\)"):
        read_manifest(path, ["Dog"])
