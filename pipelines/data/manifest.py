"""Clip manifests: which YouTube (or mirror) sections to download, checked before anything is fetched.

A manifest is a CSV with a header and one clip per row:

    class_name,ytid,start_seconds,end_seconds
    dog,--PJHxphWEs,30.000,40.000

A `url` column may stand in for `ytid` (mirrors, tests); when a row has both, the url is fetched and the
clip keeps its YouTube id. AudioSet-style files are accepted too: `# ` comment lines (AudioSet puts its
header in the last one), spaces after commas, quoted fields, extra columns (ignored).
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import urllib.parse
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.data.classes import normalize_class_name

REQUIRED_COLUMNS = ("class_name", "ytid or url", "start_seconds", "end_seconds")
YTID_PATTERN = re.compile(r"[A-Za-z0-9_-]{11}")
_MAX_LISTED_PROBLEMS = 200


class ManifestError(ValueError):
    """A manifest that cannot be used; the message lists every bad row (`problems` holds them one by one)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class ManifestRow:
    """One clip to fetch.

    `row` is the 1-based line number in the file, which is the row number a spreadsheet shows: in a plain
    CSV the header is row 1 and the first clip row 2; comment lines count too.
    """

    row: int
    class_name: str  # normalised (normalize_class_name), one of the known classes
    url: str  # https://www.youtube.com/watch?v=<ytid>, or the row's `url`
    ytid: str | None
    start: float
    end: float
    clip_id: str  # stable and filesystem-safe: "<ytid>_<start ms, 8 digits>" or "url<sha1[:12]>_<start ms>"


def youtube_url(ytid: str) -> str:
    return f"https://www.youtube.com/watch?v={ytid}"


def clip_id_for(ytid: str | None, url: str, start: float) -> str:
    """The id a clip is stored under: the same video and start always give the same id."""
    start_ms = round(start * 1000)
    if ytid:
        return f"{ytid}_{start_ms:08d}"
    return f"url{hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:12]}_{start_ms:08d}"


def read_manifest(path: str | Path, classes: Collection[str]) -> list[ManifestRow]:
    """Parse and check a manifest: the rows in file order, or a ManifestError naming every bad row."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(
            f"manifest {path} does not exist (or is not a file): check the profile's manifest path"
        )
    known = sorted({normalize_class_name(name) for name in classes})
    name = path.name

    with path.open(newline="", encoding="utf-8-sig") as handle:
        lines = enumerate(handle, start=1)
        header, header_line, data = _find_header(lines)
        if header is None:
            raise ManifestError(f"manifest {path} has no header and no clip rows: it is empty")
        columns = _column_positions(header)
        present = {**columns, "ytid (or url)": 0} if "ytid" in columns or "url" in columns else columns
        missing = [
            c for c in ("class_name", "ytid (or url)", "start_seconds", "end_seconds") if c not in present
        ]
        if missing:
            raise ManifestError(
                f"{name} row {header_line}: missing column(s) {', '.join(missing)}; a manifest needs the "
                f"columns {', '.join(REQUIRED_COLUMNS)} (found: {', '.join(header) or 'none'}). "
                f"Fix the header in {path}."
            )

        rows: list[ManifestRow] = []
        problems: list[str] = []
        first_row_of: dict[str, int] = {}
        for line_no, fields in data:
            if not any(field.strip() for field in fields):
                continue  # blank lines and spreadsheet padding like ",,,"
            row, row_problems = _parse_row(line_no, fields, columns, known)
            problems += [f"{name} row {line_no}: {problem}" for problem in row_problems]
            if row is None:
                continue
            if row.clip_id in first_row_of:
                problems.append(
                    f"{name} row {line_no}: clip {row.clip_id} repeats row {first_row_of[row.clip_id]} "
                    "(same video and start); remove one of them"
                )
                continue
            first_row_of[row.clip_id] = line_no
            rows.append(row)

    if problems:
        shown = problems[:_MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        raise ManifestError(
            f"manifest {path} has {len(problems)} problem(s); fix them and run again:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more else ""),
            problems,
        )
    if not rows:
        raise ManifestError(f"manifest {path} has a header but no clip rows: add one row per clip")
    return rows


# -- parsing ---------------------------------------------------------------------------------------


def _split(line: str) -> list[str]:
    return [field.strip() for field in next(csv.reader([line], skipinitialspace=True), [])]


def _find_header(
    lines: Iterator[tuple[int, str]],
) -> tuple[list[str] | None, int, Iterator[tuple[int, list[str]]]]:
    """The header's fields and line number, and the data rows after it as (line number, fields)."""
    last_comment: tuple[int, str] | None = None
    for line_no, line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            last_comment = (line_no, stripped.lstrip("#").strip())
            continue
        fields = _split(line)
        # AudioSet lists keep their header in the last comment ("# YTID, start_seconds, end_seconds, ...").
        if last_comment and "start_seconds" not in {_column_name(f) for f in fields}:
            comment_fields = _split(last_comment[1])
            if "start_seconds" in {_column_name(f) for f in comment_fields}:
                return comment_fields, last_comment[0], _data_rows(lines, first=(line_no, fields))
        return fields, line_no, _data_rows(lines, first=None)
    return None, 0, iter(())


