"""Download manifest clips as cut sections with yt-dlp: parallel, resumable, retried, verified.

Each clip is fetched as its section [start, end) through yt-dlp's Python API, which hands the cut to
ffmpeg (the one `ffmpeg_exe()` names; no ffprobe is needed). yt-dlp writes into a per-clip work folder
`out_dir/<class>/.<clip_id>.part/`; only a file that ffmpeg can read, with a video stream and about the
requested length, is moved to `out_dir/<class>/<clip_id>.mp4`. A clip whose final file exists is never
fetched again, so an interrupted run resumes where it stopped; work folders of killed runs are removed and
their clips redone. One bad clip never stops the run: it is retried when the failure may pass (5xx, time-
outs, truncated bodies) and then recorded with a reason.

YouTube refuses bulk downloads with a bot check ("Sign in to confirm you're not a bot") or HTTP 429; both
get their own reason with the remedy in the detail. A cookies file (Netscape cookies.txt) is read once and
handed to each yt-dlp call as an in-memory copy, so yt-dlp's habit of writing its cookie jar back on exit
never touches the user's file and no copy lands on disk. `pause_s` spaces the attempts across all workers
(the first request of each waits its turn on one shared clock); after `max_bot_checks` bot checks in a row
the run starts no more clips and reports the rest as skipped, and a later run resumes (finished clips are
kept).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.data.manifest import ManifestRow
from pipelines.data.progress import Progress
from pipelines.media.ffmpeg_binary import ffmpeg_exe

FAIL_REASONS = (
    "unavailable",
    "http error",
    "timeout",
    "not a video",
    "bot check",
    "rate limited",
    "error",
)
STOPPED_EARLY = "stopped early"  # the reason of a "skipped" row: the run stopped before trying it

# Frames end up 96x96, so anything above 360p only costs bandwidth. mp4 first so the cut needs no remux;
# the fallbacks take whatever the host offers.
VIDEO_FORMAT = (
    "bv*[height<=360][ext=mp4]+ba[ext=m4a]/b[height<=360][ext=mp4]/"
    "bv*[height<=360]+ba/b[height<=360]/bv*+ba/b"
)

# A kept clip must be at least this close to the length asked for (the host's own duration, when it tells
# it, caps what can be asked): a body cut short still makes a valid, shorter mp4.
_SHORT_TOLERANCE_S = 0.5
_SHORT_TOLERANCE_FRACTION = 0.1
# ffmpeg's own I/O timeout does not cover every stall (measured: none while it looks for the index of an mp4
# whose moov sits at the end), so an attempt running longer than this many `timeout_s` is killed.
_WALL_CLOCK_TIMEOUTS = 3.0

FAILURES_FILE = "failures.json"


@dataclass(frozen=True)
class DownloadResult:
    clip_id: str
    class_name: str
    url: str
    path: Path | None  # the final file; None unless downloaded or cached
    status: str  # "downloaded" | "cached" | "failed" | "skipped" (not tried: the run stopped early)
    reason: str  # "" or one of FAIL_REASONS, or STOPPED_EARLY for a skipped row
    detail: str  # short human text: "HTTP 404 Not Found", "got 1.4 s of the 3.0 s asked for"
    attempts: int


class _ClipFailed(Exception):
    def __init__(self, reason: str, detail: str, retryable: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


class DownloadReport(list[DownloadResult]):
    """The results in the order of the rows (a plain list to callers), and why the run stopped early.

    `stop_message` is "" when every row was tried; otherwise it says why the run stopped and what to do.
    """

    def __init__(self, results: Sequence[DownloadResult] = (), stop_message: str = "") -> None:
        super().__init__(results)
        self.stop_message = stop_message

    @property
    def stopped_early(self) -> bool:
        return bool(self.stop_message)


@dataclass(frozen=True)
class _Settings:
    retries: int
    backoff_s: float
    timeout_s: float
    cookie_text: str | None = None  # the cookies file's contents: never logged, never written anywhere


def download_clips(
    rows: Sequence[ManifestRow],
    out_dir: Path,
    *,
    workers: int = 4,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    cookies: Path | None = None,
    pause_s: float = 0.0,
    max_bot_checks: int = 20,
    log: Callable[[str], object] | None = None,
) -> DownloadReport:
    """Fetch every row's section into `out_dir/<class_name>/<clip_id>.mp4`; results in the order of rows.

    `retries` is how many times a clip is tried again after a failure that may pass (so at most
    1 + retries attempts), waiting backoff_s, 2*backoff_s, 4*backoff_s, ... in between. `timeout_s` bounds
    each network wait (yt-dlp's requests and ffmpeg's reads); an attempt is killed after
    3 * timeout_s in all. The failed clips are also written to `out_dir/failures.json`.

    `cookies` is a Netscape cookies.txt handed to yt-dlp (read, never modified, copied or logged).
    `pause_s` is the least time between the first requests of two attempts, across all workers. After
    `max_bot_checks` bot checks in a row (0: never) no more clips are started; the rows not tried come back
    "skipped" and the returned report's `stop_message` says what to do.
    """
    out_dir = Path(out_dir).resolve()
    if re.search(r"[%$]", str(out_dir)):
        # yt-dlp expands % templates and $VARIABLES in output paths; refusing is clearer than escaping.
        raise ValueError(
            f"download folder {out_dir} contains '%' or '$', which yt-dlp would expand: pick another"
        )
    if (
        retries < 0
        or backoff_s < 0
        or timeout_s <= 0
        or workers < 1
        or not 0 <= pause_s < math.inf
        or max_bot_checks < 0
    ):
        raise ValueError(
            f"download settings out of range: workers={workers} (>= 1), retries={retries} (>= 0), "
            f"backoff_s={backoff_s} (>= 0), timeout_s={timeout_s} (> 0), pause_s={pause_s} (>= 0), "
            f"max_bot_checks={max_bot_checks} (>= 0)"
        )
    repeated = [clip_id for clip_id, n in Counter(row.clip_id for row in rows).items() if n > 1]
    if repeated:
        raise ValueError(
            f"clip ids appear more than once (two downloads would share a file): {repeated[:10]}"
        )
    cookie_text = read_cookies(Path(cookies)) if cookies is not None else None

    settings = _Settings(retries=retries, backoff_s=backoff_s, timeout_s=timeout_s, cookie_text=cookie_text)
    gate = _Gate(pause_s=pause_s, max_bot_checks=max_bot_checks)
    emit = log or (lambda _message: None)
    progress = Progress(len(rows), "download", log=log, unit="clips")
    results: list[DownloadResult | None] = [None] * len(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    announced = False
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download") as pool:
        futures = {pool.submit(_download_one, row, out_dir, settings, gate): i for i, row in enumerate(rows)}
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if result.status == "failed":
                emit(
                    f"download {result.clip_id} ({result.url}): failed after {result.attempts} attempt(s), "
                    f"{result.reason}: {result.detail}"
                )
            if gate.stopped.is_set() and not announced:
                announced = True
                emit(
                    f"download: {max_bot_checks} bot checks in a row; starting no more clips "
                    "(the ones under way finish)"
                )
            progress.advance()

    done = [result for result in results if result is not None]
    counts = Counter(result.status for result in done)
    reasons = Counter(result.reason for result in done if result.status == "failed")
    emit(
        f"download: {counts['downloaded']} downloaded, {counts['cached']} already there, "
        f"{counts['failed']} failed"
        + (f" ({dict(reasons)})" if reasons else "")
        + (f", {counts['skipped']} not tried ({STOPPED_EARLY})" if counts["skipped"] else "")
    )
    _write_failures(out_dir, [result for result in done if result.status == "failed"])
    stop_message = ""
    if counts["skipped"]:
        stop_message = (
            f"download stopped early: {max_bot_checks} clips in a row met YouTube's bot check, so "
            f"{counts['skipped']} clips were not tried. {_remedy('bot check', cookie_text is not None)}. "
            f"Then run again: the {counts['downloaded'] + counts['cached']} clips already downloaded are "
            "kept and the download resumes with the rest."
        )
        emit(stop_message)
    return DownloadReport(done, stop_message)


def read_cookies(path: Path) -> str:
    """The text of a Netscape cookies.txt, checked the way yt-dlp will read it; ValueError if unusable.

    Messages name the file and the line number, never a line: the lines hold the cookies.
    """
    how = (
        "export your browser's youtube.com cookies again as a cookies.txt (Netscape format, the first "
        "line '# Netscape HTTP Cookie File')"
    )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"cookies file {path} does not exist: {how} and give its path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cookies file {path} cannot be read ({type(error).__name__}): {how}") from None
    lines = text.splitlines()
    if not lines or not re.match(r"#( Netscape)? HTTP Cookie File", lines[0]):
        raise ValueError(f"cookies file {path} is not a Netscape cookies.txt (no header line): {how}")
    for number, line in enumerate(lines[1:], start=2):
        line = line.removeprefix("#HttpOnly_")
        if not line.strip() or line.lstrip().startswith(("#", "$")):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            raise ValueError(
                f"cookies file {path} line {number}: {len(fields)} tab-separated fields instead of 7: {how}"
            )
        domain, include_subdomains, _path, _secure, expires = fields[:5]
        # yt-dlp and http.cookiejar would stop on these with the whole line in the message.
        if expires and not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", expires):
            raise ValueError(f"cookies file {path} line {number}: the expiry is not a number: {how}")
        if (include_subdomains == "TRUE") != domain.startswith("."):
            raise ValueError(
                f"cookies file {path} line {number}: the second field must be TRUE exactly when the "
                f"domain starts with '.': {how}"
            )
    from yt_dlp.cookies import YoutubeDLCookieJar

    try:
        YoutubeDLCookieJar(io.StringIO(text)).load()
    except Exception as error:  # noqa: BLE001 - the message may quote a line, so only its kind is shown
        raise ValueError(f"cookies file {path} cannot be loaded ({type(error).__name__}): {how}") from None
    return text


def final_path(out_dir: Path, row: ManifestRow) -> Path:
    """Where a row's finished clip lives."""
    return Path(out_dir) / row.class_name / f"{row.clip_id}.mp4"


