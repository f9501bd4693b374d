"""Frames and messages of the sensor link, version 1 (firmware_stubs/protocol/PROTOCOL.md).

wire = COBS(version:u8 type:u8 seq:u16 length:u16 payload crc16) 0x00, little-endian,
CRC-16/CCITT-FALSE over the packet before the CRC. COBS comes from the ``cobs`` package and the CRC
from the standard library (``binascii.crc_hqx`` is exactly CCITT-FALSE with init 0xFFFF).
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import ClassVar

from cobs import cobs

from edgesplit.errors import LinkError

VERSION = 1
MAX_PAYLOAD = 512
HEADER = struct.Struct("<BBHH")
CRC = struct.Struct("<H")
# Longest legal frame on the wire: COBS adds at most 1 byte per 254, plus the delimiter.
MAX_PACKET = HEADER.size + MAX_PAYLOAD + CRC.size
MAX_WIRE = MAX_PACKET + MAX_PACKET // 254 + 2


class MsgType(IntEnum):
    HELLO = 0x01
    IMU_BATCH = 0x02
    BUTTON = 0x03
    BATTERY = 0x04
    AUDIO_FEATURES = 0x05
    LOG = 0x06
    STATUS = 0x07
    PING = 0x10
    START_STREAM = 0x11
    STOP_STREAM = 0x12
    SET_RATE = 0x13
    GET_INFO = 0x14
    ACK = 0x20
    NACK = 0x21


class Stream(IntEnum):
    """Bit index of each stream in capability/stream masks."""

    IMU = 0
    BUTTON = 1
    BATTERY = 2
    AUDIO_FEATURES = 3
    LOG = 4
    STATUS = 5  # periodic STATUS and HELLO


ALL_STREAMS = 0x3F


class ProtocolError(LinkError, ValueError):
    """A frame or payload that breaks the spec; ``counter`` names the receiver counter to bump."""

    def __init__(self, counter: str, message: str) -> None:
        super().__init__(message)
        self.counter = counter


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF; crc16(b'123456789') == 0x29B1."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes = b""
    version: int = VERSION

    def encode(self) -> bytes:
        """The frame on the wire, delimiter included."""
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload is {len(self.payload)} bytes; the maximum is {MAX_PAYLOAD}")
        if not 0 <= self.seq <= 0xFFFF:
            raise ValueError(f"seq={self.seq} does not fit u16")
        packet = HEADER.pack(self.version, self.type, self.seq, len(self.payload)) + self.payload
        return cobs.encode(packet + CRC.pack(crc16(packet))) + b"\x00"


def decode_frame(wire: bytes) -> Frame:
    """Decode one frame (without or with its trailing 0x00); raises :class:`ProtocolError`."""
    body = wire[:-1] if wire.endswith(b"\x00") else wire
    if len(body) > MAX_WIRE:
        raise ProtocolError("length_errors", f"frame of {len(body)} bytes exceeds {MAX_WIRE}")
    try:
        packet = cobs.decode(body)
    except cobs.DecodeError as exc:
        raise ProtocolError("cobs_errors", f"bad COBS encoding: {exc}") from exc
    if len(packet) < HEADER.size + CRC.size:
        raise ProtocolError("length_errors", f"packet of {len(packet)} bytes is too short")
    (crc,) = CRC.unpack_from(packet, len(packet) - CRC.size)
    if crc != crc16(packet[: -CRC.size]):
        raise ProtocolError("crc_errors", "CRC mismatch")
    version, mtype, seq, length = HEADER.unpack_from(packet)
    if version != VERSION:
        raise ProtocolError("version_errors", f"protocol version {version}, expected {VERSION}")
    if length != len(packet) - HEADER.size - CRC.size or length > MAX_PAYLOAD:
        raise ProtocolError("length_errors", f"length field {length} does not match the packet")
    return Frame(mtype, seq, bytes(packet[HEADER.size : -CRC.size]), version)


# ---- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """Base: fixed-layout messages declare TYPE and FORMAT (struct, little-endian)."""

    TYPE: ClassVar[MsgType]
    FORMAT: ClassVar[struct.Struct]

    def pack(self) -> bytes:
        return self.FORMAT.pack(*(getattr(self, f.name) for f in fields(self)))

    @classmethod
    def unpack(cls, payload: bytes) -> Message:
        if len(payload) != cls.FORMAT.size:
            raise ProtocolError(
                "payload_errors",
                f"{cls.TYPE.name} payload is {len(payload)} bytes, expected {cls.FORMAT.size}",
            )
        return cls(*cls.FORMAT.unpack(payload))


@dataclass(frozen=True)
class Hello(Message):
    """The board's identity and state; sent at boot (seq 0), every 5 s and on GET_INFO."""

    TYPE = MsgType.HELLO
    FORMAT = struct.Struct("<IBBBHHHBHQB")
    BOOT, PERIODIC, REQUESTED = 0, 1, 2
    device_id: int
    fw_major: int
    fw_minor: int
    fw_patch: int
    capabilities: int
    imu_rate_hz: int
    audio_frames_per_s: int
    mel_bands: int
    streams: int = ALL_STREAMS
    uptime_ms: int = 0
    reason: int = BOOT

    @property
    def fw_version(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"


@dataclass(frozen=True)
class ImuBatch(Message):
    """Accelerometer in mg, gyroscope in 0.1 deg/s; samples are (ax, ay, az, gx, gy, gz)."""

    TYPE = MsgType.IMU_BATCH
    FORMAT = struct.Struct("<IHB")
    SAMPLE: ClassVar[struct.Struct] = struct.Struct("<6h")
    t_ms: int
    rate_hz: int
    samples: tuple[tuple[int, int, int, int, int, int], ...] = field(default=())

    def pack(self) -> bytes:
        head = self.FORMAT.pack(self.t_ms, self.rate_hz, len(self.samples))
        return head + b"".join(self.SAMPLE.pack(*s) for s in self.samples)

    @classmethod
    def unpack(cls, payload: bytes) -> ImuBatch:
        if len(payload) < cls.FORMAT.size:
            raise ProtocolError("payload_errors", "IMU_BATCH payload shorter than its header")
        t_ms, rate, count = cls.FORMAT.unpack_from(payload)
        if len(payload) != cls.FORMAT.size + count * cls.SAMPLE.size:
            raise ProtocolError("payload_errors", f"IMU_BATCH says {count} samples, size disagrees")
        samples = tuple(
            cls.SAMPLE.unpack_from(payload, cls.FORMAT.size + i * cls.SAMPLE.size)
            for i in range(count)
        )
        return cls(t_ms, rate, samples)


@dataclass(frozen=True)
class Button(Message):
    TYPE = MsgType.BUTTON
    FORMAT = struct.Struct("<IBB")
    PRESS, RELEASE, LONG_PRESS = 1, 2, 3
    t_ms: int
    button: int
    event: int


@dataclass(frozen=True)
class Battery(Message):
    TYPE = MsgType.BATTERY
    FORMAT = struct.Struct("<IHHBh")
    t_ms: int
    millivolts: int
    soc_permille: int
    charging: int
    temp_decicelsius: int


@dataclass(frozen=True)
class AudioFeatures(Message):
    """Log-mel frames in Q8.8: ``values[f][b] / 256`` is the natural-log band energy."""

    TYPE = MsgType.AUDIO_FEATURES
    FORMAT = struct.Struct("<IBB")
    t_ms: int
    bands: int
    values: tuple[tuple[int, ...], ...] = field(default=())

    def pack(self) -> bytes:
        head = self.FORMAT.pack(self.t_ms, len(self.values), self.bands)
        flat = [v for frame in self.values for v in frame]
        return head + struct.pack(f"<{len(flat)}h", *flat)

    @classmethod
    def unpack(cls, payload: bytes) -> AudioFeatures:
        if len(payload) < cls.FORMAT.size:
            raise ProtocolError("payload_errors", "AUDIO_FEATURES payload shorter than its header")
        t_ms, frames, bands = cls.FORMAT.unpack_from(payload)
        if len(payload) != cls.FORMAT.size + 2 * frames * bands:
            raise ProtocolError(
                "payload_errors", f"AUDIO_FEATURES says {frames}x{bands}, size disagrees"
            )
        flat = struct.unpack_from(f"<{frames * bands}h", payload, cls.FORMAT.size)
        return cls(t_ms, bands, tuple(flat[i * bands : (i + 1) * bands] for i in range(frames)))


@dataclass(frozen=True)
class Log(Message):
    TYPE = MsgType.LOG
    FORMAT = struct.Struct("<B")
    level: int
    text: str = ""

    def pack(self) -> bytes:
        return self.FORMAT.pack(self.level) + self.text.encode()

    @classmethod
    def unpack(cls, payload: bytes) -> Log:
        if not payload:
            raise ProtocolError("payload_errors", "LOG payload is empty")
        return cls(payload[0], payload[1:].decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class Status(Message):
    """Once a second: uptime, the TX queue (backlog now, peak, the time it takes to leave),
    the line rate and the rate offered to it, frames dropped because the queue was full, and what
    the MCU received from the host."""

    TYPE = MsgType.STATUS
    FORMAT = struct.Struct("<QHHHIIIIIIIHH")
    uptime_ms: int
    tx_queued_bytes: int
    tx_peak_bytes: int
    tx_lag_ms: int
    line_bytes_per_s: int
    offered_bytes_per_s: int
    tx_dropped_frames: int
    tx_dropped_bytes: int
    rx_frames_ok: int
    rx_frame_errors: int
    rx_rejected: int
    sched_resyncs: int
    interval_ms: int

    @property
    def oversubscribed(self) -> bool:
        """More offered in the last interval than the line carries."""
        return self.offered_bytes_per_s > self.line_bytes_per_s > 0


@dataclass(frozen=True)
class Ping(Message):
    TYPE = MsgType.PING
    FORMAT = struct.Struct("<I")
    nonce: int


@dataclass(frozen=True)
class StartStream(Message):
    TYPE = MsgType.START_STREAM
    FORMAT = struct.Struct("<H")
    streams: int


@dataclass(frozen=True)
class StopStream(Message):
    TYPE = MsgType.STOP_STREAM
    FORMAT = struct.Struct("<H")
    streams: int


@dataclass(frozen=True)
class SetRate(Message):
    TYPE = MsgType.SET_RATE
    FORMAT = struct.Struct("<BH")
    stream: int
    rate_hz: int


@dataclass(frozen=True)
class GetInfo(Message):
    """Asks the MCU for a HELLO (answered by ACK, then HELLO with reason REQUESTED)."""

    TYPE = MsgType.GET_INFO
    FORMAT = struct.Struct("<")


@dataclass(frozen=True)
class Ack(Message):
    TYPE = MsgType.ACK
    FORMAT = struct.Struct("<HB")
    acked_seq: int
    acked_type: int


@dataclass(frozen=True)
class Nack(Message):
    TYPE = MsgType.NACK
    FORMAT = struct.Struct("<HBB")
    UNKNOWN_TYPE, BAD_PAYLOAD, BAD_VALUE = 1, 2, 3
    acked_seq: int
    acked_type: int
    reason: int


MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        ImuBatch,
        Button,
        Battery,
        AudioFeatures,
        Log,
        Status,
        Ping,
        StartStream,
        StopStream,
        SetRate,
        GetInfo,
        Ack,
        Nack,
    )
}


def parse_message(frame: Frame) -> Message:
    cls = MESSAGE_CLASSES.get(frame.type)
    if cls is None:
        raise ProtocolError("unknown_types", f"unknown message type 0x{frame.type:02x}")
    return cls.unpack(frame.payload)


def encode_message(msg: Message, seq: int) -> bytes:
    return Frame(int(msg.TYPE), seq, msg.pack()).encode()
