"""Per-request telemetry as JSON lines, written so that a crash loses at most the line in flight.

Each record is one ``write`` of one line, flushed and fsync'd before the call returns. A reader
skips a torn last line (the process died mid-write) and reports how many it skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class TelemetryLog:
    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._f = self.path.open("a", encoding="utf-8")
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self.written += 1

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> TelemetryLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_telemetry(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Every complete record, and the number of torn or unreadable lines skipped."""
    records, skipped = [], 0
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                skipped += 1  # torn by a crash mid-write
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                skipped += 1
    return records, skipped
