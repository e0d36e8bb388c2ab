"""`s2i label`: the answers store, the HTTP API, and the page driven in a real headless Chromium."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.data import files
from pipelines.data.answers import AnswerBook, AnswersFileError, answers_path, counts
from pipelines.labelling import (
    CANDIDATES_FOLDER,
    MAX_BODY_BYTES,
    LabellingError,
    make_server,
    serve_in_thread,
    server_url,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLASS_LABELS = {"dog": "Dog", "fireworks": "Fireworks"}


def make_candidates(data_dir: Path, count: int = 8) -> pd.DataFrame:
    """`count` tiny distinct PNGs and their candidates table, classes alternating dog / fireworks."""
    folder = data_dir / CANDIDATES_FOLDER
    (folder / "images").mkdir(parents=True)
    rows = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (index * 30 % 256, 255 - index * 20, 77)).save(buffer, format="PNG")
        png = buffer.getvalue()
        image = f"images/c{index:05d}.png"
        (folder / image).write_bytes(png)
        rows.append(
            {
                "candidate_id": f"c{index:05d}",
                "image": image,
                "class_name": ("dog", "fireworks")[index % 2],
                "clip_id": f"clip{index}",
                "segment": index % 3,
                "dim": 512,
                "epoch": 10,
                "checkpoint": "generator_epoch0010.pt",
                "sample": index,
                "sha256": hashlib.sha256(png).hexdigest(),
            }
        )
    table = pd.DataFrame(rows)
    table.to_parquet(folder / "candidates.parquet", index=False)
    (folder / "manifest.json").write_text("{}")
    return table


@pytest.fixture
def candidates(tmp_path: Path) -> pd.DataFrame:
    return make_candidates(tmp_path)


@pytest.fixture
def server_url_(tmp_path: Path, candidates: pd.DataFrame) -> Iterator[str]:
    """A labelling server on a free port in a background thread, stopped after the test."""
    server = make_server(tmp_path, class_labels=CLASS_LABELS, target_per_class=2, labeller="tester", port=0)
    thread = serve_in_thread(server)
    try:
        yield server_url(server).rstrip("/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def request(url: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, bytes]:
    """(status, body) of a GET, or of a POST when `body` is given; HTTP errors come back, not raised."""
    headers = {"Content-Type": content_type} if body is not None else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=body, headers=headers), timeout=5
        ) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_json(url: str, data: object) -> tuple[int, dict]:
    status, body = request(url, json.dumps(data).encode())
    return status, json.loads(body)


def stored(data_dir: Path) -> dict[str, dict]:
    data = json.loads(answers_path(data_dir).read_text())
    assert data["version"] == 1
    return data["answers"]


# The answers store.


def test_record_writes_the_whole_file_and_a_later_answer_replaces(tmp_path: Path) -> None:
    path = answers_path(tmp_path)
    assert path == tmp_path / "informativity_answers" / "answers.json"
    book = AnswerBook(path)
    assert book.answers() == {}
    book.record("aa", "informative", candidate_id="c1", class_name="dog", labeller="ana")
    book.record("bb", "skip", candidate_id="c2", class_name="dog", labeller="ana")
    book.record("aa", "non_informative", candidate_id="c1", class_name="dog", labeller="bo")

    on_disk = stored(tmp_path)
    assert {sha: answer["label"] for sha, answer in on_disk.items()} == {
        "aa": "non_informative",
        "bb": "skip",
    }
    assert on_disk["aa"]["labeller"] == "bo" and on_disk["aa"]["candidate_id"] == "c1"
    assert on_disk["aa"]["answered_at"].endswith("+00:00")  # UTC
    assert AnswerBook(path).answers() == on_disk == book.answers()
    assert book.forget("bb") and not book.forget("bb")
    assert set(stored(tmp_path)) == {"aa"}


def test_a_failed_write_keeps_the_previous_file_and_memory(tmp_path: Path, monkeypatch) -> None:
    book = AnswerBook(answers_path(tmp_path))
    book.record("aa", "informative", candidate_id="c1", class_name="dog", labeller="ana")
    before = answers_path(tmp_path).read_bytes()

    def no_rename(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", no_rename)
    with pytest.raises(OSError, match="No space left"):
        book.record("bb", "skip", candidate_id="c2", class_name="dog", labeller="ana")
    assert answers_path(tmp_path).read_bytes() == before
    assert set(book.answers()) == {"aa"}
    # No temp file left; the lock file stays (writers must all lock the same file, so none removes it).
    assert sorted(p.name for p in answers_path(tmp_path).parent.iterdir()) == [
        "answers.json",
        "answers.json.lock",
    ]


def test_two_books_on_one_file_keep_each_others_answers(tmp_path: Path) -> None:
    # Two `s2i label` processes on one data folder: each book opened before the other wrote anything.
    first, second = AnswerBook(answers_path(tmp_path)), AnswerBook(answers_path(tmp_path))
    first.record("aa", "informative", candidate_id="c1", class_name="dog", labeller="ana")
    second.record("bb", "skip", candidate_id="c2", class_name="dog", labeller="bo")
    assert set(first.answers()) == set(second.answers()) == set(stored(tmp_path)) == {"aa", "bb"}
    assert first.forget("bb")  # the other book's answer, written after this book was opened
    second.record("cc", "non_informative", candidate_id="c3", class_name="dog", labeller="bo")
    assert set(stored(tmp_path)) == {"aa", "cc"}


# One writer process: records COUNT answers keyed "<writer>-<n>" and takes every fifth back (Undo), after
# saying "ready" and waiting for "go" on stdin, so that every writer starts at the same moment.
WRITER = """
import sys
from pathlib import Path

