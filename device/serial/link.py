"""The host end of the sensor link over pyserial: any port pyserial opens (``/dev/ttyACM0``, a pty,
``loop://``, ``socket://host:port``), chunked reads, command/ACK handling and reconnection.

The host always knows the board: pyserial discards whatever arrived before the port was opened
(so the boot HELLO is usually gone), hence the link asks GET_INFO on every (re)connect and after a
sequence reset, and the MCU repeats HELLO every 5 s. Uptime (in HELLO and STATUS) only grows on a
running board, so uptime going backwards, or a boot HELLO from a known board, is reported as a
reboot, never as lost frames. STATUS
carries the MCU's TX backlog and drops: the link keeps the lag and warns when the link is
over-subscribed."""

from __future__ import annotations

import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import serial
from edgesplit.device.serial.decoder import LinkCounters, StreamDecoder
from edgesplit.device.serial.protocol import (
    Ack,
    GetInfo,
    Hello,
    Message,
    Nack,
    Status,
    encode_message,
)

INFO_RETRY_S = 0.5  # re-ask GET_INFO at most this often while the board is unknown


@dataclass
class LinkStats:
    bytes_received: int = 0
    bytes_sent: int = 0
    reconnects: int = 0
    reboots: int = 0
    messages: Counter = field(default_factory=Counter)
    # from the latest STATUS: the MCU's TX queue, in time and frames lost to it
    tx_lag_ms: int = 0
    tx_dropped_frames: int = 0
    offered_bytes_per_s: int = 0
    line_bytes_per_s: int = 0
    oversubscribed: bool = False
    # how much later than the fastest one the latest STATUS arrived, by the board's clock against
    # the host's: grows when the host or the link falls behind (or the board's clock runs slow)
    host_lag_ms: float = 0.0
    # bytes already received by the OS but not yet read by the host at the last poll
    host_backlog_bytes: int = 0


@dataclass(frozen=True)
class LinkEvent:
    """Something the user should hear about once: a board seen, a reboot, an overload."""

    kind: str  # "board", "reboot", "new_board", "oversubscribed", "recovered"
    at_s: float  # time.monotonic() on the host
    message: str


