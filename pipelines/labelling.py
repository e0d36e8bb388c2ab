"""`s2i label`: a local web page where a person labels candidate images as informative or not (paper §5.3).

The candidates (`<data_dir>/informativity_candidates/candidates.parquet` and its `images/`) are shown one
at a time, in table order, with their sound's class; each answer is written at once to the answers file
(`pipelines.data.answers`), keyed by the image's sha256, so a reload or a restart resumes at the first
image without an answer.

Routes: `GET /` the page; `GET /api/state`; `GET /images/<candidate_id>.png`; `POST /api/answer`
{candidate_id, label}; `POST /api/undo` {candidate_id}. Plain standard library: no Dagster, no torch.

Only this machine's browser may use it: a request whose `Host` is not the server's own address is
refused (403), so a web page whose name is re-pointed at 127.0.0.1 (DNS rebinding) cannot read or
answer; a body over MAX_BODY_BYTES is refused (413) without being read.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pipelines.data.answers import LABELS, AnswerBook, AnswersFileError, answers_path, check_label, counts

CANDIDATES_FOLDER = "informativity_candidates"
CANDIDATE_COLUMNS = ("candidate_id", "image", "class_name", "sha256")
MAX_BODY_BYTES = 64 * 1024  # an answer is a few dozen bytes; refuse anything big


class RequestRefused(Exception):
    """A request this server will not handle: `status` and a reason the client is shown."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class LabellingError(Exception):
    """The page cannot be served; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Candidate:
    candidate_id: str
    image: Path  # absolute, checked to lie inside the candidates folder
    class_name: str
    sha256: str


def load_candidates(data_dir: Path) -> list[Candidate]:
    """The candidates in labelling order, with every image path checked to stay inside their folder."""
    import pandas as pd

    folder = (Path(data_dir) / CANDIDATES_FOLDER).resolve()
    table_path = folder / "candidates.parquet"
    if not table_path.is_file():
        raise LabellingError(
            f"no candidates under {folder}: materialize them first: "
            "dagster asset materialize -m pipelines --select informativity_candidates"
        )
    try:
        table = pd.read_parquet(table_path)
    except Exception as error:  # pyarrow raises its own types for a truncated or foreign file
        raise LabellingError(
            f"{table_path} cannot be read ({error}); materialize informativity_candidates again"
        ) from error
    missing = [column for column in CANDIDATE_COLUMNS if column not in table.columns]
    if missing:
        raise LabellingError(
            f"{table_path}: missing columns {missing} (has {list(table.columns)}); "
            "materialize informativity_candidates again"
        )
    candidates: list[Candidate] = []
    seen: set[str] = set()
    for row in table[list(CANDIDATE_COLUMNS)].itertuples(index=False):
        candidate_id = str(row.candidate_id)
        if candidate_id in seen:
            raise LabellingError(f"{table_path}: candidate_id {candidate_id!r} appears twice")
        seen.add(candidate_id)
        image = (folder / str(row.image)).resolve()
        if not image.is_relative_to(folder):
            raise LabellingError(
                f"{table_path}: candidate {candidate_id!r} has image {row.image!r} outside {folder}"
            )
        candidates.append(Candidate(candidate_id, image, str(row.class_name), str(row.sha256)))
    return candidates


class LabellingApp:
    """What the request handlers share: the candidates, the answers, and the settings of this session."""

    def __init__(
        self, data_dir: Path, *, class_labels: dict[str, str], target_per_class: int, labeller: str
    ) -> None:
        self.data_dir = Path(data_dir)
        self.folder = (self.data_dir / CANDIDATES_FOLDER).resolve()
        self.candidates = load_candidates(self.data_dir)
        self.by_id = {candidate.candidate_id: candidate for candidate in self.candidates}
        self.book = AnswerBook(answers_path(self.data_dir))
        self.class_labels = dict(class_labels)
        self.target_per_class = target_per_class
        self.labeller = labeller

    def state(self) -> dict[str, Any]:
        """The page's view: the next image to label, how far along the person is, counts per class."""
        answers = self.book.answers()
        table = {
            "class_name": [candidate.class_name for candidate in self.candidates],
            "sha256": [candidate.sha256 for candidate in self.candidates],
        }
        per_class = {
            class_name: {**per_label, "target": self.target_per_class}
            for class_name, per_label in counts(answers, table).items()
        }
        unanswered = [candidate for candidate in self.candidates if candidate.sha256 not in answers]
        # A class with both targets met needs no more answers: its candidates are passed over.
        complete = {
            name
            for name, done in per_class.items()
            if done["informative"] >= self.target_per_class
            and done["non_informative"] >= self.target_per_class
        }
        following = next((c for c in unanswered if c.class_name not in complete), None)
        return {
            "next": None if following is None else self._describe(following),
            "answered": len(self.candidates) - len(unanswered),
            "total": len(self.candidates),
            "per_class": per_class,
            "class_labels": {name: self.class_labels.get(name, name) for name in per_class},
            "labels": list(LABELS),
            "complete_classes": sorted(complete),
        }

    def _describe(self, candidate: Candidate) -> dict[str, str]:
        return {
            "candidate_id": candidate.candidate_id,
            "class_name": candidate.class_name,
            "class_label": self.class_labels.get(candidate.class_name, candidate.class_name),
            "image_url": f"/images/{quote(candidate.candidate_id, safe='')}.png",
        }

    def candidate(self, candidate_id: object) -> Candidate:
        if not isinstance(candidate_id, str) or candidate_id not in self.by_id:
            raise ValueError(f"unknown candidate_id {candidate_id!r}")
        return self.by_id[candidate_id]

    def answer(self, candidate_id: object, label: object) -> dict[str, Any]:
        candidate = self.candidate(candidate_id)
        self.book.record(
            candidate.sha256,
            check_label(label),
            candidate_id=candidate.candidate_id,
            class_name=candidate.class_name,
            labeller=self.labeller,
        )
        return self.state()

    def undo(self, candidate_id: object) -> dict[str, Any]:
        self.book.forget(self.candidate(candidate_id).sha256)
        return self.state()

    def image_bytes(self, candidate_id: str) -> bytes | None:
        """The PNG of a known candidate, or None; the path comes from the table, never from the URL."""
        candidate = self.by_id.get(candidate_id)
        if candidate is None:
            return None
        path = candidate.image.resolve()  # again: a link could have been swapped in since loading
        if not path.is_relative_to(self.folder) or not path.is_file():
            return None
        return path.read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: _LabellingServer
    server_version = "s2i-label"

    def parse_request(self) -> bool:
        """http.server's parsing, then the Host check, before any route sees the request."""
        if not super().parse_request():
            return False
        refusal = self._foreign_host()
        if refusal is None:
            return True
        self._discard_body()
        self.close_connection = True
        self._send_json(HTTPStatus.FORBIDDEN, {"error": refusal})
        return False  # http.server then does not route the request

    def _foreign_host(self) -> str | None:
        """Why the Host header does not name this server, or None when it does."""
        host = (self.headers.get("Host") or "").strip().lower()
        if host in self.server.allowed_hosts:
            return None
        # Another name resolving to 127.0.0.1 is how a web page reaches a local server (DNS rebinding).
        return (
            f"Host {host or '(none)'!r} is not this server's address; open {server_url(self.server)} "
            f"(accepted: {', '.join(sorted(self.server.allowed_hosts))})"
        )

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        route = urlsplit(self.path).path
        if route in ("/", "/index.html"):
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif route == "/api/state":
            try:
                self._send_json(HTTPStatus.OK, self.server.app.state())
            except AnswersFileError as error:  # edited by hand while serving: say so on the page
                self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(error)})
        elif route.startswith("/images/") and route.endswith(".png"):
            png = self.server.app.image_bytes(unquote(route[len("/images/") : -len(".png")]))
            if png is None:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no candidate image {route}"})
            else:
                self._send(HTTPStatus.OK, png, "image/png")
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no page {route}"})

    def do_POST(self) -> None:  # noqa: N802
        route = urlsplit(self.path).path
        actions = {"/api/answer": self._answer, "/api/undo": self._undo}
        try:
            if route not in actions:
                self._discard_body()
                raise RequestRefused(HTTPStatus.NOT_FOUND, f"no action {route}")
            body = self._json_body()
            state = actions[route](body)
        except RequestRefused as refused:
            self._send_json(refused.status, {"error": str(refused)})
            return
        except ValueError as error:  # a bad answer, or an answers file that cannot be used
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
            return
        self._send_json(HTTPStatus.OK, state)

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.server.app.answer(body.get("candidate_id"), body.get("label"))

    def _undo(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.server.app.undo(body.get("candidate_id"))

    def _body_length(self) -> int:
        """The declared body length, refused (413) over MAX_BODY_BYTES so no more is ever read."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if length < 0:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length}")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be taken for the next request
            raise RequestRefused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {length} bytes; an answer is a small JSON object, at most {MAX_BODY_BYTES} bytes",
            )
        return length

    def _discard_body(self) -> None:
        """Read a small body the reply does not need: an unread body can reset the connection."""
        try:
            length = self._body_length()
        except RequestRefused:
            self.close_connection = True  # too big (or unreadable) to read: close after the reply
            return
        self.rfile.read(length)

    def _json_body(self) -> dict[str, Any]:
        length = self._body_length()
        if length == 0:
            raise ValueError(f"the body must be 1 to {MAX_BODY_BYTES} bytes of JSON, got none")
        raw = self.rfile.read(length)  # read even when refused: an unread body can reset the connection
        # Only JSON bodies: another web site can make a browser post a form here, but not JSON.
        if self.headers.get_content_type() != "application/json":
            raise ValueError("send the answer as JSON (Content-Type: application/json)")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"the body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise ValueError('the body must be a JSON object like {"candidate_id": "...", "label": "..."}')
        return body

    def _send_json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # answers change the state; images may be re-made
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Every answer is a request: log only the failures, so the terminal stays readable.
        if isinstance(code, int) and code >= 400:
            super().log_request(code, size)


class _LabellingServer(ThreadingHTTPServer):
    daemon_threads = True  # Ctrl-C must not wait for a browser's open keep-alive connection
    app: LabellingApp
    allowed_hosts: frozenset[str]


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The `Host` headers that name a server bound to host:port, lower case (browsers send these)."""
    names = {"127.0.0.1", "localhost", host.lower()}
    with_port = {f"{name}:{port}" for name in names}
    return frozenset(with_port | names if port == 80 else with_port)  # port 80 goes unnamed


def make_server(
    data_dir: Path,
    *,
    class_labels: dict[str, str],
    target_per_class: int,
    labeller: str,
    host: str = "127.0.0.1",
    port: int = 8765,
) -> ThreadingHTTPServer:
    """A server for the labelling page, bound but not yet serving (port 0 takes any free port)."""
    app = LabellingApp(
        data_dir, class_labels=class_labels, target_per_class=target_per_class, labeller=labeller
    )
    try:
        server = _LabellingServer((host, port), _Handler)
    except OSError as error:  # the port is taken, or the host is not this machine's
        raise LabellingError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); "
            "pass another --port (0 takes any free one)"
        ) from error
    server.app = app
    server.allowed_hosts = allowed_hosts(*server.server_address[:2])  # the real port, when 0 was asked
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve(server: ThreadingHTTPServer) -> None:
    """Serve a server from `make_server` until Ctrl-C."""
    app: LabellingApp = server.app  # type: ignore[attr-defined]
    state = app.state()
    print(
        f"s2i label: {state['answered']} of {state['total']} candidates answered; answers go to {app.book.path}"
    )
    print(f"s2i label: open {server_url(server)} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    state = app.state()
    print(f"\ns2i label: stopped; {state['answered']} of {state['total']} answered, saved in {app.book.path}")


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Run `server` in a daemon thread (tests, notebooks); stop it with `server.shutdown()`."""
    # A short poll interval: shutdown() waits up to one interval (0.5 s by default).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="s2i-label", daemon=True
    )
    thread.start()
    return thread


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>s2i label</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { margin: 0; display: flex; justify-content: center; }
  main { max-width: 720px; padding: 1rem 1.5rem; text-align: center; }
  h1 { font-size: 1.6rem; margin: 0.5rem 0 1rem; font-weight: 500; }
  #class-label { font-weight: 800; font-size: 2.2rem; display: block; margin-top: 0.25rem; }
  #image { width: 384px; height: 384px; image-rendering: pixelated; border: 1px solid #8888;
           background: #8882; display: block; margin: 0 auto; }
  .buttons { display: flex; gap: 0.75rem; justify-content: center; margin: 1rem 0; flex-wrap: wrap; }
  button { font-size: 1.1rem; padding: 0.6rem 1.1rem; border-radius: 0.5rem; border: 1px solid #8888;
           cursor: pointer; }
  button:disabled { opacity: 0.5; cursor: default; }
  #informative { background: #2e7d32; color: white; }
  #non-informative { background: #c62828; color: white; }
  kbd { font-size: 0.8em; border: 1px solid currentColor; border-radius: 0.25rem; padding: 0 0.3em;
        margin-left: 0.4em; opacity: 0.8; }
  #error { background: #c62828; color: white; padding: 0.5rem; border-radius: 0.5rem; margin: 0.5rem 0; }
  #done { font-size: 1.5rem; margin: 2rem 0; }
  #progress-bar { width: 100%; height: 0.8rem; }
  table { margin: 0.75rem auto; border-collapse: collapse; font-size: 0.9rem; }
  th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #8884; }
  td.met { color: #2e7d32; font-weight: 700; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<main>
  <div id="error" role="alert" hidden></div>
  <section id="question">
    <h1>Is this picture informative of: <span id="class-label">&hellip;</span></h1>
    <img id="image" alt="candidate image" data-candidate-id="">
    <div class="buttons">
      <button id="informative" type="button">Informative<kbd>I</kbd></button>
      <button id="non-informative" type="button">Not informative<kbd>N</kbd></button>
      <button id="skip" type="button">Skip<kbd>S</kbd></button>
      <button id="undo" type="button" disabled>Undo<kbd>U</kbd></button>
    </div>
  </section>
  <p id="done" hidden>All done: every candidate has an answer. Thank you! You can close this page.</p>
  <p id="progress">loading&hellip;</p>
  <progress id="progress-bar" max="1" value="0"></progress>
  <table>
    <thead><tr><th>class</th><th>informative</th><th>not informative</th><th>skipped</th></tr></thead>
    <tbody id="per-class"></tbody>
  </table>
  <p><small>Keys: I or 1 informative, N or 0 not informative, S or space skip, U or Backspace undo.
    The target is per label: that many informative and that many not informative images per class.</small></p>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let current = null;   // the candidate on screen
let busy = false;     // one request at a time: a held key must not answer twice
const history = [];   // candidate ids answered on this page, for Undo

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function call(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error("the labelling server cannot be reached (is `s2i label` still running?)");
  }
  let data = null;
  try { data = await response.json(); } catch (error) { /* reported below */ }
  if (!response.ok) {
    throw new Error((data && data.error) || ("server error " + response.status));
  }
  return data;
}

function cell(text, met) {
  const td = document.createElement("td");
  td.textContent = text;
  if (met) td.className = "met";
  return td;
}

function render(state) {
  current = state.next;
  const finished = current === null;
  $("question").hidden = finished;
  $("done").hidden = !finished;
  if (!finished) {
    $("class-label").textContent = current.class_label + "?";
    $("image").src = current.image_url;
    $("image").alt = "candidate " + current.candidate_id + " for " + current.class_label;
    $("image").dataset.candidateId = current.candidate_id;
  } else {
    $("image").dataset.candidateId = "";
  }
  $("progress").textContent = "answered " + state.answered + " of " + state.total;
  $("progress-bar").max = Math.max(state.total, 1);
  $("progress-bar").value = state.answered;
  const rows = [];
  for (const [name, c] of Object.entries(state.per_class)) {
    const tr = document.createElement("tr");
    const label = document.createElement("th");
    label.textContent = state.class_labels[name] || name;
    tr.append(label,
      cell(c.informative + " / " + c.target, c.informative >= c.target),
      cell(c.non_informative + " / " + c.target, c.non_informative >= c.target),
      cell(String(c.skip), false));
    rows.push(tr);
  }
  $("per-class").replaceChildren(...rows);
  $("undo").disabled = history.length === 0;
}

async function act(makeRequest) {
  if (busy) return;
  busy = true;
  try {
    render(await makeRequest());
    showError("");
  } catch (error) {
    showError(error.message);
  } finally {
    busy = false;
  }
}

function answer(label) {
  if (current === null) return;
  const id = current.candidate_id;
  act(async () => {
    const state = await call("POST", "/api/answer", { candidate_id: id, label });
    history.push(id);
    return state;
  });
}

function undo() {
  if (history.length === 0) return;
  act(async () => {
    const state = await call("POST", "/api/undo", { candidate_id: history[history.length - 1] });
    history.pop();
    return state;
  });
}

const buttons = { "informative": "informative", "non-informative": "non_informative", "skip": "skip" };
for (const [id, label] of Object.entries(buttons)) {
  $(id).addEventListener("click", (event) => { event.currentTarget.blur(); answer(label); });
}
$("undo").addEventListener("click", (event) => { event.currentTarget.blur(); undo(); });

const keys = { "i": "informative", "1": "informative", "n": "non_informative", "0": "non_informative",
               "s": "skip", " ": "skip" };
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key in keys || key === "u" || key === "backspace") event.preventDefault();
  if (event.repeat) return;
  if (key in keys) answer(keys[key]);
  else if (key === "u" || key === "backspace") undo();
});

act(() => call("GET", "/api/state"));
</script>
</body>
</html>
"""
