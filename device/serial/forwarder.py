"""Interop with the Edge Impulse data forwarder's text format: one line of numbers per sample,
separated by commas, tabs or spaces (115200 baud by default)."""

from __future__ import annotations

import re

from edgesplit.errors import InputError

_SPLIT = re.compile(r"[,\t ]+")


class ForwarderError(InputError):
    pass


def parse_forwarder_line(line: bytes | str, expected_axes: int | None = None) -> tuple[float, ...]:
    """``b"0.12,-9.81,0.4\\r\\n"`` -> ``(0.12, -9.81, 0.4)``; raises :class:`ForwarderError`."""
    if isinstance(line, bytes):
        try:
            line = line.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ForwarderError(f"non-ASCII bytes in forwarder line: {line[:40]!r}") from exc
    fields = [f for f in _SPLIT.split(line.strip()) if f]
    if not fields:
        raise ForwarderError("empty forwarder line")
    try:
        values = tuple(float(f) for f in fields)
    except ValueError as exc:
        raise ForwarderError(f"forwarder line has a non-number: {line.strip()!r}") from exc
    if expected_axes is not None and len(values) != expected_axes:
        raise ForwarderError(f"forwarder line has {len(values)} values, expected {expected_axes}")
    return values


class ForwarderDecoder:
    """Chunks in, samples out; malformed lines are counted (``bad_lines``) and skipped. The axis
    count is fixed by the first good line, as the Edge Impulse forwarder does."""

    MAX_LINE = 1024

    def __init__(self) -> None:
        self.axes: int | None = None
        self.samples = 0
        self.bad_lines = 0
        self._buf = b""

    def feed(self, data: bytes) -> list[tuple[float, ...]]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        if len(self._buf) > self.MAX_LINE:
            self._buf, self.bad_lines = b"", self.bad_lines + 1
        out = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                values = parse_forwarder_line(raw, self.axes)
            except ForwarderError:
                self.bad_lines += 1
                continue
            self.axes = len(values)
            self.samples += 1
            out.append(values)
        return out
