"""Read an MP4's duration from its `moov/mvhd` box without decoding (there is no ffprobe to ask)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO


def _boxes(stream: BinaryIO, start: int, end: int):
    """Yield (type, payload_start, payload_end) for the boxes in [start, end)."""
    position = start
    while position + 8 <= end:
        stream.seek(position)
        header = stream.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        payload = position + 8
        if size == 1:
            large = stream.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            payload += 8
        elif size == 0:
            size = end - position
        if size < payload - position:
            return
        yield kind, payload, min(position + size, end)
        position += size


def mp4_duration(path: str | Path) -> float | None:
    """Duration in seconds from the movie header, or None when the file is not a readable MP4."""
    try:
        with open(path, "rb") as stream:
            stream.seek(0, 2)
            file_end = stream.tell()
            for kind, start, end in _boxes(stream, 0, file_end):
                if kind != b"moov":
                    continue
                for inner, inner_start, _inner_end in _boxes(stream, start, end):
                    if inner != b"mvhd":
                        continue
                    stream.seek(inner_start)
                    version = stream.read(4)[0]
                    if version == 1:
                        _created, _modified, timescale, duration = struct.unpack(">QQIQ", stream.read(28))
                    else:
                        _created, _modified, timescale, duration = struct.unpack(">IIII", stream.read(16))
                    return duration / timescale if timescale else None
    except (OSError, struct.error, IndexError):
        return None
    return None
