"""Download manifest clips as cut sections with yt-dlp: parallel, resumable, retried, verified.

Each clip is fetched as its section [start, end) through yt-dlp's Python API, which hands the cut to
ffmpeg (the one `ffmpeg_exe()` names; no ffprobe is needed). yt-dlp writes into a per-clip work folder
`out_dir/<class>/.<clip_id>.part/`; only a file that ffmpeg can read, with a video stream and about the
requested length, is moved to `out_dir/<class>/<clip_id>.mp4`. A clip whose final file exists is never
fetched again, so an interrupted run resumes where it stopped; work folders of killed runs are removed and
their clips redone. One bad clip never stops the run: it is retried when the failure may pass (5xx, time-
outs, truncated bodies) and then recorded with a reason.
"""

from __future__ import annotations

import json
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

FAIL_REASONS = ("unavailable", "http error", "timeout", "not a video", "error")

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
    path: Path | None
    status: str  # "downloaded" | "cached" | "failed"
    reason: str  # "" or one of FAIL_REASONS
    detail: str  # short human text: "HTTP 404 Not Found", "got 1.4 s of the 3.0 s asked for"
    attempts: int


class _ClipFailed(Exception):
    def __init__(self, reason: str, detail: str, retryable: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True)
class _Settings:
    retries: int
    backoff_s: float
    timeout_s: float


