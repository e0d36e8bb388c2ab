"""download_clips with real yt-dlp and ffmpeg against a local Range-capable server and made-up clips."""

from __future__ import annotations

import json
import logging
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from yt_dlp.extractor.youtube import YoutubeIE

from pipelines.data.classes import VEGAS_CLASSES
from pipelines.data.manifest import ManifestError, ManifestRow, read_manifest
from pipelines.media.download import FAIL_REASONS, _classify, download_clips, final_path, ytdlp_options
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


# The timeout tests run against a server that never answers (or never goes on) while the test runs, so only
# the download's own timeouts can end them; a broken timeout shows as a hang, which the marker turns into a
# failure. How soon they end (seconds, with timeout_s = 1): benchmarks/bench_download.py.
@pytest.fixture
def silent_server(media: Path):
    with MediaServer(media, slow_delay_s=3600.0) as running:
        yield running


@pytest.mark.timeout(120)
def test_silent_host_times_out(tmp_path: Path, silent_server: MediaServer) -> None:
    rows = rows_for(tmp_path, silent_server, ("slow/fast.mp4", 0.0, 2.0))
    out = tmp_path / "out"
    (result,) = download_clips(rows, out, retries=0, backoff_s=0.0, timeout_s=1.0)
    assert (result.status, result.reason, result.attempts) == ("failed", "timeout", 1)
    assert "timed out" in result.detail  # the HTTP read timeout, not a late answer
    assert not final_path(out, rows[0]).exists()
    assert leftovers(out) == []


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "name, ended_by",
    [
        # ffmpeg's read timeout (or, on a machine too busy for it to act first, the deadline)
        ("fast.mp4", ("no complete clip within 1 s", "killed after 3 s")),
        # ffmpeg waits for the index without a timeout: the download's own deadline (3 x timeout_s) kills it
        ("plain.mp4", ("killed after 3 s",)),
    ],
)
def test_stalled_body_times_out(
    tmp_path: Path, silent_server: MediaServer, name: str, ended_by: tuple[str, ...]
) -> None:
    rows = rows_for(tmp_path, silent_server, (f"stall/{name}", 0.0, 5.0))
    out = tmp_path / "out"
    (result,) = download_clips(rows, out, retries=0, backoff_s=0.0, timeout_s=1.0)
    assert (result.status, result.reason, result.attempts) == ("failed", "timeout", 1)
    assert result.detail.startswith(ended_by), result.detail
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


# -- YouTube's refusals, cookies, pacing, the early stop ----------------------------------------------

SECRET_COOKIE = ("s2i_test", secrets.token_hex(16))  # what the local "YouTube" asks for


class LocalYoutubeIE(YoutubeIE):
    """yt-dlp's own YouTube extractor, fed a player response from the local server instead of YouTube's.

    `http://127.0.0.1:PORT/watch/STATE/NAME/VIDEO_ID` fetches `/player/STATE/NAME/VIDEO_ID` (see
    tests/http_server.py) with yt-dlp's request machinery, so the cookie jar built from `cookiefile` goes
    with it. A playable answer is fetched like any file; a refusal goes on through YoutubeIE._real_extract,
    so yt-dlp words the error exactly as it words YouTube's (login hint and all).
    """

    _VALID_URL = r"http://127\.0\.0\.1:\d+/watch/(?P<state>[^/]+)/(?P<name>[^/]+)/(?P<id>[0-9A-Za-z_-]{11})$"
    IE_NAME = "youtube"  # messages read "[youtube] VIDEO_ID: ...", as YouTube's do

    _player_response: dict | None = None

    def _real_extract(self, url: str) -> dict:
        video_id = self._match_id(url)
        response = self._download_json(url.replace("/watch/", "/player/", 1), video_id)
        if response.get("playabilityStatus", {}).get("status") == "OK":
            media = response["streamingData"]["formats"][0]["url"]
            return {"id": video_id, "title": video_id, "url": media, "ext": "mp4"}
        self._player_response = response
        return super()._real_extract(url)

    def _initial_extract(
        self, url: str, smuggled_data: dict, webpage_url: str, webpage_client: str, video_id: str
    ) -> tuple:
        # What YoutubeIE would have fetched from youtube.com: no page, no config, this player response.
        return None, {}, {}, False, [self._player_response], None


