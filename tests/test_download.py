"""download_clips with real yt-dlp and ffmpeg against a local Range-capable server and made-up clips."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from pipelines.data.classes import VEGAS_CLASSES
from pipelines.data.manifest import ManifestError, ManifestRow, read_manifest
from pipelines.media.download import FAIL_REASONS, download_clips, final_path, ytdlp_options
from pipelines.media.ffmpeg_binary import ffmpeg_exe
from tests.http_server import MediaServer

CLIP_SECONDS = 6
FAST = {"backoff_s": 0.01, "timeout_s": 10.0}  # tiny backoff; timeouts only matter in the timeout tests


def make_clip(path: Path, *, faststart: bool, video: bool = True) -> Path:
    """A 6 s H.264 + AAC mp4 from ffmpeg's test sources (moov at the end unless `faststart`)."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y"]
    if video:
        command += ["-f", "lavfi", "-i", f"testsrc=size=128x96:rate=25:duration={CLIP_SECONDS}"]
    command += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={CLIP_SECONDS}"]
    if video:
        command += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]
    command += ["-c:a", "aac", "-shortest"]
    if faststart:
        command += ["-movflags", "+faststart"]
    subprocess.run([*command, str(path)], check=True, capture_output=True)
    return path


def probe(path: Path) -> tuple[float, bool, bool]:
    """(duration in seconds, has video, has audio) as ffmpeg reports them."""
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    hours, minutes, seconds = re.search(r"Duration: (\d+):(\d+):([\d.]+)", done.stderr).groups()
    duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return duration, " Video: " in done.stderr, " Audio: " in done.stderr


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    make_clip(folder / "plain.mp4", faststart=False)
    make_clip(folder / "fast.mp4", faststart=True)
    make_clip(folder / "sound.mp4", faststart=True, video=False)
    return folder


@pytest.fixture
def server(media: Path):
    with MediaServer(media, slow_delay_s=8.0) as running:
        yield running


def rows_for(tmp_path: Path, server: MediaServer, *clips: tuple[str, float, float]) -> list[ManifestRow]:
    """Rows as a user would give them: a manifest with a `url` column pointing at the server."""
    lines = ["class_name,url,start_seconds,end_seconds"]
    lines += [f"dog,{server.url(route)},{start},{end}" for route, start, end in clips]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return read_manifest(manifest, VEGAS_CLASSES)


def leftovers(out_dir: Path) -> list[Path]:
    return [path for path in out_dir.rglob("*") if path.name.startswith(".") or path.name.endswith(".part")]


@pytest.mark.parametrize("name", ["plain.mp4", "fast.mp4"])
def test_section_is_cut_verified_and_stored(tmp_path: Path, server: MediaServer, name: str) -> None:
    rows = rows_for(tmp_path, server, (name, 1.0, 4.0))
    out = tmp_path / "out"
    (result,) = download_clips(rows, out, **FAST)
    assert (result.status, result.reason, result.attempts) == ("downloaded", "", 1)
    assert result.path == out / "dog" / f"{rows[0].clip_id}.mp4" == final_path(out, rows[0])
    duration, has_video, has_audio = probe(result.path)
    assert abs(duration - 3.0) <= 0.5 and has_video and has_audio
    assert leftovers(out) == []
    assert json.loads((out / "failures.json").read_text()) == []


def test_rerun_is_cached_without_a_request(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("fast.mp4", 0.0, 2.0))
    out = tmp_path / "out"
    assert download_clips(rows, out, **FAST)[0].status == "downloaded"
    before = server.count()
    assert before > 0
    (again,) = download_clips(rows, out, **FAST)
    assert (again.status, again.attempts, again.path) == ("cached", 0, final_path(out, rows[0]))
    assert server.count() == before


def test_leftovers_of_a_killed_run_are_redone(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("fast.mp4", 2.0, 5.0))
    out = tmp_path / "out"
    work_dir = out / "dog" / f".{rows[0].clip_id}.part"
    work_dir.mkdir(parents=True)
    (work_dir / "clip.mp4").write_bytes(b"half a file")
    (result,) = download_clips(rows, out, **FAST)
    assert result.status == "downloaded"
    assert abs(probe(result.path)[0] - 3.0) <= 0.5
    assert not work_dir.exists()


