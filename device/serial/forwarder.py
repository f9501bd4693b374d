"""Interop with the Edge Impulse data forwarder's text format: one line of numbers per sample,
separated by commas or tabs (spaces accepted too), ending in ``\\r\\n`` or ``\\n`` (115 200 baud
by default). Their tool detects the number of axes and the sampling frequency from the stream, and
``--frequency`` overrides the estimate; this decoder does the same.

Axis count: fixed only once ``STABLE_LINES`` lines agree on it, so a line cut in half when the port
opened mid-line cannot fix a wrong count (lines seen meanwhile are kept and released once it is
known). Frequency: samples per second over the accepted lines' arrival times (the format has no
timestamps), summed over connections so that the time a sender was away does not count.
"""

from __future__ import annotations

import re
import time
from collections import deque

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
    """Chunks in, samples out; malformed lines are counted (``bad_lines``) and skipped."""

    MAX_LINE = 1024
    STABLE_LINES = 3  # lines agreeing on one axis count before it is fixed
    REDETECT_LINES = 20  # consecutive lines with another count: the sender changed, re-detect
    MIN_FREQ_WINDOW_S = 0.2
    MIN_FREQ_INTERVALS = 10
    FREQ_HISTORY = 2000

    def __init__(self, frequency_hz: float | None = None) -> None:
        if frequency_hz is not None and frequency_hz <= 0:
            raise ForwarderError(f"frequency={frequency_hz} Hz: expected a positive rate")
        self.axes: int | None = None
        self.samples = 0
        self.bad_lines = 0
        self.axes_changes = 0
        self.fixed_frequency_hz = frequency_hz
        self._buf = b""
        self._candidates: list[tuple[float, ...]] = []
        self._other: list[tuple[float, ...]] = []
        self._times: deque[float] = deque(maxlen=self.FREQ_HISTORY)
        self._past_intervals, self._past_span_s = 0, 0.0  # earlier connections

    @property
    def sampling_frequency_hz(self) -> float | None:
        """The override if given, else the rate measured over the accepted lines of this and
        earlier connections (None until enough of them has arrived)."""
        if self.fixed_frequency_hz is not None:
            return self.fixed_frequency_hz
        intervals, span = self._past_intervals, self._past_span_s
        if len(self._times) >= 2:
            intervals += len(self._times) - 1
            span += self._times[-1] - self._times[0]
        if intervals < self.MIN_FREQ_INTERVALS or span < self.MIN_FREQ_WINDOW_S:
            return None
        return round(intervals / span, 1)

    def reconnected(self) -> None:
        """A new connection: a half-received line is not a bad line, and the arrival-time window
        restarts (the gap is not part of the sampling rate)."""
        self._buf = b""
        if len(self._times) >= 2:
            self._past_intervals += len(self._times) - 1
            self._past_span_s += self._times[-1] - self._times[0]
        self._times.clear()

    def feed(self, data: bytes, now: float | None = None) -> list[tuple[float, ...]]:
        """Lines completed by ``data``; ``now`` (s) is their arrival time (default: now)."""
        t = time.monotonic() if now is None else now
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        if len(self._buf) > self.MAX_LINE:
            self._buf, self.bad_lines = b"", self.bad_lines + 1
        out: list[tuple[float, ...]] = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                values = parse_forwarder_line(raw)
            except ForwarderError:
                self.bad_lines += 1
                continue
            out += self._accept(values, t)
        return out

    def _accept(self, values: tuple[float, ...], t: float) -> list[tuple[float, ...]]:
        if self.axes is None:
            self._candidates.append(values)
            n = len(values)
            if sum(len(c) == n for c in self._candidates) < self.STABLE_LINES:
                if len(self._candidates) > self.REDETECT_LINES:  # never stable: give up the oldest
                    self._candidates.pop(0)
                    self.bad_lines += 1
                return []
            self.axes = n
            run = [c for c in self._candidates if len(c) == n]
            self.bad_lines += len(self._candidates) - len(run)
            self._candidates = []
            self.samples += len(run)
            self._times.append(t)
            return run
        if len(values) == self.axes:
            self.bad_lines += len(self._other)
            self._other.clear()
            self.samples += 1
            self._times.append(t)
            return [values]
        if self._other and len(self._other[-1]) != len(values):
            self.bad_lines += len(self._other)
            self._other.clear()
        self._other.append(values)
        if len(self._other) < self.REDETECT_LINES:
            return []
        # The sender now sends another number of axes (reflashed): follow it, as a re-run of
        # their tool's detection would.
        self.axes, run, self._other = len(values), self._other, []
        self.axes_changes += 1
        self._times.clear()
        self._past_intervals, self._past_span_s = 0, 0.0
        self.samples += len(run)
        self._times.append(t)
        return run