def _data_rows(
    lines: Iterator[tuple[int, str]], first: tuple[int, list[str]] | None
) -> Iterator[tuple[int, list[str]]]:
    if first is not None:
        yield first
    for line_no, line in lines:
        if line.lstrip().startswith("#"):
            continue
        yield line_no, _split(line)


def _column_name(field: str) -> str:
    return re.sub(r"\s+", "_", field.strip().lower())


def _column_positions(header: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, field in enumerate(header):
        positions.setdefault(_column_name(field), index)
    return positions


def _parse_row(
    line_no: int, fields: list[str], columns: dict[str, int], known: list[str]
) -> tuple[ManifestRow | None, list[str]]:
    def value(column: str) -> str:
        index = columns.get(column)
        return fields[index].strip() if index is not None and index < len(fields) else ""

    problems: list[str] = []

    raw_class = value("class_name")
    class_name = normalize_class_name(raw_class)
    if not raw_class:
        problems.append(f"class_name is empty; known classes: {', '.join(known)}")
    elif class_name not in known:
        problems.append(f"class {raw_class!r} is not a known class ({', '.join(known)})")

    ytid = value("ytid") or None
    url = value("url")
    if ytid is not None and not YTID_PATTERN.fullmatch(ytid):
        problems.append(f"ytid {ytid!r} is not 11 chars of [A-Za-z0-9_-]")
    if url:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append(f"url {url!r} is not an http(s) address")
    if ytid is None and not url:
        problems.append("neither ytid nor url is given")

    start = _seconds(value("start_seconds"), "start_seconds", problems)
    end = _seconds(value("end_seconds"), "end_seconds", problems)
    if start is not None and end is not None:
        if start < 0:
            problems.append(f"start_seconds {start:g} is negative")
        elif not start < end:
            problems.append(f"start_seconds {start:g} is not before end_seconds {end:g}")

    if problems or start is None or end is None:
        return None, problems
    fetch_url = url or youtube_url(ytid or "")
    return (
        ManifestRow(
            row=line_no,
            class_name=class_name,
            url=fetch_url,
            ytid=ytid,
            start=start,
            end=end,
            clip_id=clip_id_for(ytid, fetch_url, start),
        ),
        [],
    )


def _seconds(text: str, column: str, problems: list[str]) -> float | None:
    if not text:
        problems.append(f"{column} is empty")
        return None
    try:
        seconds = float(text)
    except ValueError:
        problems.append(f"{column} {text!r} is not a number of seconds")
        return None
    if not math.isfinite(seconds):
        problems.append(f"{column} {text!r} is not a finite number of seconds")
        return None
    return seconds
