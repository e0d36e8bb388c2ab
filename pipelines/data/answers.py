"""A person's informativity answers: which candidate images show their sound's class (paper §5.3).

Answers are keyed by the sha256 of the image's PNG bytes, not by candidate id, so they survive a
re-generation of the candidates that gives identical images. The file is human work: it is rewritten
atomically after every answer and never replaced when it cannot be read.

Several writers may share one file (two `s2i label` processes, two browser tabs): every change is a
read-modify-write of the file as it is now, under an exclusive `fcntl.flock` on `answers.json.lock`
beside it, so no writer overwrites another's answer. Readers need no lock: the file is only ever
replaced whole (rename), so a reader sees one complete version or the next.

File format (`<data_dir>/informativity_answers/answers.json`):
    {"version": 1, "answers": {"<sha256>": {"label": "informative", "candidate_id": "c00012",
     "class_name": "dog", "labeller": "ana", "answered_at": "2026-01-02T03:04:05+00:00"}, ...}}
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.data.files import write_json_atomic

LABELS = ("informative", "non_informative", "skip")
ANSWERS_FOLDER = "informativity_answers"
FORMAT_VERSION = 1
_FIELDS = ("label", "candidate_id", "class_name", "labeller", "answered_at")


class AnswersFileError(ValueError):
    """The answers file exists but cannot be used; the message names it and says what to do."""


def answers_path(data_dir: Path) -> Path:
    """Where the answers of the candidates under `data_dir` are kept."""
    return Path(data_dir) / ANSWERS_FOLDER / "answers.json"


def check_label(label: object) -> str:
    """`label` if it is one of LABELS, else a ValueError naming the allowed values."""
    if label not in LABELS:
        raise ValueError(f"label {label!r} is not one of {', '.join(LABELS)}")
    return label  # type: ignore[return-value]


def read_answers(path: Path) -> dict[str, dict[str, Any]]:
    """The answers stored in `path` ({} when the file does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return {}
    advice = (
        "it holds a person's labelling work, so it is never overwritten: repair it by hand "
        "(or restore a copy), or move it away to start labelling again"
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AnswersFileError(f"answers file {path} cannot be read ({error}); {advice}") from error
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        found = data.get("version") if isinstance(data, dict) else type(data).__name__
        raise AnswersFileError(
            f"answers file {path}: expected an object with version {FORMAT_VERSION}, found {found!r}; {advice}"
        )
    answers = data.get("answers")
    if not isinstance(answers, dict):
        raise AnswersFileError(f"answers file {path}: `answers` must be an object keyed by sha256; {advice}")
    for sha256, answer in answers.items():
        if not isinstance(answer, dict) or answer.get("label") not in LABELS:
            raise AnswersFileError(
                f"answers file {path}: the answer for image {sha256} is not an object with a label "
                f"among {', '.join(LABELS)} (found {answer!r}); {advice}"
            )
    return answers


class AnswerBook:
    """The answers file of one labelling session, safe for several writers in several processes.

    The file is read here (a corrupt file fails now, before anyone labels anything). Every change
    re-reads it under the lock and rewrites it whole, so another writer's answers are kept and a crash
    or Ctrl-C loses at most the answer being written. `answers()` reads the file too: what another
    writer stored shows up at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        # flock alone would exclude this process's threads too (each opens the lock file anew); they
        # wait here instead, so one process holds at most one descriptor on the lock file.
        self._thread_lock = threading.Lock()
        read_answers(self.path)

    def answers(self) -> dict[str, dict[str, Any]]:
        """Every answer now in the file, keyed by image sha256."""
        return read_answers(self.path)

    def record(self, sha256: str, label: str, *, candidate_id: str, class_name: str, labeller: str) -> dict:
        """Store `label` for the image with this sha256, replacing an earlier answer; returns the answer."""
        check_label(label)
        answer = {
            "label": label,
            "candidate_id": candidate_id,
            "class_name": class_name,
            "labeller": labeller,
            "answered_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self._exclusive():
            self._write({**read_answers(self.path), sha256: answer})
        return dict(answer)

    def forget(self, sha256: str) -> bool:
        """Remove the answer for this image (the page's Undo); False when there was none."""
        with self._exclusive():
            answers = read_answers(self.path)
            if answers.pop(sha256, None) is None:
                return False
            self._write(answers)
            return True

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the book's lock: no other writer, in any process, reads or rewrites the file meanwhile."""
        with self._thread_lock:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            # The lock file is never replaced or removed, so every writer locks the same inode (the
            # answers file itself gets a new inode with every rename and cannot carry the lock).
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                # Blocking, not polling: the kernel wakes a waiter when the lock is let go, where a poller
                # could miss every short gap between one busy writer's answers. It is held for one read
                # and one rewrite, and the kernel lets it go when its holder dies.
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                yield
            finally:
                os.close(descriptor)

    def _write(self, answers: dict[str, dict[str, Any]]) -> None:
        write_json_atomic(self.path, {"version": FORMAT_VERSION, "answers": answers})


def counts(answers: dict[str, dict[str, Any]], candidates_df: Any) -> dict[str, dict[str, int]]:
    """Per class of the candidates table: how many of its images are answered with each label.

    Classes and images come from the table (an answer of an image no longer among the candidates does
    not count); an image that appears twice in the table counts once.
    """
    result: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    for class_name, sha256 in zip(candidates_df["class_name"], candidates_df["sha256"], strict=True):
        per_label = result.setdefault(str(class_name), dict.fromkeys(LABELS, 0))
        answer = answers.get(sha256)
        if answer is not None and sha256 not in seen:
            seen.add(sha256)
            per_label[answer["label"]] += 1
    return result