@pytest.mark.parametrize("code, reason", [(404, "unavailable"), (403, "http error")])
def test_not_found_and_forbidden_are_not_retried(
    tmp_path: Path, server: MediaServer, code: int, reason: str
) -> None:
    rows = rows_for(tmp_path, server, (f"status/{code}/clip.mp4", 0.0, 2.0))
    out = tmp_path / "out"
    (result,) = download_clips(rows, out, retries=3, **FAST)
    assert (result.status, result.reason, result.attempts, result.path) == ("failed", reason, 1, None)
    assert str(code) in result.detail
    assert server.count(f"/status/{code}/") == 1
    assert not final_path(out, rows[0]).exists()
    (failure,) = json.loads((out / "failures.json").read_text())
    assert (failure["clip_id"], failure["reason"]) == (rows[0].clip_id, reason)


def test_server_errors_are_retried_with_backoff(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("status/500/clip.mp4", 0.0, 2.0))
    started = time.monotonic()
    (result,) = download_clips(rows, tmp_path / "out", retries=2, backoff_s=0.1, timeout_s=10.0)
    assert (result.status, result.reason, result.attempts) == ("failed", "http error", 3)
    assert result.detail == "HTTP 500 Internal Server Error"
    assert server.count("/status/500/") == 3
    assert time.monotonic() - started >= 0.1 + 0.2  # waited backoff_s, then twice that


def test_flaky_host_succeeds_after_retries(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("flaky/2/fast.mp4", 1.0, 3.0))
    (result,) = download_clips(rows, tmp_path / "out", retries=3, **FAST)
    assert (result.status, result.attempts) == ("downloaded", 3)
    assert abs(probe(result.path)[0] - 2.0) <= 0.5


@pytest.mark.parametrize("name", ["plain.mp4", "fast.mp4"])
def test_truncated_body_leaves_no_file(tmp_path: Path, server: MediaServer, name: str) -> None:
    # fast.mp4: ffmpeg exits 0 with a shorter, valid clip; plain.mp4: it cannot find the index at all.
    rows = rows_for(tmp_path, server, (f"truncated/{name}", 0.0, 5.0))
    out = tmp_path / "out"
    (result,) = download_clips(rows, out, retries=1, **FAST)
    assert (result.status, result.reason, result.attempts) == ("failed", "error", 2)
    if name == "fast.mp4":
        assert result.detail.startswith("incomplete download: got")
    assert not final_path(out, rows[0]).exists()
    assert leftovers(out) == []


def test_web_page_is_not_a_video(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("html/clip.mp4", 0.0, 2.0))
    out = tmp_path / "out"
    (result,) = download_clips(rows, out, retries=3, **FAST)
    assert (result.status, result.reason, result.attempts) == ("failed", "not a video", 1)
    assert not final_path(out, rows[0]).exists()
    assert leftovers(out) == []


def test_sound_without_picture_is_not_a_video(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("sound.mp4", 0.0, 2.0))
    out = tmp_path / "out"
    (result,) = download_clips(rows, out, retries=3, **FAST)
    assert (result.status, result.reason, result.attempts) == ("failed", "not a video", 1)
    assert result.detail == "the download has no video stream"
    assert not final_path(out, rows[0]).exists()


def test_silent_host_times_out(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("slow/fast.mp4", 0.0, 2.0))
    started = time.monotonic()
    (result,) = download_clips(rows, tmp_path / "out", retries=0, backoff_s=0.0, timeout_s=1.0)
    assert (result.status, result.reason, result.attempts) == ("failed", "timeout", 1)
    assert time.monotonic() - started < 5.0  # the server would have answered after 8 s


@pytest.mark.parametrize("name", ["fast.mp4", "plain.mp4"])
def test_stalled_body_times_out(tmp_path: Path, server: MediaServer, name: str) -> None:
    # fast.mp4: ffmpeg's read timeout ends it; plain.mp4: ffmpeg waits for the index without a timeout, and
    # the download's own deadline (3 x timeout_s) kills it.
    rows = rows_for(tmp_path, server, (f"stall/{name}", 0.0, 5.0))
    out = tmp_path / "out"
    started = time.monotonic()
    (result,) = download_clips(rows, out, retries=0, backoff_s=0.0, timeout_s=1.0)
    assert (result.status, result.reason, result.attempts) == ("failed", "timeout", 1)
    assert time.monotonic() - started < 6.0  # the server would have gone on for 8 s
    assert not final_path(out, rows[0]).exists()
    assert leftovers(out) == []