# -- one clip --------------------------------------------------------------------------------------


def _download_one(row: ManifestRow, out_dir: Path, settings: _Settings, gate: _Gate) -> DownloadResult:
    result = _attempt_clip(row, out_dir, settings, gate)
    gate.record(result)  # here, in the worker, so no worker starts another clip before a stop is seen
    return result


def _attempt_clip(row: ManifestRow, out_dir: Path, settings: _Settings, gate: _Gate) -> DownloadResult:
    final = final_path(out_dir, row)

    def result(status: str, reason: str = "", detail: str = "", attempts: int = 0) -> DownloadResult:
        path = final if status in ("downloaded", "cached") else None
        return DownloadResult(row.clip_id, row.class_name, row.url, path, status, reason, detail, attempts)

    if final.is_file() and final.stat().st_size > 0:
        return result("cached")

    work_dir = final.parent / f".{row.clip_id}.part"
    attempts = 0
    failure = _ClipFailed("error", "not tried", retryable=False)
    try:
        for attempt in range(1 + settings.retries):
            if attempt and not gate.sleep(settings.backoff_s * 2 ** (attempt - 1)):
                break  # stopped early: no more requests, this clip keeps its last failure
            if gate.stopped.is_set() and not attempts:  # skip without even starting yt-dlp
                return result("skipped", STOPPED_EARLY, gate.skip_detail(settings.cookie_text is not None))
            try:
                shutil.rmtree(work_dir, ignore_errors=True)  # also what a killed run left behind
                work_dir.mkdir(parents=True)
                produced = _fetch_and_verify(row, work_dir, settings, gate.enter)
                os.replace(produced, final)
                return result("downloaded", attempts=attempts + 1)
            except _Stopped:
                if attempts:
                    break
                return result("skipped", STOPPED_EARLY, gate.skip_detail(settings.cookie_text is not None))
            except _ClipFailed as failed:
                failure = failed
            except Exception as unexpected:  # noqa: BLE001 - one clip must never stop the run
                failure = _ClipFailed("error", _short(f"{type(unexpected).__name__}: {unexpected}"), True)
            attempts += 1
            if not failure.retryable:
                break
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    remedy = _remedy(failure.reason, settings.cookie_text is not None)
    detail = f"{failure.detail}. {remedy}" if remedy else failure.detail
    return result("failed", failure.reason, detail, attempts)


