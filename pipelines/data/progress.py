"""Progress reports for long loops: done/total, rate and time left, sent to any logging callable."""

from __future__ import annotations

import time
from collections.abc import Callable


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts finished items and logs a line at most every `every_s` seconds, and once at the end.

    `log` is any callable taking a string: `print`, `logging.Logger.info`, Dagster's `context.log.info`.
    """

    def __init__(
        self,
        total: int,
        label: str,
        log: Callable[[str], object] | None = None,
        every_s: float = 5.0,
        unit: str = "items",
    ) -> None:
        self.total = total
        self.label = label
        self.log = log or (lambda _message: None)
        self.every_s = every_s
        self.unit = unit
        self.done = 0
        self._start = time.monotonic()
        self._last_report = self._start

    def message(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = _format_seconds(left) if left == left else "?"
        return (
            f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), "
            f"{rate:.1f} {self.unit}/s, elapsed {_format_seconds(elapsed)}, left {eta}"
        )

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.done >= self.total or now - self._last_report >= self.every_s:
            self._last_report = now
            self.log(self.message())
