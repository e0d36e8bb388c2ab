"""A benchmark's targets: record each check, print them as a table at the end, exit non-zero on a miss.

    checks = Checks("bench_loading")
    checks.at_least("s2i / best WebDataset pipeline", ratio, 3.0, unit="x")
    sys.exit(checks.finish())

If the environment names a file in S2I_BENCH_RESULTS, finish() also appends the checks to it as JSON lines,
one object per check; `make bench` collects every benchmark's there and benchmarks/summary.py prints them
together. Standard library only: the benchmarks import this before anything heavy.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_ENV = "S2I_BENCH_RESULTS"


@dataclass(frozen=True)
class Check:
    benchmark: str
    name: str
    measured: str
    target: str
    passed: bool


def _number(value: float, digits: int, unit: str) -> str:
    return f"{value:,.{digits}f}{'' if unit in ('', 'x') else ' '}{unit}"


class Checks:
    """The checks of one benchmark run, in the order they were made."""

    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.checks: list[Check] = []

    def record(self, name: str, measured: str, target: str, passed: bool) -> bool:
        self.checks.append(Check(self.benchmark, name, measured, target, bool(passed)))
        return bool(passed)

    def at_most(self, name: str, value: float, limit: float, *, unit: str = "", digits: int = 2) -> bool:
        return self.record(
            name, _number(value, digits, unit), f"<= {_number(limit, digits, unit)}", value <= limit
        )

    def at_least(self, name: str, value: float, limit: float, *, unit: str = "", digits: int = 2) -> bool:
        return self.record(
            name, _number(value, digits, unit), f">= {_number(limit, digits, unit)}", value >= limit
        )

    def finish(self) -> int:
        """Print the table, append the checks to $S2I_BENCH_RESULTS if set; 0 if every check passed, else 1."""
        print(f"\n{self.benchmark}: targets")
        print(table(self.checks, with_benchmark=False))
        results = os.environ.get(RESULTS_ENV)
        if results:
            with Path(results).open("a", encoding="utf-8") as out:
                for check in self.checks:
                    out.write(json.dumps(asdict(check)) + "\n")
        return 0 if self.checks and all(check.passed for check in self.checks) else 1


def table(checks: list[Check], *, with_benchmark: bool = True) -> str:
    """A plain-text table: [benchmark,] check, measured, target, PASS/FAIL."""
    header = (["benchmark"] if with_benchmark else []) + ["check", "measured", "target", "result"]
    rows = [
        ([check.benchmark] if with_benchmark else [])
        + [check.name, check.measured, check.target, "PASS" if check.passed else "FAIL"]
        for check in checks
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {len(header) - 3, len(header) - 2}  # measured and target: right-aligned
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def read_results(path: Path) -> list[Check]:
    if not path.is_file():
        return []
    return [
        Check(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