class _Stopped(Exception):
    """The run stopped early before this attempt sent anything."""


def _fetch_and_verify(
    row: ManifestRow, work_dir: Path, settings: _Settings, wait_turn: Callable[[], bool] = lambda: True
) -> Path:
    """One attempt; `wait_turn` is asked just before the first request (False: raise _Stopped)."""
    timeout_s = settings.timeout_s
    started = time.monotonic()
    watchdog = _Watchdog(work_dir, deadline_s=_WALL_CLOCK_TIMEOUTS * timeout_s)

    def take_turn() -> bool:
        nonlocal started
        if not wait_turn():
            return False
        started = time.monotonic()  # the wait for a turn is not the host's slowness
        watchdog.restart()
        return True

    try:
        with watchdog:
            info = _fetch_section(row, work_dir, timeout_s, settings.cookie_text, take_turn)
        produced = _produced_file(work_dir)
        duration = info.get("duration")
        _verify(produced, row, float(duration) if isinstance(duration, int | float) else None)
        return produced
    except _Stopped:
        raise
    except _ClipFailed as failed:
        failure = failed
    except Exception as error:  # noqa: BLE001 - yt-dlp raises its own kinds; sort them into reasons
        failure = _classify(error)
    if watchdog.fired:
        raise _ClipFailed("timeout", f"killed after {watchdog.deadline_s:g} s ({failure.detail})", True)
    # ffmpeg reports a stalled read as a plain failure or a short file; the clock tells them apart.
    if failure.reason == "error" and time.monotonic() - started >= timeout_s:
        raise _ClipFailed("timeout", f"no complete clip within {timeout_s:g} s ({failure.detail})", True)
    raise failure


