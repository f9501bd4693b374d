"""The host end of the sensor link over pyserial: any port pyserial opens (``/dev/ttyACM0``, a pty,
``loop://``, ``socket://host:port``), chunked reads, command/ACK handling and reconnection."""

from __future__ import annotations

import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import serial
from edgesplit.device.serial.decoder import LinkCounters, StreamDecoder
from edgesplit.device.serial.protocol import Ack, Message, Nack, encode_message


@dataclass
class LinkStats:
    bytes_received: int = 0
    bytes_sent: int = 0
    reconnects: int = 0
    messages: Counter = field(default_factory=Counter)


class SensorLink:
    """Reads messages from the MCU and sends it commands. Never raises on bad bytes: they are
    counted in :attr:`counters`. A port that disappears is reopened (``reconnect=True``)."""

    def __init__(
        self,
        url: str,
        baud: int = 115_200,
        read_timeout_s: float = 0.05,
        reconnect: bool = True,
        reconnect_interval_s: float = 0.25,
    ) -> None:
        if baud <= 0:
            raise ValueError(f"baud={baud}: expected a positive rate in bits/s (e.g. 115200)")
        self.url, self.baud = url, baud
        self.read_timeout_s = read_timeout_s
        self.reconnect = reconnect
        self.reconnect_interval_s = reconnect_interval_s
        self.decoder = StreamDecoder()
        self.stats = LinkStats()
        self._port: serial.SerialBase | None = None
        self._tx_seq = 0
        self._pending: deque[tuple[int, Message]] = deque()
        self._next_attempt = 0.0
        self._open()

    @property
    def counters(self) -> LinkCounters:
        return self.decoder.counters

    @property
    def connected(self) -> bool:
        return self._port is not None

    def _open(self) -> None:
        self._port = serial.serial_for_url(
            self.url, baudrate=self.baud, timeout=self.read_timeout_s, write_timeout=1.0
        )

    def _lost(self) -> None:
        if self._port is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                self._port.close()
        self._port = None
        self._next_attempt = time.monotonic() + self.reconnect_interval_s
        if not self.reconnect:
            raise ConnectionError(f"serial port {self.url} went away")

    def _ensure_open(self) -> bool:
        if self._port is not None:
            return True
        if time.monotonic() < self._next_attempt:
            time.sleep(min(self.read_timeout_s, max(0.0, self._next_attempt - time.monotonic())))
            return False
        try:
            self._open()
        except (OSError, serial.SerialException):
            self._next_attempt = time.monotonic() + self.reconnect_interval_s
            return False
        self.stats.reconnects += 1
        return True

    def poll(self) -> list[tuple[int, Message]]:
        """One chunked read (whatever is waiting, or wait up to the read timeout for 1 byte)."""
        out = list(self._pending)
        self._pending.clear()
        if not self._ensure_open():
            return out
        try:
            assert self._port is not None
            chunk = self._port.read(max(1, self._port.in_waiting))
        except (OSError, serial.SerialException):
            self._lost()
            return out
        if chunk:
            self.stats.bytes_received += len(chunk)
            for seq, msg in self.decoder.feed(chunk):
                self.stats.messages[type(msg).__name__] += 1
                out.append((seq, msg))
        return out

    def messages(self, duration_s: float):
        """Yield (seq, message) for ``duration_s`` seconds."""
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            yield from self.poll()

    def send(self, msg: Message) -> int:
        """Send a host->MCU message; returns the sequence number used."""
        seq = self._tx_seq
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        wire = encode_message(msg, seq)
        if not self._ensure_open():
            raise ConnectionError(f"serial port {self.url} is not connected")
        try:
            assert self._port is not None
            self._port.write(wire)
            self._port.flush()
        except (OSError, serial.SerialException) as exc:
            self._lost()
            raise ConnectionError(f"write to {self.url} failed: {exc}") from exc
        self.stats.bytes_sent += len(wire)
        return seq

    def command(self, msg: Message, timeout_s: float = 1.0) -> Ack | Nack:
        """Send a command and wait for its ACK/NACK; other messages are kept for :meth:`poll`."""
        seq = self.send(msg)
        end = time.monotonic() + timeout_s
        kept: list[tuple[int, Message]] = []
        try:
            while time.monotonic() < end:
                for rx_seq, reply in self.poll():
                    if isinstance(reply, Ack | Nack) and reply.acked_seq == seq:
                        return reply
                    kept.append((rx_seq, reply))
        finally:
            self._pending.extend(kept)
        raise TimeoutError(f"no ACK/NACK for {type(msg).__name__} (seq {seq}) in {timeout_s} s")

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> SensorLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