from pipelines.data.answers import AnswerBook

path, writer, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
book = AnswerBook(path)
print("ready", flush=True)
sys.stdin.readline()
for n in range(count):
    key = f"{writer}-{n:04d}"
    book.record(key, "informative", candidate_id=f"c{n}", class_name="dog", labeller=writer)
    if n % 5 == 0:
        assert book.forget(key), key
print("done", flush=True)
"""


def test_writers_in_several_processes_lose_no_answer(tmp_path: Path) -> None:
    path, writers, count = answers_path(tmp_path), ["ana", "bo", "cy"], 200
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), writer, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for writer in writers
    ]
    try:
        for process in processes:  # all imported and holding an open book before any writes
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()
    assert [process.returncode for process in processes] == [0] * len(writers), outputs
    expected = {f"{writer}-{n:04d}" for writer in writers for n in range(count) if n % 5 != 0}
    answers = stored(tmp_path)
    assert len(answers) == len(expected) == 480 and set(answers) == expected
    assert all(answers[key]["labeller"] == key.split("-")[0] for key in answers)


def test_a_bad_label_names_the_allowed_ones(tmp_path: Path) -> None:
    book = AnswerBook(answers_path(tmp_path))
    with pytest.raises(ValueError, match="'maybe' is not one of informative, non_informative, skip"):
        book.record("aa", "maybe", candidate_id="c1", class_name="dog", labeller="ana")
    assert not answers_path(tmp_path).exists()


@pytest.mark.parametrize(
    "content",
    [
        '{"version": 1, "answers": {"aa": {"label": "inform',
        "[]",
        '{"version": 1, "answers": {"aa": {"label": "x"}}}',
    ],
    ids=["truncated", "not-an-object", "bad-label"],
)
def test_a_corrupt_file_is_an_error_and_is_never_overwritten(tmp_path: Path, content: str) -> None:
    path = answers_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(AnswersFileError, match="never overwritten") as error:
        AnswerBook(path)
    assert str(path) in str(error.value)
    assert path.read_text() == content


def test_counts_per_class_from_the_candidates_table(candidates: pd.DataFrame) -> None:
    sha = list(candidates["sha256"])
    answers = {
        sha[0]: {"label": "informative"},
        sha[1]: {"label": "non_informative"},
        sha[2]: {"label": "informative"},
        sha[3]: {"label": "skip"},
        "not-a-candidate": {"label": "informative"},
    }
    assert counts(answers, candidates) == {
        "dog": {"informative": 2, "non_informative": 0, "skip": 0},
        "fireworks": {"informative": 0, "non_informative": 1, "skip": 1},
    }


# The HTTP API.


def test_state_answer_and_image(server_url_: str, tmp_path: Path, candidates: pd.DataFrame) -> None:
    status, body = request(server_url_ + "/api/state")
    state = json.loads(body)
    assert status == 200 and state["answered"] == 0 and state["total"] == 8
    assert state["next"] == {
        "candidate_id": "c00000",
        "class_name": "dog",
        "class_label": "Dog",
        "image_url": "/images/c00000.png",
    }
    assert state["per_class"]["fireworks"] == {"informative": 0, "non_informative": 0, "skip": 0, "target": 2}

    status, png = request(server_url_ + state["next"]["image_url"])
    assert status == 200 and hashlib.sha256(png).hexdigest() == candidates["sha256"][0]

    status, state = post_json(server_url_ + "/api/answer", {"candidate_id": "c00000", "label": "informative"})
    assert status == 200 and state["answered"] == 1 and state["next"]["candidate_id"] == "c00001"
    assert state["per_class"]["dog"]["informative"] == 1
    assert stored(tmp_path)[candidates["sha256"][0]]["labeller"] == "tester"

    status, page = request(server_url_ + "/")
    assert status == 200 and b'id="image"' in page and b"http" not in page.split(b"<script>")[0]


def test_a_class_with_both_targets_met_is_passed_over(tmp_path: Path, candidates: pd.DataFrame) -> None:
    server = make_server(tmp_path, class_labels=CLASS_LABELS, target_per_class=1, labeller="t", port=0)
    thread = serve_in_thread(server)
    url = server_url(server).rstrip("/")
    try:  # dogs are c00000, c00002, c00004, c00006; one of each label completes them at target 1
        post_json(url + "/api/answer", {"candidate_id": "c00000", "label": "informative"})
        _, state = post_json(url + "/api/answer", {"candidate_id": "c00001", "label": "skip"})
        assert state["next"]["candidate_id"] == "c00002" and state["complete_classes"] == []
        _, state = post_json(url + "/api/answer", {"candidate_id": "c00002", "label": "non_informative"})
        assert state["complete_classes"] == ["dog"] and state["next"]["candidate_id"] == "c00003"
        _, state = post_json(url + "/api/answer", {"candidate_id": "c00003", "label": "skip"})
        assert state["next"]["candidate_id"] == "c00005"  # dog c00004 is passed over
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            b'{"candidate_id": "nope", "label": "informative"}',
            "application/json",
            "unknown candidate_id 'nope'",
        ),
        (b'{"candidate_id": "c00001", "label": "maybe"}', "application/json", "not one of informative"),
        (b'{"candidate_id": "c00001", "label": ', "application/json", "not valid JSON"),
        (b'["c00001", "informative"]', "application/json", "must be a JSON object"),
        (b"candidate_id=c00001&label=skip", "application/x-www-form-urlencoded", "as JSON"),
    ],
    ids=["unknown-id", "bad-label", "bad-json", "not-an-object", "a-form"],
)
def test_bad_answers_are_400_with_a_message(
    server_url_: str, tmp_path: Path, body: bytes, content_type: str, message: str
) -> None:
    status, reply = request(server_url_ + "/api/answer", body, content_type)
    assert status == 400 and message in json.loads(reply)["error"]
    assert not answers_path(tmp_path).exists()


def raw_request(
    url: str,
    method: str = "GET",
    path: str = "/api/state",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, dict]:
    """(status, JSON reply) of a request with exactly these headers: no Host is added unless given."""
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders(body or None)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def own_port(url: str) -> int:
    return urllib.parse.urlsplit(url).port


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}"])
def test_the_own_address_is_served(server_url_: str, host: str) -> None:
    status, state = raw_request(server_url_, headers={"Host": host.format(port=own_port(server_url_))})
    assert status == 200 and state["total"] == 8


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:{port}",
        "attacker.example",
        "127.0.0.1:{other}",
        "localhost",
        "127.0.0.1.nip.io:{port}",
    ],
)
def test_another_host_name_is_403_dns_rebinding(server_url_: str, host: str) -> None:
    port = own_port(server_url_)
    host = host.format(port=port, other=port + 1)
    status, reply = raw_request(server_url_, headers={"Host": host})
    assert status == 403 and f"Host {host.lower()!r} is not this server's address" in reply["error"]
    assert f"open http://127.0.0.1:{port}/" in reply["error"]


def test_a_request_without_host_is_403(server_url_: str) -> None:
    status, reply = raw_request(server_url_)
    assert status == 403 and "Host '(none)'" in reply["error"]


def test_an_answer_from_another_host_is_not_stored(server_url_: str, tmp_path: Path) -> None:
    body = b'{"candidate_id": "c00000", "label": "informative"}'
    headers = {
        "Host": "attacker.example",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    status, reply = raw_request(server_url_, "POST", "/api/answer", headers, body)
    assert status == 403 and "not this server's address" in reply["error"]
    assert not answers_path(tmp_path).exists()


def test_a_body_up_to_the_limit_is_read_and_one_byte_more_is_413(server_url_: str, tmp_path: Path) -> None:
    start, end = b'{"candidate_id": "c00001", "label": "skip", "padding": "', b'"}'
    at_limit = start + b"x" * (MAX_BODY_BYTES - len(start) - len(end)) + end
    status, reply = request(server_url_ + "/api/answer", at_limit)
    assert len(at_limit) == MAX_BODY_BYTES and status == 200 and json.loads(reply)["answered"] == 1

    over = start + b"x" * (MAX_BODY_BYTES - len(start) - len(end) + 1) + end
    status, reply = request(server_url_ + "/api/answer", over)
    assert status == 413 and f"at most {MAX_BODY_BYTES} bytes" in json.loads(reply)["error"]
    assert len(stored(tmp_path)) == 1


def test_a_huge_declared_body_is_413_without_reading_it(server_url_: str, tmp_path: Path) -> None:
    # No body byte is sent: a server that tried to read the 10 GB would wait out the client's timeout.
    host = f"127.0.0.1:{own_port(server_url_)}"
    headers = {"Host": host, "Content-Type": "application/json", "Content-Length": str(10**10)}
    status, reply = raw_request(server_url_, "POST", "/api/answer", headers)
    assert status == 413 and f"the body is {10**10} bytes" in reply["error"]
    assert not answers_path(tmp_path).exists()


@pytest.mark.parametrize(
    "path",
    [
        "/images/..%2F..%2Fetc%2Fpasswd.png",
        "/images/../../etc/passwd.png",
        "/images/..%2Fcandidates.parquet%00.png",
        "/images/images%2Fc00000.png",
        "/images/c99999.png",
        "/candidates.parquet",
    ],
)
def test_images_come_only_from_the_table(server_url_: str, path: str) -> None:
    status, reply = request(server_url_ + path)
    assert status == 404 and b"root:" not in reply


def test_an_image_path_outside_the_folder_is_refused(tmp_path: Path, candidates: pd.DataFrame) -> None:
    candidates.loc[3, "image"] = "../../outside.png"
    candidates.to_parquet(tmp_path / CANDIDATES_FOLDER / "candidates.parquet", index=False)
    with pytest.raises(LabellingError, match="c00003.*outside"):
        make_server(tmp_path, class_labels=CLASS_LABELS, target_per_class=2, labeller="t", port=0)


def test_missing_candidates_say_what_to_materialize(tmp_path: Path, capsys) -> None:
    with pytest.raises(LabellingError, match="--select informativity_candidates"):
        make_server(tmp_path, class_labels=CLASS_LABELS, target_per_class=2, labeller="t", port=0)
    assert main(["label", "--data-dir", str(tmp_path), "--profile", "demo", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("s2i label: no candidates under") and "Traceback" not in error


# The page in a real browser.


def test_the_page_in_chromium_labels_and_resumes(
    server_url_: str, tmp_path: Path, candidates: pd.DataFrame
) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("S2I_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"S2I_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(
            f"{CHROMIUM} is missing (Debian package chromium); S2I_REQUIRE_CHROMIUM=1 makes this fail"
        )
    from playwright.sync_api import expect, sync_playwright

    ids = list(candidates["candidate_id"])
    image = "#image"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server_url_ + "/")

            # Five answers, by buttons and by keys; each waits for the page to show the candidate first.
            actions = [
                (page.click, "#informative", "informative"),
                (page.keyboard.press, "n", "non_informative"),
                (page.keyboard.press, "Space", "skip"),
                (page.click, "#non-informative", "non_informative"),
                (page.keyboard.press, "1", "informative"),
            ]
            for candidate_id, (act, target, _) in zip(ids, actions, strict=False):
                expect(page.locator(image)).to_have_attribute("data-candidate-id", candidate_id)
                act(target)
            expect(page.locator(image)).to_have_attribute("data-candidate-id", ids[5])
            expect(page.locator("#class-label")).to_have_text("Fireworks?")
            expect(page.locator("#progress")).to_have_text("answered 5 of 8")

            sha = dict(zip(candidates["candidate_id"], candidates["sha256"], strict=True))
            answers = stored(tmp_path)
            assert {sha[cid]: label for cid, (_, _, label) in zip(ids, actions, strict=False)} == {
                key: answer["label"] for key, answer in answers.items()
            }

            page.reload()
            expect(page.locator(image)).to_have_attribute("data-candidate-id", ids[5])
            expect(page.locator("#progress")).to_contain_text("5 of 8")
            assert page.locator(image).evaluate("img => img.complete && img.naturalWidth") == 8

            # Undo takes back the last answer of this page.
            page.keyboard.press("s")
            expect(page.locator(image)).to_have_attribute("data-candidate-id", ids[6])
            page.click("#undo")
            expect(page.locator(image)).to_have_attribute("data-candidate-id", ids[5])
            assert len(stored(tmp_path)) == 5

            # A server error is shown on the page, and the candidate stays.
            page.route("**/api/answer", lambda route: route.fulfill(status=400, json={"error": "disk full"}))
            page.keyboard.press("i")
            expect(page.locator("#error")).to_have_text("disk full")
            expect(page.locator(image)).to_have_attribute("data-candidate-id", ids[5])
            page.unroute("**/api/answer")

            for candidate_id in ids[5:]:
                expect(page.locator(image)).to_have_attribute("data-candidate-id", candidate_id)
                page.keyboard.press("0")
            expect(page.locator("#done")).to_be_visible()
            expect(page.locator("#error")).to_be_hidden()
            expect(page.locator("#progress")).to_have_text("answered 8 of 8")
            assert len(stored(tmp_path)) == 8
        finally:
            browser.close()