def _fetch_section(
    row: ManifestRow,
    work_dir: Path,
    timeout_s: float,
    cookie_text: str | None,
    take_turn: Callable[[], bool] = lambda: True,
) -> dict[str, Any]:
    """Run yt-dlp on the row; `take_turn` is asked right before its first request goes out.

    The turn is taken there, not before yt-dlp starts, because yt-dlp's own start-up (choosing among its
    extractors, the first call compiles their patterns) takes from milliseconds to most of a second: a pause
    counted before it would not space the requests the host sees.
    """
    import yt_dlp
    from yt_dlp.utils import DownloadCancelled

    stopped = False
    with yt_dlp.YoutubeDL(ytdlp_options(row, work_dir, timeout_s, cookie_text)) as ydl:
        urlopen = ydl.urlopen  # every request of yt-dlp's extractors and HTTP downloads goes through it
        first = True

        def paced_urlopen(*args: Any, **kwargs: Any) -> Any:
            nonlocal first, stopped
            if first:
                first = False
                if not take_turn():
                    stopped = True
                    raise DownloadCancelled("the download stopped early")  # yt-dlp lets this one through
            return urlopen(*args, **kwargs)

        ydl.urlopen = paced_urlopen
        try:
            info = ydl.extract_info(row.url, download=True)
        except DownloadCancelled:
            if stopped:
                raise _Stopped from None
            raise
    return info or {}


def ytdlp_options(
    row: ManifestRow, work_dir: Path, timeout_s: float, cookie_text: str | None = None
) -> dict[str, Any]:
    """yt-dlp parameters that fetch `row`'s section, cut by ffmpeg, as `work_dir/clip.<ext>`.

    `cookie_text` is a Netscape cookies.txt's contents (from `read_cookies`), or None for no cookies.
    """
    import yt_dlp
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    ffmpeg = ffmpeg_exe()
    # yt-dlp decides whether ffmpeg can cut sections before it reads `ffmpeg_location` (yt-dlp issues
    # #2191, #4273); its command line sets this context variable, so the API has to as well. Context
    # variables belong to the thread that sets them, so this touches only the calling worker.
    if hasattr(FFmpegPostProcessor, "_ffmpeg_location"):
        FFmpegPostProcessor._ffmpeg_location.set(ffmpeg)
    options: dict[str, Any] = {
        "format": VIDEO_FORMAT,
        "merge_output_format": "mp4",
        "outtmpl": {"default": str(work_dir / "clip.%(ext)s")},
        "download_ranges": yt_dlp.utils.download_range_func(None, [(row.start, row.end)]),
        "force_keyframes_at_cuts": True,  # re-encodes at the cut, so the clip starts exactly at `start`
        "ffmpeg_location": ffmpeg,
        # ffmpeg cuts and writes the final container itself; the fix-up passes are not needed.
        "fixup": "never",
        "socket_timeout": timeout_s,
        # ffmpeg's own read timeout (microseconds) for the section download.
        "external_downloader_args": {"ffmpeg_i": ["-rw_timeout", str(int(timeout_s * 1_000_000))]},
        "retries": 0,  # retries happen here, with backoff, around the whole attempt
        "noplaylist": True,
        "overwrites": True,
        "continuedl": False,
        "cachedir": False,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
    }
    if cookie_text is not None:
        # yt-dlp reads its cookie jar from `cookiefile` and writes the jar back there when it closes (as
        # yt-dlp 2026.10.26 does in YoutubeDL.close -> save_cookies). A private in-memory stream per call
        # takes those writes, so the user's file is never modified, no copy touches the disk, and parallel
        # workers do not overwrite each other. (ffmpeg still gets the matching cookies on its command line,
        # as yt-dlp hands them over with -cookies.)
        options["cookiefile"] = io.StringIO(cookie_text)
    return options


