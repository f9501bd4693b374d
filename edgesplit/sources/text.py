"""Typed requests for the phone: one request per line from a stream (standard input)."""

from __future__ import annotations

import queue
import sys
import threading
from typing import TextIO

from edgesplit.sources import Item, unscored


class TextSource:
    device = "phone"

    def __init__(self, stream: TextIO | None = None, prompt: bool | None = None) -> None:
        self.stream = stream or sys.stdin
        self.name = "text:stdin"
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._eof = False
        if prompt if prompt is not None else self.stream.isatty():
            print("phone: type a request and press Enter (Ctrl-D to end)", file=sys.stderr)
        # A reader thread, so that a device loop waiting for a line can still time out.
        threading.Thread(target=self._reader, name="text-source", daemon=True).start()

    def _reader(self) -> None:
        for line in self.stream:
            if line.strip():
                self.lines.put(line.strip())
        self.lines.put(None)

    @property
    def exhausted(self) -> bool:
        return self._eof and self.lines.empty()

    def read(self, timeout_s: float) -> Item | None:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if line is None:
            self._eof = True
            return None
        return Item(line, "", unscored)

    def close(self) -> None:
        pass
