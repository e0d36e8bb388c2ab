"""A local HTTP server for download tests: serves a folder with Range support, plus failure routes.

`python -m http.server` ignores Range requests, and ffmpeg then cannot cut an mp4 whose index (moov)
sits at the end of the file; video hosts honour Range, so this server does too (206 + Content-Range).

Routes (NAME is a file in the served folder):
  /NAME                      the file, Range-capable
  /status/CODE/NAME          always answers CODE (e.g. 404, 403, 500)
  /flaky/N/NAME              answers 503 to the first N requests for this path, then serves the file
  /truncated/NAME            promises the full length but the connection always dies halfway through the file
  /html/NAME                 an HTML page with Content-Type text/html (NAME can end in .mp4)
  /slow/NAME                 waits `slow_delay_s` before answering at all, then serves the file
  /stall/NAME                sends the headers and a quarter of the file, then goes silent for `slow_delay_s`
  /player/STATE/NAME/ID      a YouTube-shaped player response (JSON) for video ID:
                               cookie  playable, streaming /NAME, when the request carries `required_cookie`;
                                       otherwise YouTube's bot check ("Sign in to confirm you’re not a bot")
                               later   YouTube's rate limit ("This content isn't available, try again later.")
                               age     YouTube's age gate ("Sign in to confirm your age")
                               CODE    answers that HTTP status (e.g. 429)

Use as a context manager: `with MediaServer(folder) as server: server.url("clip.mp4")`.
Every request is recorded in `server.requests` as (method, path, Range header or ""), and in
`server.arrivals` as (time.monotonic() on arrival, path, whether it carried `required_cookie`).
"""

from __future__ import annotations

