"""Regenerate firmware_stubs/protocol/vectors.txt from the Python reference implementation.

The C tests and the Python tests both check these bytes, so a change to either implementation that
alters the wire format or the counting fails the other side's tests. Two kinds of line:

- frame vectors ``name type seq payload wire``: encode to exactly ``wire``, decode back;
- stream vectors ``!name wire counters``: feed ``wire`` (several frames, garbage, ...) to a fresh
  stream decoder; every receiver counter of PROTOCOL.md must end at the listed value.

Run: python scripts/make_vectors.py
"""

from __future__ import annotations

from pathlib import Path

from edgesplit.device.serial import protocol as p
from edgesplit.device.serial.decoder import COUNTER_NAMES, StreamDecoder

OUT = Path(__file__).resolve().parents[1] / "firmware_stubs" / "protocol" / "vectors.txt"
COUNTERS = COUNTER_NAMES


def run_of_nonzero(run_bytes: int, mtype: int = int(p.MsgType.LOG)) -> tuple[int, bytes, int]:
    """A frame whose packet ends in exactly ``run_bytes`` non-zero bytes after its last zero
    (the COBS block-boundary case): payload = 0x00 then 'x's; seq chosen so that no header or
    CRC byte is zero."""
    payload = b"\x00" + b"x" * (run_bytes - 2)
    for seq in range(0x0101, 0xFFFF):
        packet = p.HEADER.pack(p.VERSION, mtype, seq, len(payload)) + payload
        packet += p.CRC.pack(p.crc16(packet))
        if len(packet) - packet.rindex(b"\x00") - 1 == run_bytes:
            return mtype, payload, seq
    raise AssertionError("no seq gives a zero-free CRC")


def raw_packet(version: int, mtype: int, seq: int, length: int, payload: bytes) -> bytes:
    """A frame with arbitrary header fields and a valid CRC (for the error vectors)."""
    from cobs import cobs

    packet = p.HEADER.pack(version, mtype, seq, length) + payload
    return cobs.encode(packet + p.CRC.pack(p.crc16(packet))) + b"\x00"


HELLO = p.Hello(0xE5E5_0001, 1, 1, 0, p.ALL_STREAMS, 50, 50, 40, 0x1F, 1_234_567_890_123, 2)
STATUS = p.Status(4_294_967_296 + 5, 410, 1024, 71, 11_520, 12_800, 3, 1230, 7, 1, 2, 0, 1000)

FRAMES: list[tuple[str, p.Message | tuple[int, bytes], int]] = [
    ("hello", HELLO, 0),
    ("imu_batch", p.ImuBatch(1234, 50, ((0, 0, 1000, 0, 0, 0), (-12, 3, 998, 150, -20, 5))), 1),
    ("button_press", p.Button(5000, 0, p.Button.PRESS), 2),
    ("battery_cold", p.Battery(60000, 3812, 731, 0, -45), 3),
    ("audio_features", p.AudioFeatures(20, 3, ((256, -512, 0), (1, -1, 32767))), 4),
    ("audio_features_20_bands", p.AudioFeatures(0xFFFF_FF9C, 20, ((-2304,) * 20,)), 4),
    ("log", p.Log(1, "boot ok"), 5),
    ("log_long", p.Log(2, "x" * 300), 6),
    ("status", STATUS, 7),
    ("ping", p.Ping(0xDEADBEEF), 7),
    ("start_stream", p.StartStream(0b1001), 8),
    ("stop_stream", p.StopStream(0b0001), 9),
    ("set_rate", p.SetRate(0, 100), 10),
    ("get_info", p.GetInfo(), 11),
    ("ack", p.Ack(9, p.MsgType.STOP_STREAM), 11),
    ("nack", p.Nack(10, p.MsgType.SET_RATE, p.Nack.BAD_VALUE), 12),
    ("seq_wrap", p.Ping(0), 65535),
    ("zeros_payload", (int(p.MsgType.LOG), bytes(8)), 13),
    ("empty_payload", (0x7F, b""), 14),
    ("max_payload", (int(p.MsgType.LOG), b"\x01" + bytes(range(1, 256)) * 2), 15),
]