@pytest.fixture
def local_youtube(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every YoutubeDL made while the test runs knows LocalYoutubeIE (ahead of the generic extractor)."""
    import yt_dlp

    add_defaults = yt_dlp.YoutubeDL.add_default_info_extractors

    def add_local_first(ydl: yt_dlp.YoutubeDL) -> None:
        ydl.add_info_extractor(LocalYoutubeIE())
        add_defaults(ydl)

    monkeypatch.setattr(yt_dlp.YoutubeDL, "add_default_info_extractors", add_local_first)


@pytest.fixture
def youtube(media: Path, local_youtube: None):
    with MediaServer(media, slow_delay_s=8.0, required_cookie=SECRET_COOKIE) as running:
        yield running


def cookies_file(folder: Path) -> Path:
    """A cookies.txt as a browser extension exports it (yt-dlp would write it back differently)."""
    name, value = SECRET_COOKIE
    path = folder / "cookies.txt"
    path.write_text(
        "# Netscape HTTP Cookie File\n# https://curl.haxx.se/rfc/cookie_spec.html\n"
        "# This is a generated file! Do not edit.\n\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t0\t{name}\t{value}\n"
        ".youtube.com\tTRUE\t/\tTRUE\t2000000000\tPREF\tf6=40000000\n"
    )
    return path


def watch(state: str, count: int, name: str = "fast.mp4") -> list[tuple[str, float, float]]:
    """`count` clips of distinct made-up videos behind the local "YouTube" in `state`."""
    return [(f"watch/{state}/{name}/video{i:06d}", 0.0, 1.0) for i in range(count)]


def extraction_error(server: MediaServer, state: str) -> BaseException:
    """The exception yt-dlp raises for a video of the local "YouTube" in `state`, no cookies given."""
    import yt_dlp

    with pytest.raises(yt_dlp.utils.DownloadError) as caught:
        with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "logger": _Silent()}) as ydl:
            ydl.extract_info(server.url(f"watch/{state}/fast.mp4/abcdefghijk"), download=False)
    return caught.value


class _Silent:
    def debug(self, message: str) -> None:
        pass

    info = warning = error = debug


@pytest.mark.parametrize(
    "state, reason, retryable, detail",
    [
        ("cookie", "bot check", False, "Sign in to confirm you’re not a bot"),
        ("later", "rate limited", True, "This content isn't available, try again later"),
        ("429", "rate limited", True, "HTTP 429 Too Many Requests"),
        ("age", "unavailable", False, "Sign in to confirm your age"),
    ],
)
def test_youtube_refusals_in_yt_dlps_own_words_get_their_reason(
    youtube: MediaServer, state: str, reason: str, retryable: bool, detail: str
) -> None:
    error = extraction_error(youtube, state)
    if state in ("cookie", "age"):  # yt-dlp's own advice, appended by its YouTube extractor
        assert "Use --cookies-from-browser or --cookies for the authentication" in str(error)
    failure = _classify(error)
    assert (failure.reason, failure.retryable) == (reason, retryable)
    assert failure.detail.startswith(detail)


@pytest.mark.parametrize(
    "message, reason",
    [
        # yt-dlp 2026.10.26 on YouTube's bot check (the apostrophe is YouTube's typographic one)
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use --cookies-from-browser "
            "or --cookies for the authentication. See  https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-"
            "pass-cookies-to-yt-dlp  for how to manually pass cookies. Also see  https://github.com/yt-dlp/"
            "yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips on effectively exporting YouTube "
            "cookies",
            "bot check",
        ),
        ("ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm that you're not a bot", "bot check"),
        ("ERROR: [youtube] dQw4w9WgXcQ: Please sign in to confirm you are not a bot", "bot check"),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. YouTube is requiring a captcha challenge "
            "before playback",
            "bot check",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: Unable to download API page: HTTP Error 429: Too Many Requests",
            "rate limited",
        ),
        (
            "ERROR: [youtube] dQw4w9WgXcQ: This content isn't available, try again later. The current "
            "session has been rate-limited by YouTube for up to an hour.",
            "rate limited",
        ),
        ("ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm your age", "unavailable"),
        ("ERROR: [youtube] dQw4w9WgXcQ: Video unavailable. This video is private", "unavailable"),
    ],
)
def test_youtube_wordings_map_to_reasons(message: str, reason: str) -> None:
    import yt_dlp

    assert _classify(yt_dlp.utils.DownloadError(message)).reason == reason
    assert reason in FAIL_REASONS


def files_holding(folder: Path, text: str, skip: Path | None = None) -> list[Path]:
    needle = text.encode()
    return [
        path for path in folder.rglob("*") if path.is_file() and path != skip and needle in path.read_bytes()
    ]


def test_cookies_pass_the_bot_check_and_stay_secret(
    tmp_path: Path,
    youtube: MediaServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cookies = cookies_file(tmp_path)
    original, modified = cookies.read_bytes(), cookies.stat().st_mtime_ns
    rows = rows_for(tmp_path, youtube, *watch("cookie", 2))
    out = tmp_path / "data" / "youtube"
    messages: list[str] = []

    refused = download_clips(rows, out, retries=2, log=messages.append, **FAST)
    assert [(r.status, r.reason, r.attempts) for r in refused] == [("failed", "bot check", 1)] * 2
    assert refused[0].detail.startswith("Sign in to confirm you’re not a bot. YouTube asks to sign in")
    assert "set `cookies:` in the youtube source" in refused[0].detail and "pause_s" in refused[0].detail
    assert [record["reason"] for record in json.loads((out / "failures.json").read_text())] == [
        "bot check"
    ] * 2

    served = download_clips(rows, out, cookies=cookies, log=messages.append, **FAST)
    assert [(r.status, r.attempts) for r in served] == [("downloaded", 1)] * 2
    assert abs(probe(served[0].path)[0] - 1.0) <= 0.5
    players = [(path, sent) for _, path, sent in youtube.arrivals if path.startswith("/player/")]
    assert [sent for _, sent in players] == [False, False, True, True]  # yt-dlp sent the file's cookie

    secret = SECRET_COOKIE[1]
    assert cookies.read_bytes() == original and cookies.stat().st_mtime_ns == modified
    assert files_holding(tmp_path, secret, skip=cookies) == []  # failures.json, clips, work folders
    captured = capfd.readouterr()
    logged = [*messages, captured.out, captured.err, caplog.text]
    assert not [text for text in logged if secret in text]


def test_cookies_that_yt_dlp_cannot_read_stop_before_any_request(
    tmp_path: Path, youtube: MediaServer
) -> None:
    secret = SECRET_COOKIE[1]
    rows = rows_for(tmp_path, youtube, *watch("cookie", 1))
    bad = tmp_path / "bad.txt"
    cases = [
        (f"127.0.0.1\tFALSE\t/\tFALSE\t0\ts2i_test\t{secret}\n", "no header line"),
        (f"# Netscape HTTP Cookie File\n127.0.0.1 FALSE / FALSE 0 s2i_test {secret}\n", "line 2: 1 tab"),
        (f'[{{"name": "s2i_test", "value": "{secret}"}}]\n', "no header line"),
        (
            f"# HTTP Cookie File\n\n127.0.0.1\tFALSE\t/\tFALSE\tsoon\ts2i_test\t{secret}\n",
            "line 3: the expiry",
        ),
        (f"# HTTP Cookie File\n127.0.0.1\tTRUE\t/\tFALSE\t0\ts2i_test\t{secret}\n", "line 2: the second"),
    ]
    for text, expected in cases:
        bad.write_text(text)
        with pytest.raises(ValueError) as caught:
            download_clips(rows, tmp_path / "out", cookies=bad, **FAST)
        assert expected in str(caught.value) and str(bad) in str(caught.value)
        assert secret not in str(caught.value) and caught.value.__cause__ is None
    with pytest.raises(ValueError, match="does not exist"):
        download_clips(rows, tmp_path / "out", cookies=tmp_path / "missing.txt", **FAST)
    assert youtube.count() == 0


def test_rate_limits_get_their_reason_and_are_retried(tmp_path: Path, youtube: MediaServer) -> None:
    rows = rows_for(tmp_path, youtube, ("status/429/clip.mp4", 0.0, 1.0), *watch("later", 1))
    results = download_clips(rows, tmp_path / "out", retries=1, **FAST)
    assert [(r.status, r.reason, r.attempts) for r in results] == [("failed", "rate limited", 2)] * 2
    assert results[0].detail.startswith("HTTP 429 Too Many Requests. YouTube is limiting requests")
    assert results[1].detail.startswith("This content isn't available, try again later. YouTube is")
    assert all("wait an hour or more" in r.detail and "pause_s" in r.detail for r in results)


def test_bot_checks_in_a_row_stop_the_run_and_the_next_run_resumes(
    tmp_path: Path, youtube: MediaServer
) -> None:
    rows = rows_for(tmp_path, youtube, ("plain.mp4", 0.0, 1.0), *watch("cookie", 6))
    out = tmp_path / "out"
    messages: list[str] = []
    first = download_clips(rows, out, workers=1, max_bot_checks=3, log=messages.append, **FAST)
    assert [r.status for r in first] == ["downloaded"] + ["failed"] * 3 + ["skipped"] * 3
    assert [r.reason for r in first[4:]] == ["stopped early"] * 3
    assert all(r.attempts == 0 and r.path is None for r in first[4:])
    assert "stopped after 3 bot checks in a row" in first[4].detail and "cookies:" in first[4].detail
    assert youtube.count("/player/") == 3  # the skipped clips were never asked for
    assert first.stopped_early and "3 clips in a row met YouTube's bot check" in first.stop_message
    assert "Then run again" in first.stop_message and messages[-1] == first.stop_message
    assert "1 downloaded, 0 already there, 3 failed ({'bot check': 3}), 3 not tried" in messages[-2]
    assert len(json.loads((out / "failures.json").read_text())) == 3

    before = youtube.count()
    second = download_clips(rows, out, workers=2, cookies=cookies_file(tmp_path), **FAST)
    assert [r.status for r in second] == ["cached"] + ["downloaded"] * 6
    assert not second.stopped_early and second.stop_message == ""
    # The clip the first run downloaded (plain.mp4) is not asked for again.
    assert all(path.startswith(("/player/", "/fast.mp4")) for _, path, _ in youtube.requests[before:])
    assert youtube.count("/player/") == 3 + 6


@pytest.mark.parametrize("max_bot_checks", [3, 0])
def test_parallel_workers_stop_within_one_round(
    tmp_path: Path, youtube: MediaServer, max_bot_checks: int
) -> None:
    workers = 3
    rows = rows_for(tmp_path, youtube, *watch("cookie", 8))
    results = download_clips(rows, tmp_path / "out", workers=workers, max_bot_checks=max_bot_checks, **FAST)
    tried = [r for r in results if r.status == "failed"]
    assert all(r.reason == "bot check" for r in tried)
    assert youtube.count("/player/") == len(tried)
    if max_bot_checks == 0:  # never stops
        assert len(tried) == 8 and not results.stopped_early
    else:  # the ones under way when the third refusal came back still finish
        assert max_bot_checks <= len(tried) <= max_bot_checks + workers - 1
        assert all(r.reason == "stopped early" for r in results if r.status != "failed")
        assert results.stopped_early


def test_pause_spaces_the_requests_across_workers(tmp_path: Path, server: MediaServer) -> None:
    pause_s, clips = 0.5, 4
    rows = rows_for(tmp_path, server, *[(f"status/404/p{i}.mp4", 0.0, 1.0) for i in range(clips)])
    results = download_clips(rows, tmp_path / "out", workers=3, pause_s=pause_s, **FAST)
    assert [r.reason for r in results] == ["unavailable"] * clips
    arrivals = sorted(t for t, path, _ in server.arrivals if path.startswith("/status/404/p"))
    assert len(arrivals) == clips  # one request per clip: the spacing is between clips
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    # Without the pause the three workers' requests arrive within milliseconds of each other. The bounds
    # are loose because a busy machine delays a request between its turn and its arrival.
    assert arrivals[-1] - arrivals[0] >= 0.8 * (clips - 1) * pause_s, gaps
    assert min(gaps) >= 0.5 * pause_s, gaps
