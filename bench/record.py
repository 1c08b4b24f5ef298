"""A benchmark's figures: printed, and appended to bench/RESULTS.md under a heading with what ran
(the exact command), when (UTC) and on what (cores, Python)."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# Where the figures go: RESULTS.md, or the file BENCH_RESULTS names (the smoke runs of `make test`
# write to a temporary one: a benchmark run at a toy size records nothing).
TARGET = Path(os.environ["BENCH_RESULTS"]) if os.environ.get("BENCH_RESULTS") else RESULTS
MEASURES = ("measure", "result", "target")


def append(title: str, rows: list[str], columns: tuple[str, ...] = MEASURES) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    script = sys.modules["__main__"].__file__  # absolute: the benchmark may have left its folder since
    command = "python " + " ".join([os.path.relpath(script, RESULTS.parent.parent), *sys.argv[1:]])
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    print("\n".join(rows))
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows]
    with TARGET.open("a") as f:
        f.write(f"\n## {title} (`{command}`), {stamp}, {machine}\n\n" + "\n".join(table) + "\n")
