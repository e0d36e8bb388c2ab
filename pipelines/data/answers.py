"""A person's informativity answers: which candidate images show their sound's class (paper §5.3).

Answers are keyed by the sha256 of the image's PNG bytes, not by candidate id, so they survive a
re-generation of the candidates that gives identical images. The file is human work: it is rewritten
atomically after every answer and never replaced when it cannot be read.

File format (`<data_dir>/informativity_answers/answers.json`):
    {"version": 1, "answers": {"<sha256>": {"label": "informative", "candidate_id": "c00012",
     "class_name": "dog", "labeller": "ana", "answered_at": "2026-01-02T03:04:05+00:00"}, ...}}
"""

from __future__ import annotations

import json
import threading
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
    """The answers file of one labelling session, safe to use from the web server's threads.

    The file is read once here (a corrupt file fails now, before anyone labels anything) and rewritten
    whole after every change, so a crash or Ctrl-C loses at most the answer being written.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._answers = read_answers(self.path)

    def answers(self) -> dict[str, dict[str, Any]]:
        """A copy of every answer, keyed by image sha256."""
        with self._lock:
            return {sha256: dict(answer) for sha256, answer in self._answers.items()}

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
        with self._lock:
            updated = {**self._answers, sha256: answer}
            self._write(updated)
            self._answers = updated
        return dict(answer)

    def forget(self, sha256: str) -> bool:
        """Remove the answer for this image (the page's Undo); False when there was none."""
        with self._lock:
            if sha256 not in self._answers:
                return False
            updated = {key: value for key, value in self._answers.items() if key != sha256}
            self._write(updated)
            self._answers = updated
            return True

    def _write(self, answers: dict[str, dict[str, Any]]) -> None:
        # Memory changes only after the file is safely replaced, so the two never disagree.
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