def _produced_file(work_dir: Path) -> Path:
    candidates = [
        path
        for path in work_dir.iterdir()
        if path.is_file() and path.name.startswith("clip.") and not path.name.endswith((".part", ".ytdl"))
    ]
    if not candidates:
        raise _ClipFailed("error", "yt-dlp finished but wrote no file", retryable=True)
    produced = max(candidates, key=lambda path: path.stat().st_size)
    if produced.suffix != ".mp4":
        produced = _remux_to_mp4(produced)
    return produced


def _remux_to_mp4(source: Path) -> Path:
    target = source.with_name("clip.remux.mp4")
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", str(source)]
    command += ["-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-f", "mp4", str(target)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise _ClipFailed(
            "not a video", f"cannot store {source.suffix} as mp4: {_first_line(done.stderr)}", False
        )
    return target


# -- verification ----------------------------------------------------------------------------------


def _verify(path: Path, row: ManifestRow, source_duration: float | None) -> float:
    """Raise unless `path` holds a readable video stream of about the section's length; return its length."""
    if path.stat().st_size == 0:
        raise _ClipFailed("error", "downloaded file is empty", retryable=True)
    length = video_duration(path)
    wanted_end = min(row.end, source_duration) if source_duration else row.end
    if source_duration is not None and row.start >= source_duration:
        raise _ClipFailed(
            "error", f"section starts at {row.start:g} s but the video is {source_duration:g} s long", False
        )
    wanted = wanted_end - row.start
    if length < wanted - max(_SHORT_TOLERANCE_S, _SHORT_TOLERANCE_FRACTION * wanted):
        raise _ClipFailed(
            "error", f"incomplete download: got {length:.2f} s of the {wanted:.2f} s asked for", True
        )
    return length


def video_duration(path: Path) -> float:
    """Seconds of video ffmpeg can read from `path` (packets copied, nothing decoded: fast).

    Raises a "not a video" failure when ffmpeg cannot open the file or it has no video stream.
    """
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-v", "error", "-i", str(path)]
    command += ["-map", "0:v:0", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        raise _ClipFailed("error", "checking the downloaded file took over 120 s", retryable=True) from None
    if done.returncode != 0:
        message = _first_line(done.stderr)
        if "matches no streams" in done.stderr:
            raise _ClipFailed("not a video", "the download has no video stream", retryable=False)
        raise _ClipFailed("not a video", f"ffmpeg cannot read the download: {message}", retryable=False)
    times = re.findall(r"^out_time_us=(\d+)$", done.stdout, flags=re.MULTILINE)
    return int(times[-1]) / 1_000_000 if times else 0.0


# -- failure sorting -------------------------------------------------------------------------------

_UNAVAILABLE = re.compile(
    r"video unavailable|private video|is private|has been removed|no longer available|is not available|"
    r"account associated with this video has been terminated|copyright|members[- ]only|join this channel|"
    r"confirm your age|age[- ]restricted|not made this video available|premieres in|this live event",
    re.IGNORECASE,
)
_HTTP_STATUS = re.compile(r"HTTP Error (\d{3}):?\s*([^(\n]*)")
# YouTube's bot check, as yt-dlp passes on YouTube's text: "Sign in to confirm you’re not a bot. Use
# --cookies-from-browser or --cookies for the authentication. ..." (a typographic apostrophe; other clients
# say "that you're" or "you are"), or yt-dlp's "YouTube is requiring a captcha challenge before playback".
# "Sign in to confirm your age" is an age gate, not a bot check, and stays "unavailable".
_BOT_CHECK = re.compile(
    r"confirm (?:that )?you(?:['’]re| are) not a (?:ro)?bot|captcha challenge", re.IGNORECASE
)
# YouTube's rate limit: HTTP 429, or the player's "This content isn't available, try again later", which
# yt-dlp explains as "The current session has been rate-limited by YouTube for up to an hour".
_RATE_LIMITED = re.compile(
    r"isn['’]t available, try again later|rate-limited by YouTube|Too Many Requests", re.IGNORECASE
)


def _classify(error: BaseException) -> _ClipFailed:
    """Sort a yt-dlp error into a FAIL_REASONS reason, a short detail, and whether to try again."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    message = str(error)
    # Sorted by yt-dlp's text first: YouTube's refusals arrive as extractor messages, not HTTP statuses.
    if _BOT_CHECK.search(message):
        return _ClipFailed("bot check", _first_sentence(message), retryable=False)
    if _RATE_LIMITED.search(message) and not _HTTP_STATUS.search(message):
        return _ClipFailed("rate limited", _first_sentence(message), retryable=True)
    for cause in _causes(error):
        if isinstance(cause, HTTPError):
            return _http_failure(cause.status, str(cause.reason or ""))
    if _UNAVAILABLE.search(message):
        return _ClipFailed("unavailable", _short(_strip_prefix(message)), retryable=False)
    status = _HTTP_STATUS.search(message)
    if status:
        return _http_failure(int(status.group(1)), status.group(2).strip())
    if any(isinstance(cause, TimeoutError) for cause in _causes(error)) or re.search(
        r"timed? ?out", message, re.IGNORECASE
    ):
        return _ClipFailed("timeout", _short(_strip_prefix(message)), retryable=True)
    if "Unsupported URL" in message:
        return _ClipFailed("not a video", "the address serves a web page, not a video", retryable=False)
    if any(isinstance(cause, TransportError) for cause in _causes(error)):
        return _ClipFailed("error", _short(_strip_prefix(message)), retryable=True)
    # ffmpeg failures ("ffmpeg exited with code 183": cut-off bodies, reset connections) and anything else:
    # worth another try, the retry budget keeps it bounded.
    return _ClipFailed("error", _short(_strip_prefix(message)), retryable=True)


def _http_failure(status: int, phrase: str) -> _ClipFailed:
    detail = f"HTTP {status} {phrase}".strip()
    if status in (404, 410):
        return _ClipFailed("unavailable", detail, retryable=False)
    if status == 429:
        return _ClipFailed("rate limited", detail, retryable=True)
    # Server trouble passes; other refusals (403 and the rest of 4xx) do not.
    return _ClipFailed("http error", detail, retryable=status >= 500 or status == 408)


def _remedy(reason: str, cookies_given: bool) -> str:
    """What to do about a refusal (empty for reasons that need nothing from the user)."""
    if reason == "bot check":
        if cookies_given:
            return (
                "YouTube did not accept the cookies given in `cookies:` (expired, or exported signed out?): "
                "export fresh ones from a browser signed in to YouTube, and set or raise `pause_s` (e.g. 5)"
            )
        return (
            "YouTube asks to sign in: export your browser's cookies for youtube.com to a cookies.txt "
            "(Netscape format) and set `cookies:` in the youtube source; add `pause_s` (e.g. 5)"
        )
    if reason == "rate limited":
        return (
            "YouTube is limiting requests from here: wait an hour or more and run again (downloaded clips "
            "are kept); set `pause_s` (e.g. 5) and fewer `download_workers`"
        )
    return ""


def _first_sentence(message: str) -> str:
    # "Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies ..." -> the first
    # sentence: yt-dlp's command-line advice does not apply here, the remedy says what does.
    text = _strip_prefix(message)
    return _short(re.split(r"(?<=[a-z])\.\s", text, maxsplit=1)[0].rstrip("."))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (yt-dlp keeps causes in `exc_info` and `cause`)."""
    seen: set[int] = set()
    pending: list[object] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            pending.append(exc_info[1])
        pending += [getattr(current, "cause", None), current.__cause__, current.__context__]


def _strip_prefix(message: str) -> str:
    # "ERROR: [generic] abc: Unable to download webpage: ... (caused by ...)" -> the middle part
    message = re.sub(r"^(?:ERROR:\s*)?(?:\[[^\]]+\]\s*[^:\s]+:\s*)?", "", message.strip())
    return re.sub(r"\s*\(caused by .*$", "", message, flags=re.DOTALL)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return _short(lines[-1] if lines else "no message")


class _QuietLogger:
    """yt-dlp's messages stay out of the run's log; failures come back as exceptions."""

    def debug(self, message: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def error(self, message: str) -> None:
        pass


# -- pacing and the early stop --------------------------------------------------------------------


class _Gate:
    """What every worker passes before a request: the shared pause, and the stop after bot checks.

    The pause spaces the starts of attempts across all workers (one shared clock, not a sleep per thread);
    the count of bot checks in a row is kept in completion order and reset by any answer that is not a
    refusal.
    """

    def __init__(self, pause_s: float, max_bot_checks: int) -> None:
        self.pause_s = pause_s
        self.max_bot_checks = max_bot_checks
        self.stopped = threading.Event()
        self.bot_checks_in_a_row = 0
        self._pace = threading.Lock()
        self._count = threading.Lock()
        self._last_start = -math.inf

    def enter(self) -> bool:
        """Wait for this request's turn; False when the run has stopped (then send nothing)."""
        if self.pause_s <= 0:
            return not self.stopped.is_set()
        with self._pace:  # one waiter at a time, each pausing after the start before it
            delay = self._last_start + self.pause_s - time.monotonic()
            if delay > 0 and self.stopped.wait(delay):
                return False
            if self.stopped.is_set():
                return False
            self._last_start = time.monotonic()
            return True

    def sleep(self, seconds: float) -> bool:
        """Sleep (a backoff); False when the run stopped meanwhile."""
        return not self.stopped.wait(seconds) if seconds > 0 else not self.stopped.is_set()

    def record(self, result: DownloadResult) -> None:
        with self._count:
            if result.reason == "bot check":
                self.bot_checks_in_a_row += 1
                if self.max_bot_checks and self.bot_checks_in_a_row >= self.max_bot_checks:
                    self.stopped.set()
            elif result.status in ("downloaded", "failed") and result.reason != "rate limited":
                self.bot_checks_in_a_row = 0  # YouTube answered this one: the session is not refused

    def skip_detail(self, cookies_given: bool) -> str:
        return (
            f"not tried: the download stopped after {self.max_bot_checks} bot checks in a row. "
            f"{_remedy('bot check', cookies_given)}; then run again to resume"
        )


# -- hard deadline ---------------------------------------------------------------------------------


class _Watchdog:
    """Kills this clip's ffmpeg if the attempt outlives `deadline_s` (yt-dlp waits on it without a limit).

    The ffmpeg is recognised as a child of this process whose command line names the clip's work folder,
    so no other download is touched. Needs /proc (Linux); elsewhere the deadline is not enforced.
    """

    def __init__(self, work_dir: Path, deadline_s: float) -> None:
        self.work_dir = str(work_dir)
        self.deadline_s = deadline_s
        self.fired = False
        self._timer = threading.Timer(deadline_s, self._kill)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def restart(self) -> None:
        """Count the deadline from now (after a wait for this attempt's turn, during which nothing runs)."""
        self._timer.cancel()
        self._timer = threading.Timer(self.deadline_s, self._kill)
        self._timer.daemon = True
        self._timer.start()

    def _kill(self) -> None:
        for pid in _own_children_naming(self.work_dir):
            try:
                os.kill(pid, signal.SIGKILL)
                self.fired = True
            except (ProcessLookupError, PermissionError):
                pass


def _own_children_naming(text: str) -> list[int]:
    me = os.getpid()
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name in (...) may contain spaces
            if parent == me and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return found


# -- failure log -----------------------------------------------------------------------------------


def _write_failures(out_dir: Path, failed: list[DownloadResult]) -> None:
    """`out_dir/failures.json`: this run's failed clips (an empty list when none), written atomically."""
    records = [{**asdict(result), "path": None} for result in failed]
    target = out_dir / FAILURES_FILE
    temporary = target.with_name(f".{FAILURES_FILE}.tmp")
    temporary.write_text(json.dumps(records, indent=1) + "\n")
    os.replace(temporary, target)
