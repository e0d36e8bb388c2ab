"""The overall table of `make bench`: every check the benchmarks appended to RESULTS, PASS or FAIL.

    python benchmarks/summary.py RESULTS BENCHMARK...

BENCHMARK names each benchmark that was run (bench_extract, ...): one that left no checks in RESULTS (it
crashed or was interrupted) counts as a failure. Exits 1 if any check failed, else 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

from targets import Check, read_results, table  # benchmarks/ is on the path: this script's folder


def main(argv: list[str]) -> int:
    if not argv:
        sys.exit(__doc__)
    checks = read_results(Path(argv[0]))
    for name in argv[1:]:
        if not any(check.benchmark == name for check in checks):
            checks.append(Check(name, "ran to its checks", "no", "yes", False))
    failed = sum(not check.passed for check in checks)
    print("\nmake bench: every target\n")
    print(table(checks))
    print(
        f"\n{len(checks) - failed} of {len(checks)} checks passed" + (f", {failed} FAILED" if failed else "")
    )
    return 1 if failed or not checks else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
