"""Stream decoder: bytes in, messages out; bad frames are counted and skipped, never fatal.

Counting follows PROTOCOL.md exactly as the C decoder does (a differential fuzz test holds the
two to the same counters): each bad frame bumps one counter, a frame whose CRC verified (even of
an unknown type or with a bad payload) carries a trustworthy ``seq``, and a sequence gap is
counted only when more frames are missing than the errors since the last good frame explain.
A ``seq`` that restarts (0, or a step backwards) is a ``seq_resets``: the sender rebooted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from edgesplit.device.serial.protocol import (
    MAX_WIRE,
    Frame,
    Message,
    ProtocolError,
    decode_frame,
    parse_message,
)


@dataclass
class LinkCounters:
    frames_ok: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    length_errors: int = 0
    version_errors: int = 0
    unknown_types: int = 0
    payload_errors: int = 0
    seq_gaps: int = 0
    seq_resets: int = 0
    bytes_discarded: int = 0

    @property
    def frames_dropped(self) -> int:
        return (
            self.crc_errors
            + self.cobs_errors
            + self.length_errors
            + self.version_errors
            + self.unknown_types
            + self.payload_errors
        )

    def to_dict(self) -> dict[str, int]:
        return asdict(self) | {"frames_dropped": self.frames_dropped}


class StreamDecoder:
    """Feed arbitrary chunks; get whole messages. Resynchronises on the next 0x00 after garbage."""

    def __init__(self) -> None:
        self.counters = LinkCounters()
        self._buf = bytearray()
        self._overflow = False
        self._last_seq: int | None = None
        self._bad_since_good = 0
        self._joining = False

    def resync(self) -> None:
        """Joining a stream (a port just opened): the next frame starts a new sequence run, and
        the bytes before the first delimiter, usually the tail of a frame sent before we
        listened, are discarded without counting an error unless they decode as a frame."""
        self._last_seq = None
        self._bad_since_good = 0
        self._buf.clear()
        self._overflow = False
        self._joining = True

    def _track_seq(self, seq: int) -> None:
        if self._last_seq is not None:
            delta = (seq - self._last_seq - 1) & 0xFFFF
            if delta:
                if seq == 0 or delta >= 0x8000:
                    self.counters.seq_resets += 1
                elif delta > self._bad_since_good:
                    self.counters.seq_gaps += 1
        self._last_seq = seq
        self._bad_since_good = 0

    def feed(self, data: bytes) -> list[tuple[int, Message]]:
        """Returns (seq, message) for every valid frame completed by ``data``."""
        return [(frame.seq, msg) for frame, msg in self.feed_frames(data)]

    def feed_frames(self, data: bytes) -> list[tuple[Frame, Message]]:
        """As :meth:`feed`, with each message's frame (its exact payload bytes)."""
        out: list[tuple[Frame, Message]] = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._append(data[start:])
                return out
            self._append(data[start:end])
            body, overflow = bytes(self._buf), self._overflow
            self._buf.clear()
            self._overflow = False
            start = end + 1
            joining, self._joining = self._joining, False
            if joining and (overflow or not self._decodes(body)):
                self.counters.bytes_discarded += len(body) + (0 if overflow else 1)
                continue
            if overflow:
                self.counters.length_errors += 1
                self._bad_since_good += 1
                continue
            if not body:
                continue  # a lone delimiter: resync marker
            try:
                frame = decode_frame(body)
            except ProtocolError as exc:
                self._count(exc.counter, body)
                self._bad_since_good += 1
                continue
            self._track_seq(frame.seq)
            try:
                msg = parse_message(frame)
            except ProtocolError as exc:  # unknown type or bad payload: counted once, here
                self._count(exc.counter, body)
                continue
            self.counters.frames_ok += 1
            out.append((frame, msg))

    @staticmethod
    def _decodes(body: bytes) -> bool:
        try:
            decode_frame(body)
        except ProtocolError:
            return False
        return True

    def _count(self, counter: str, body: bytes) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.counters.bytes_discarded += len(body) + 1

    def _append(self, chunk: bytes) -> None:
        if self._overflow:
            self.counters.bytes_discarded += len(chunk)
            return
        self._buf += chunk
        if len(self._buf) > MAX_WIRE:
            # No delimiter for longer than any legal frame: drop until the next 0x00.
            self.counters.bytes_discarded += len(self._buf)
            self._buf.clear()
            self._overflow = True


# The spec's counters, in the order the vectors and the C side list them.
COUNTER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(LinkCounters))