def download_clips(
    rows: Sequence[ManifestRow],
    out_dir: Path,
    *,
    workers: int = 4,
    retries: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 60.0,
    log: Callable[[str], object] | None = None,
) -> list[DownloadResult]:
    """Fetch every row's section into `out_dir/<class_name>/<clip_id>.mp4`; results in the order of rows.

    `retries` is how many times a clip is tried again after a failure that may pass (so at most
    1 + retries attempts), waiting backoff_s, 2*backoff_s, 4*backoff_s, ... in between. `timeout_s` bounds
    each network wait (yt-dlp's requests and ffmpeg's reads); an attempt is killed after
    3 * timeout_s in all. The failed clips are also written to `out_dir/failures.json`.
    """
    out_dir = Path(out_dir).resolve()
    if re.search(r"[%$]", str(out_dir)):
        # yt-dlp expands % templates and $VARIABLES in output paths; refusing is clearer than escaping.
        raise ValueError(
            f"download folder {out_dir} contains '%' or '$', which yt-dlp would expand: pick another"
        )
    if retries < 0 or backoff_s < 0 or timeout_s <= 0 or workers < 1:
        raise ValueError(
            f"download settings out of range: workers={workers} (>= 1), retries={retries} (>= 0), "
            f"backoff_s={backoff_s} (>= 0), timeout_s={timeout_s} (> 0)"
        )
    repeated = [clip_id for clip_id, n in Counter(row.clip_id for row in rows).items() if n > 1]
    if repeated:
        raise ValueError(
            f"clip ids appear more than once (two downloads would share a file): {repeated[:10]}"
        )

    settings = _Settings(retries=retries, backoff_s=backoff_s, timeout_s=timeout_s)
    emit = log or (lambda _message: None)
    progress = Progress(len(rows), "download", log=log, unit="clips")
    results: list[DownloadResult | None] = [None] * len(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download") as pool:
        futures = {pool.submit(_download_one, row, out_dir, settings): i for i, row in enumerate(rows)}
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if result.status == "failed":
                emit(
                    f"download {result.clip_id} ({result.url}): failed after {result.attempts} attempt(s), "
                    f"{result.reason}: {result.detail}"
                )
            progress.advance()

    done = [result for result in results if result is not None]
    counts = Counter(result.status for result in done)
    reasons = Counter(result.reason for result in done if result.status == "failed")
    emit(
        f"download: {counts['downloaded']} downloaded, {counts['cached']} already there, "
        f"{counts['failed']} failed" + (f" ({dict(reasons)})" if reasons else "")
    )
    _write_failures(out_dir, [result for result in done if result.status == "failed"])
    return done


def final_path(out_dir: Path, row: ManifestRow) -> Path:
    """Where a row's finished clip lives."""
    return Path(out_dir) / row.class_name / f"{row.clip_id}.mp4"


# -- one clip --------------------------------------------------------------------------------------


def _download_one(row: ManifestRow, out_dir: Path, settings: _Settings) -> DownloadResult:
    final = final_path(out_dir, row)

    def result(status: str, reason: str = "", detail: str = "", attempts: int = 0) -> DownloadResult:
        path = final if status != "failed" else None
        return DownloadResult(row.clip_id, row.class_name, row.url, path, status, reason, detail, attempts)

    if final.is_file() and final.stat().st_size > 0:
        return result("cached")

    work_dir = final.parent / f".{row.clip_id}.part"
    attempts = 0
    failure = _ClipFailed("error", "not tried", retryable=False)
    try:
        for attempt in range(1 + settings.retries):
            if attempt:
                time.sleep(settings.backoff_s * 2 ** (attempt - 1))
            attempts += 1
            try:
                shutil.rmtree(work_dir, ignore_errors=True)  # also what a killed run left behind
                work_dir.mkdir(parents=True)
                produced = _fetch_and_verify(row, work_dir, settings.timeout_s)
                os.replace(produced, final)
                return result("downloaded", attempts=attempts)
            except _ClipFailed as failed:
                failure = failed
            except Exception as unexpected:  # noqa: BLE001 - one clip must never stop the run
                failure = _ClipFailed("error", _short(f"{type(unexpected).__name__}: {unexpected}"), True)
            if not failure.retryable:
                break
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return result("failed", failure.reason, failure.detail, attempts)


def _fetch_and_verify(row: ManifestRow, work_dir: Path, timeout_s: float) -> Path:
    started = time.monotonic()
    watchdog = _Watchdog(work_dir, deadline_s=_WALL_CLOCK_TIMEOUTS * timeout_s)
    try:
        with watchdog:
            info = _fetch_section(row, work_dir, timeout_s)
        produced = _produced_file(work_dir)
        duration = info.get("duration")
        _verify(produced, row, float(duration) if isinstance(duration, int | float) else None)
        return produced
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


def _fetch_section(row: ManifestRow, work_dir: Path, timeout_s: float) -> dict[str, Any]:
    import yt_dlp

    with yt_dlp.YoutubeDL(ytdlp_options(row, work_dir, timeout_s)) as ydl:
        info = ydl.extract_info(row.url, download=True)
    return info or {}


def ytdlp_options(row: ManifestRow, work_dir: Path, timeout_s: float) -> dict[str, Any]:
    """yt-dlp parameters that fetch `row`'s section, cut by ffmpeg, as `work_dir/clip.<ext>`."""
    import yt_dlp
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    ffmpeg = ffmpeg_exe()
    # yt-dlp decides whether ffmpeg can cut sections before it reads `ffmpeg_location` (yt-dlp issues
    # #2191, #4273); its command line sets this context variable, so the API has to as well. Context
    # variables belong to the thread that sets them, so this touches only the calling worker.
    if hasattr(FFmpegPostProcessor, "_ffmpeg_location"):
        FFmpegPostProcessor._ffmpeg_location.set(ffmpeg)
    return {
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


def _classify(error: BaseException) -> _ClipFailed:
    """Sort a yt-dlp error into a FAIL_REASONS reason, a short detail, and whether to try again."""
    from yt_dlp.networking.exceptions import HTTPError, TransportError

    for cause in _causes(error):
        if isinstance(cause, HTTPError):
            return _http_failure(cause.status, str(cause.reason or ""))
    message = str(error)
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
    # Server trouble and rate limits pass; other refusals (403 and the rest of 4xx) do not.
    return _ClipFailed("http error", detail, retryable=status >= 500 or status in (408, 429))


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