@dataclass
class BoardInfo:
    """What the link knows about the board: its latest HELLO and its uptime."""

    hello: Hello
    uptime_ms: int
    seen_at_s: float


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
        ask_info: bool = True,
    ) -> None:
        if baud <= 0:
            raise ValueError(f"baud={baud}: expected a positive rate in bits/s (e.g. 115200)")
        self.url, self.baud = url, baud
        self.read_timeout_s = read_timeout_s
        self.reconnect = reconnect
        self.reconnect_interval_s = reconnect_interval_s
        self.ask_info = ask_info
        self.decoder = StreamDecoder()
        self.stats = LinkStats()
        self.board: BoardInfo | None = None
        self.events: list[LinkEvent] = []
        self._port: serial.SerialBase | None = None
        self._tx_seq = 0
        self._pending: deque[tuple[int, Message]] = deque()
        self._next_attempt = 0.0
        self._info_wanted = ask_info
        self._info_asked_at = float("-inf")
        self._seq_resets_seen = 0
        self._min_offset_ms: float | None = None
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
        # A new connection starts a new sequence run and needs the board's identity again.
        self.decoder.resync()
        self._min_offset_ms = None
        self._request_info(force=True)

    def _request_info(self, force: bool = False) -> None:
        """Send GET_INFO (the answer is a HELLO); rate-limited, never raises."""
        if not self.ask_info or self._port is None:
            return
        now = time.monotonic()
        if not force and now - self._info_asked_at < INFO_RETRY_S:
            return
        self._info_wanted = True
        self._info_asked_at = now
        with contextlib.suppress(OSError, serial.SerialException, ConnectionError):
            self.send(GetInfo())

    def _event(self, kind: str, message: str) -> None:
        self.events.append(LinkEvent(kind, time.monotonic(), message))

    def _on_uptime(self, uptime_ms: int, hello: Hello | None) -> None:
        now = time.monotonic()
        board = self.board
        if board is None:
            if hello is None:
                self._request_info()  # STATUS from a board we have no HELLO for yet
                return
            self.board = BoardInfo(hello, uptime_ms, now)
            self._event(
                "board",
                f"board {hello.device_id:08x} fw {hello.fw_version}, up {uptime_ms / 1000:.1f} s",
            )
            return
        if hello is not None and hello.device_id != board.hello.device_id:
            self._event(
                "new_board",
                f"a different board on {self.url}: {board.hello.device_id:08x} -> "
                f"{hello.device_id:08x} (fw {hello.fw_version}, up {uptime_ms / 1000:.1f} s)",
            )
        elif uptime_ms < board.uptime_ms or (hello is not None and hello.reason == Hello.BOOT):
            # Uptime only grows on a running board; a boot HELLO says so even when the host knew
            # the board for less time than it has been up since.
            self.stats.reboots += 1
            self._min_offset_ms = None
            self._event(
                "reboot",
                f"board {board.hello.device_id:08x} rebooted: uptime was "
                f"{board.uptime_ms / 1000:.1f} s, now {uptime_ms / 1000:.1f} s",
            )
        board.uptime_ms, board.seen_at_s = uptime_ms, now
        if hello is not None:
            board.hello = hello
            self._info_wanted = False

    def _on_status(self, st: Status) -> None:
        s = self.stats
        offset = time.monotonic() * 1000 - st.uptime_ms
        if self._min_offset_ms is None or offset < self._min_offset_ms:
            self._min_offset_ms = offset
        s.host_lag_ms = offset - self._min_offset_ms
        dropped_more = st.tx_dropped_frames > s.tx_dropped_frames
        s.tx_lag_ms, s.tx_dropped_frames = st.tx_lag_ms, st.tx_dropped_frames
        s.offered_bytes_per_s, s.line_bytes_per_s = st.offered_bytes_per_s, st.line_bytes_per_s
        over = st.oversubscribed or dropped_more
        if over and not s.oversubscribed:
            self._event(
                "oversubscribed",
                f"link over-subscribed: {st.offered_bytes_per_s} B/s offered, the line carries "
                f"{st.line_bytes_per_s} B/s; MCU TX lag {st.tx_lag_ms} ms, "
                f"{st.tx_dropped_frames} frames dropped",
            )
        elif not over and s.oversubscribed:
            self._event("recovered", f"link keeps up again ({st.offered_bytes_per_s} B/s offered)")
        s.oversubscribed = over

    def _observe(self, msg: Message) -> None:
        """Board bookkeeping for one message."""
        if isinstance(msg, Hello):
            self._on_uptime(msg.uptime_ms, msg)
        elif isinstance(msg, Status):
            self._on_uptime(msg.uptime_ms, None)
            self._on_status(msg)

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
            waiting = self._port.in_waiting
            self.stats.host_backlog_bytes = waiting
            chunk = self._port.read(max(1, waiting))
        except (OSError, serial.SerialException):
            self._lost()
            return out
        if chunk:
            self.stats.bytes_received += len(chunk)
            for seq, msg in self.decoder.feed(chunk):
                self._observe(msg)
                self.stats.messages[type(msg).__name__] += 1
                out.append((seq, msg))
            if self.decoder.counters.seq_resets != self._seq_resets_seen:
                self._seq_resets_seen = self.decoder.counters.seq_resets
                self._request_info(force=True)  # the sender restarted: who is it now?
        if self._info_wanted:
            self._request_info()  # no HELLO yet: ask again (the first ask may have been lost)
        return out

    def wait_for_board(self, timeout_s: float = 5.0) -> BoardInfo:
        """Poll until the board's HELLO is known (messages are kept for :meth:`poll`)."""
        end = time.monotonic() + timeout_s
        while self.board is None and time.monotonic() < end:
            self._pending.extend(self.poll())
        if self.board is None:
            raise TimeoutError(f"no HELLO from the board on {self.url} within {timeout_s} s")
        return self.board

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

    def command(self, msg: Message, timeout_s: float = 1.0, attempts: int = 1) -> Ack | Nack:
        """Send a command and wait for its ACK/NACK; other messages are kept for :meth:`poll`.

        ``attempts`` > 1 resends it (a new sequence number) when a share of ``timeout_s`` passes
        unanswered, and takes the answer to any copy: for idempotent commands (PING, SET_RATE,
        GET_INFO) over a link that can lose a frame, as a UART whose receiver overran can."""
        sent: list[int] = []
        kept: list[tuple[int, Message]] = []
        share_s = timeout_s / max(1, attempts)
        try:
            for _ in range(max(1, attempts)):
                sent.append(self.send(msg))
                end = time.monotonic() + share_s
                while time.monotonic() < end:
                    for rx_seq, reply in self.poll():
                        if isinstance(reply, Ack | Nack) and reply.acked_seq in sent:
                            return reply
                        kept.append((rx_seq, reply))
        finally:
            self._pending.extend(kept)
        raise TimeoutError(
            f"no ACK/NACK for {type(msg).__name__} (seq {', '.join(map(str, sent))}) in "
            f"{timeout_s} s"
        )

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> SensorLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
