"""Stream decoder: bytes in, messages out; bad frames are counted and skipped, never fatal."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgesplit.device.serial.protocol import (
    MAX_WIRE,
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

    def feed(self, data: bytes) -> list[tuple[int, Message]]:
        """Returns (seq, message) for every valid frame completed by ``data``."""
        out: list[tuple[int, Message]] = []
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
            if overflow:
                self.counters.length_errors += 1
                continue
            if not body:
                continue  # a lone delimiter: resync marker
            try:
                frame = decode_frame(body)
                msg = parse_message(frame)
            except ProtocolError as exc:
                setattr(self.counters, exc.counter, getattr(self.counters, exc.counter) + 1)
                self.counters.bytes_discarded += len(body) + 1
                continue
            if self._last_seq is not None and frame.seq != (self._last_seq + 1) & 0xFFFF:
                self.counters.seq_gaps += 1
            self._last_seq = frame.seq
            self.counters.frames_ok += 1
            out.append((frame.seq, msg))

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