import email.utils
import json
import mimetypes
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class MediaServer:
    """Serves `root` on 127.0.0.1 at a free port, in a background thread."""

    def __init__(
        self, root: str | Path, *, slow_delay_s: float = 5.0, required_cookie: tuple[str, str] | None = None
    ) -> None:
        self.root = Path(root).resolve()
        self.slow_delay_s = slow_delay_s
        self.required_cookie = required_cookie  # (name, value) that /player/cookie/... asks for
        self.requests: list[tuple[str, str, str]] = []
        self.arrivals: list[tuple[float, str, bool]] = []
        self._flaky_seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> MediaServer:
        handler = type("BoundHandler", (_Handler,), {"media_server": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="media-server", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes slow handlers so shutdown does not wait on them
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MediaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers for tests -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def count(self, path_prefix: str = "/") -> int:
        """How many requests had a path starting with `path_prefix`."""
        with self._lock:
            return sum(1 for _method, path, _range in self.requests if path.startswith(path_prefix))

    def _record(self, method: str, path: str, byte_range: str, has_cookie: bool = False) -> None:
        with self._lock:
            self.requests.append((method, path, byte_range))
            self.arrivals.append((time.monotonic(), path, has_cookie))

    def _flaky_should_fail(self, path: str, failures: int) -> bool:
        with self._lock:
            seen = self._flaky_seen.get(path, 0)
            self._flaky_seen[path] = seen + 1
            return seen < failures


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients (ffmpeg, yt-dlp) drop keep-alive connections whenever they have what they need.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    media_server: MediaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    # -- routing ---------------------------------------------------------------------------------------
    def _dispatch(self, send_body: bool) -> None:
        server = self.media_server
        path = self.path.split("?", 1)[0]
        has_cookie = self._has_required_cookie()
        server._record(self.command, path, self.headers.get("Range", ""), has_cookie)
        parts = path.lstrip("/").split("/")
        try:
            if parts[0] == "status" and len(parts) >= 2 and parts[1].isdigit():
                self._send_error_status(int(parts[1]), send_body)
            elif parts[0] == "player" and len(parts) == 4:
                self._send_player(parts[1], parts[2], parts[3], has_cookie, send_body)
            elif parts[0] == "flaky" and len(parts) >= 3 and parts[1].isdigit():
                if server._flaky_should_fail(path, int(parts[1])):
                    self._send_error_status(503, send_body)
                else:
                    self._send_file("/".join(parts[2:]), send_body)
            elif parts[0] == "truncated" and len(parts) >= 2:
                self._send_file("/".join(parts[1:]), send_body, cut_at_fraction=0.5)
            elif parts[0] == "stall" and len(parts) >= 2:
                self._send_file("/".join(parts[1:]), send_body, cut_at_fraction=0.25, stall=True)
            elif parts[0] == "html" and len(parts) >= 2:
                self._send_html(send_body)
            elif parts[0] == "slow" and len(parts) >= 2:
                if server._closing.wait(server.slow_delay_s):
                    return
                self._send_file("/".join(parts[1:]), send_body)
            else:
                self._send_file("/".join(parts), send_body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (ffmpeg does after reading what it needs); nothing to do

    def _has_required_cookie(self) -> bool:
        wanted = self.media_server.required_cookie
        if wanted is None:
            return False
        cookies = SimpleCookie()
        try:
            for header in self.headers.get_all("Cookie") or []:
                cookies.load(header)
        except CookieError:
            return False
        name, value = wanted
        return name in cookies and cookies[name].value == value

    # -- responses -------------------------------------------------------------------------------------
    def _send_player(self, state: str, name: str, video_id: str, has_cookie: bool, send_body: bool) -> None:
        """What YouTube's player endpoint answers, in its shape (only the fields yt-dlp reads here)."""
        if state.isdigit():
            self._send_error_status(int(state), send_body)
            return
        if state == "cookie" and has_cookie:
            media = f"http://{self.headers.get('Host', '127.0.0.1')}/{name}"
            response: dict = {
                "playabilityStatus": {"status": "OK"},
                "videoDetails": {"videoId": video_id, "title": video_id},
                "streamingData": {"formats": [{"itag": 18, "url": media, "mimeType": "video/mp4"}]},
            }
        elif state == "cookie":
            response = _refusal(
                "LOGIN_REQUIRED", "Sign in to confirm you’re not a bot", "This helps protect our community. "
            )
        elif state == "later":
            response = _refusal("UNPLAYABLE", "This content isn't available, try again later.", "")
        elif state == "age":
            response = _refusal(
                "LOGIN_REQUIRED",
                "Sign in to confirm your age",
                "This video may be inappropriate for some users.",
            )
        else:
            self._send_error_status(404, send_body)
            return
        body = json.dumps(response).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_error_status(self, code: int, send_body: bool) -> None:
        body = f"<html><body><h1>{code} {HTTPStatus(code).phrase}</h1></body></html>".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_html(self, send_body: bool) -> None:
        body = (
            b"<!DOCTYPE html><html><head><title>Video unavailable</title></head>"
            b"<body><p>This is a web page, not a video.</p></body></html>"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_file(
        self, name: str, send_body: bool, cut_at_fraction: float | None = None, stall: bool = False
    ) -> None:
        file_path = (self.media_server.root / name).resolve()
        if not file_path.is_file() or self.media_server.root not in file_path.parents:
            self._send_error_status(404, send_body)
            return
        size = file_path.stat().st_size
        first, last = 0, size - 1
        status = 200
        requested = self.headers.get("Range")
        if requested:
            match = _RANGE.match(requested.strip())
            if not match or (not match.group(1) and not match.group(2)):
                self._send_unsatisfiable(size)
                return
            if match.group(1):
                first = int(match.group(1))
                last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:  # "bytes=-N": the last N bytes
                first = max(size - int(match.group(2)), 0)
            if first >= size or first > last:
                self._send_unsatisfiable(size)
                return
            status = 206
        length = last - first + 1

        self.send_response(status)
        self.send_header("Content-Type", mimetypes.guess_type(name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", email.utils.formatdate(file_path.stat().st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        if cut_at_fraction is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if not send_body:
            return

        # A truncated body: the connection always dies at the same byte of the file, whatever was asked.
        stop = last + 1 if cut_at_fraction is None else min(last + 1, int(size * cut_at_fraction))
        with open(file_path, "rb") as source:
            source.seek(first)
            left = max(stop - first, 0)
            while left > 0:
                chunk = source.read(min(left, 64 * 1024))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        if cut_at_fraction is not None:
            self.wfile.flush()
            if stall:  # a host that stops sending but keeps the connection open
                self.media_server._closing.wait(self.media_server.slow_delay_s)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client already hung up

    def _send_unsatisfiable(self, size: int) -> None:
        self.send_response(416)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Length", "0")
        self.end_headers()


def _refusal(status: str, reason: str, subreason: str) -> dict:
    """A player response refusing playback, as YouTube words and nests it."""
    runs = (
        [{"text": subreason}, {"text": "Learn more"}] if subreason.endswith(". ") else [{"text": subreason}]
    )
    screen = {"reason": {"runs": [{"text": reason}]}}
    if subreason:
        screen["subreason"] = {"runs": runs}
    return {
        "playabilityStatus": {
            "status": status,
            "reason": reason,
            "errorScreen": {"playerErrorMessageRenderer": screen},
        }
    }