def test_batch_keeps_order_reports_progress_and_survives_bad_clips(
    tmp_path: Path, server: MediaServer
) -> None:
    rows = rows_for(
        tmp_path,
        server,
        ("fast.mp4", 0.0, 2.0),
        ("status/404/a.mp4", 0.0, 2.0),
        ("plain.mp4", 2.0, 4.0),
        ("html/b.mp4", 0.0, 2.0),
        ("fast.mp4", 3.0, 6.0),
    )
    messages: list[str] = []
    results = download_clips(rows, tmp_path / "out", workers=3, log=messages.append, **FAST)
    assert [r.clip_id for r in results] == [row.clip_id for row in rows]
    assert [r.status for r in results] == ["downloaded", "failed", "downloaded", "failed", "downloaded"]
    assert all(r.reason in FAIL_REASONS for r in results if r.status == "failed")
    assert any(m.startswith("download: 5/5 clips") for m in messages)
    assert (
        messages[-1]
        == "download: 3 downloaded, 0 already there, 2 failed ({'unavailable': 1, 'not a video': 1})"
    )
    failed = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert [f["clip_id"] for f in failed] == [rows[1].clip_id, rows[3].clip_id]


def test_bad_manifest_stops_before_any_request(tmp_path: Path, server: MediaServer) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "class_name,url,start_seconds,end_seconds\n"
        f"dog,{server.url('fast.mp4')},0,2\n"
        f"dog,{server.url('fast.mp4')},3,1\n"
        f"cat,{server.url('plain.mp4')},0,2\n"
    )
    with pytest.raises(ManifestError) as caught:
        download_clips(read_manifest(manifest, VEGAS_CLASSES), tmp_path / "out")
    assert "manifest.csv row 3: start_seconds 3 is not before end_seconds 1" in str(caught.value)
    assert "manifest.csv row 4: class 'cat' is not a known class" in str(caught.value)
    assert server.count() == 0
    assert not (tmp_path / "out").exists()


def test_repeated_clip_ids_are_refused_before_fetching(tmp_path: Path, server: MediaServer) -> None:
    rows = rows_for(tmp_path, server, ("fast.mp4", 0.0, 2.0))
    with pytest.raises(ValueError, match="more than once"):
        download_clips(rows * 2, tmp_path / "out", **FAST)
    assert server.count() == 0


def test_youtube_shaped_formats_pick_360p_and_merge_the_cut(
    tmp_path: Path, server: MediaServer, media: Path
) -> None:
    """YouTube offers separate video-only and audio-only streams; yt-dlp must pick <= 360p and merge them.

    Offline, the extractor's result is given directly (the shape YouTube's extractor returns).
    """
    import yt_dlp

    ffmpeg = ffmpeg_exe()
    for source, target, stream in (("fast.mp4", "video.mp4", "0:v"), ("fast.mp4", "audio.m4a", "0:a")):
        command = [ffmpeg, "-v", "error", "-y", "-i", str(media / source), "-map", stream, "-c", "copy"]
        subprocess.run([*command, str(media / target)], check=True)
    video = {"url": server.url("video.mp4"), "ext": "mp4", "vcodec": "avc1.4d401e", "acodec": "none"}
    formats = [
        {**video, "format_id": "134", "height": 360, "width": 480},
        {**video, "format_id": "137", "height": 1080, "width": 1920},
        {
            "format_id": "140",
            "url": server.url("audio.m4a"),
            "ext": "m4a",
            "vcodec": "none",
            "acodec": "mp4a.40.2",
        },
    ]
    info = {"id": "abcdefghijk", "title": "t", "duration": 6, "formats": formats}
    (row,) = rows_for(tmp_path, server, ("video.mp4", 1.0, 4.0))
    with yt_dlp.YoutubeDL(ytdlp_options(row, tmp_path, timeout_s=10.0)) as ydl:
        result = ydl.process_ie_result(info, download=True)
    assert [d["format_id"] for d in result["requested_downloads"]] == ["134+140"]
    duration, has_video, has_audio = probe(tmp_path / "clip.mp4")
    assert abs(duration - 3.0) <= 0.5 and has_video and has_audio