def frame(msg: p.Message, seq: int) -> bytes:
    return p.encode_message(msg, seq)


def corrupt(wire: bytes, at: int) -> bytes:
    bad = bytearray(wire)
    bad[at] ^= 0x10 if bad[at] ^ 0x10 else 0x20
    return bytes(bad)


def streams() -> list[tuple[str, bytes]]:
    ping0, ping1, ping2 = (frame(p.Ping(i), i) for i in range(3))
    return [
        ("good_pair", ping0 + ping1),
        ("crc_error", corrupt(ping1, 5) + ping2),
        ("cobs_error", b"\x05\x11\x22\x00" + ping0),
        ("cobs_code_past_end", b"\x03\x11\x02\x22\x00"),
        ("short_packet", b"\x06\x01\x02\x03\x04\x05\x00"),
        ("length_mismatch", raw_packet(1, int(p.MsgType.PING), 0, 5, b"\x01\x02\x03\x04")),
        ("payload_513", raw_packet(1, int(p.MsgType.LOG), 0, 513, b"\x01" * 513)),
        ("overlong_no_delimiter", b"\x41" * 600 + b"\x00" + ping0),
        ("version_error", raw_packet(2, int(p.MsgType.PING), 0, 4, b"\x01\x02\x03\x04") + ping1),
        ("unknown_type", frame(p.Ping(5), 0) + raw_packet(1, 0x7E, 1, 1, b"\x00") + ping2),
        ("payload_error", ping0 + raw_packet(1, int(p.MsgType.BATTERY), 1, 2, b"\x01\x02") + ping2),
        ("seq_gap", ping0 + ping1 + frame(p.Ping(5), 5)),
        ("seq_gap_explained_by_bad_frame", ping0 + corrupt(ping1, 4) + ping2),
        ("seq_gap_larger_than_errors", ping0 + corrupt(ping1, 4) + frame(p.Ping(3), 3)),
        ("seq_reset_reboot", frame(p.Ping(1), 10) + frame(p.Ping(2), 11) + frame(HELLO, 0)),
        ("seq_backwards_is_a_reset", frame(p.Ping(1), 1000) + frame(p.Ping(2), 100)),
        ("seq_far_forward_is_a_gap", frame(p.Ping(1), 40000) + frame(p.Ping(2), 100)),
        ("seq_wrap_is_not_a_gap", frame(p.Ping(1), 65535) + frame(p.Ping(2), 0)),
        ("garbage_then_frame", b"\x13\x37\xff\x00" + ping0),
        ("lone_delimiters", b"\x00\x00" + ping0 + b"\x00" + ping1),
    ]


def main() -> None:
    lines = [
        "# edgesplit sensor link test vectors (PROTOCOL.md). Generated by scripts/make_vectors.py.",
        "# name type(hex) seq(dec) payload(hex|-) wire(hex, COBS frame incl. 0x00 delimiter)",
    ]
    vectors = list(FRAMES)
    for run in (254, 255, 508):
        mtype, payload, seq = run_of_nonzero(run)
        vectors.append((f"cobs_run_{run}", (mtype, payload), seq))
    for name, msg, seq in vectors:
        mtype, payload = (int(msg.TYPE), msg.pack()) if isinstance(msg, p.Message) else msg
        wire = p.Frame(mtype, seq, payload).encode()
        lines.append(f"{name} {mtype:02x} {seq} {payload.hex() or '-'} {wire.hex()}")
    lines.append("# !name wire(hex stream) counters after feeding it to a fresh stream decoder")
    for name, wire in streams():
        dec = StreamDecoder()
        dec.feed(wire)
        counts = dec.counters.to_dict()
        lines.append(f"!{name} {wire.hex()} " + ",".join(f"{k}={counts[k]}" for k in COUNTERS))
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(vectors)} frame and {len(streams())} stream vectors to {OUT}")


if __name__ == "__main__":
    main()
