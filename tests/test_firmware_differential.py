"""Differential fuzz: the C protocol core (firmware_stubs/src/proto.c, driven through the
`es_codec` line tool) and the Python one (device/serial/protocol.py, decoder.py) must agree byte
for byte on every encoding, every decoded frame and every receiver counter, over random frames:
valid ones of every size (COBS block edges at 254/255/508 included), unknown types, bad payload
sizes, over-long payloads, bit flips, truncations, version and length-field changes, garbage and
lone delimiters, fed as one continuous stream (so sequence tracking is compared too)."""

from __future__ import annotations

import os
import random
import subprocess

import pytest
from cobs import cobs
from edgesplit.device.serial import protocol as p
from edgesplit.device.serial.decoder import COUNTER_NAMES, StreamDecoder
from edgesplit.device.serial.firmware import FIRMWARE_DIR, make_target

CODEC = FIRMWARE_DIR / "build" / "es_codec"
COUNTERS = COUNTER_NAMES
SIZES = (0, 1, 2, 3, 4, 6, 7, 11, 19, 25, 46, 247, 248, 249, 250, 251, 252, 253, 500, 505, 512)


@pytest.fixture(scope="module")
def codec():
    try:
        res = make_target("build/es_codec")
    except OSError as exc:
        pytest.skip(f"cannot build the C codec (needs cc and make): {exc}")
    if res.returncode != 0:
        pytest.skip(f"cannot build the C codec (needs cc and make): {res.stderr[-300:]}")
    return CODEC


def random_payload(rng: random.Random, mtype: int) -> bytes:
    """Payloads that are valid for their type about half the time, and sized to hit COBS block
    boundaries and the 512-byte limit."""
    cls = p.MESSAGE_CLASSES.get(mtype)
    roll = rng.random()
    if cls is not None and roll < 0.5:
        if mtype == p.MsgType.IMU_BATCH:
            n = rng.randint(0, 10)
            return bytes(rng.getrandbits(8) for _ in range(6)) + bytes([n]) + rng.randbytes(12 * n)
        if mtype == p.MsgType.AUDIO_FEATURES:
            f, b = rng.randint(0, 5), rng.choice((1, 20, 40, 50))
            return rng.randbytes(4) + bytes([f, b]) + rng.randbytes(2 * f * b)
        if mtype == p.MsgType.LOG:
            return rng.randbytes(rng.randint(1, 120))
        return rng.randbytes(cls.FORMAT.size)
    n = rng.choice(SIZES) if roll < 0.8 else rng.randint(0, 512)
    style = rng.random()
    if style < 0.3:  # no zeros: long COBS blocks
        return bytes(rng.randint(1, 255) for _ in range(n))
    if style < 0.5:  # mostly zeros
        return bytes(0 if rng.random() < 0.8 else rng.randint(1, 255) for _ in range(n))
    return rng.randbytes(n)


def raw_frame(version: int, mtype: int, seq: int, length: int, payload: bytes) -> bytes:
    packet = p.HEADER.pack(version, mtype, seq, length) + payload
    return cobs.encode(packet + p.CRC.pack(p.crc16(packet))) + b"\x00"


def mutate(rng: random.Random, wire: bytes) -> bytes:
    kind = rng.random()
    if kind < 0.35:  # bit flips that keep the delimiter structure
        b = bytearray(wire)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b) - 1)
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if kind < 0.5:  # truncated, then a delimiter
        return wire[: rng.randrange(1, len(wire))] + b"\x00"
    if kind < 0.6:  # two frames glued (the delimiter lost)
        return wire[:-1] + wire
    if kind < 0.75:  # garbage before
        return rng.randbytes(rng.randint(1, 40)) + b"\x00" * rng.randint(0, 1) + wire
    if kind < 0.85:  # a lone delimiter or several
        return b"\x00" * rng.randint(1, 3) + wire
    return wire[:-1] + rng.randbytes(rng.randint(1, 8)).replace(b"\x00", b"\x01") + b"\x00"


def cases(seed: int, count: int):
    """(encode request or None, bytes for the decoder) per random frame."""
    rng = random.Random(seed)
    types = [int(t) for t in p.MsgType] + [0x00, 0x7E, 0xFF]
    seq = rng.randrange(0x10000)
    for _ in range(count):
        mtype = rng.choice(types)
        step = rng.random()
        seq = (
            seq + (1 if step < 0.8 else rng.randint(2, 5) if step < 0.9 else -rng.randint(1, 99))
        ) & 0xFFFF
        if step > 0.98:
            seq = 0  # a sender restarting
        roll = rng.random()
        if roll < 0.04:  # header fields a correct encoder never writes, with a valid CRC
            payload = rng.randbytes(rng.choice((4, 513, 520)) if rng.random() < 0.5 else 4)
            version = rng.choice((1, 0, 2, 255))
            length = len(payload) + rng.choice((0, 0, 1, -1))
            yield None, raw_frame(version, mtype, seq, max(0, length) & 0xFFFF, payload)
            continue
        if roll < 0.05:  # over-long run without a delimiter
            yield None, bytes(rng.randint(1, 255) for _ in range(rng.randint(520, 1100))) + b"\x00"
            continue
        payload = random_payload(rng, mtype)
        wire = p.Frame(mtype, seq, payload).encode()
        yield (mtype, seq, payload), (mutate(rng, wire) if roll < 0.35 else wire)


def run_differential(codec_path, seed: int, count: int) -> int:
    """Returns the number of frames compared; fails on the first mismatch with its details."""
    lines, expected = [], []
    dec = StreamDecoder()
    for enc, data in cases(seed, count):
        if enc is not None:
            mtype, seq, payload = enc
            lines.append(f"E {mtype:x} {seq} {payload.hex() or '-'}")
            expected.append(f"W {p.Frame(mtype, seq, payload).encode().hex()}")
        lines.append(f"D {data.hex() or '-'}")
        before = dec.counters.unknown_types + dec.counters.payload_errors
        frames = dec.feed_frames(data)
        rejected = dec.counters.unknown_types + dec.counters.payload_errors - before
        got = [f"F {f.type} {f.seq} {f.payload.hex() or '-'}" for f, _ in frames]
        expected.append((got, rejected))
        c = dec.counters
        expected.append("C " + " ".join(str(getattr(c, k)) for k in COUNTERS))
    res = subprocess.run(
        [str(codec_path)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    )
    out = iter(res.stdout.splitlines())
    compared = 0
    for want in expected:
        if isinstance(want, tuple):
            good, rejected = want
            got_frames, got_rejected = [], 0
            for _ in range(len(good) + rejected):
                line = next(out)
                if line.startswith("R "):
                    got_rejected += 1
                else:
                    got_frames.append(line)
            assert (got_frames, got_rejected) == (good, rejected), f"frame {compared}"
            compared += 1
        else:
            line = next(out)
            assert line == want, f"after frame {compared}: C says {line[:200]}, Python {want[:200]}"
    assert next(out, None) is None
    return compared


def test_differential_fuzz_c_vs_python(codec):
    """100 000 random frames (about 10 s): 0 mismatches."""
    count = int(os.environ.get("EDGESPLIT_DIFF_FRAMES", "100000"))
    assert run_differential(codec, seed=14, count=count) == count


@pytest.mark.full
def test_differential_fuzz_more_seeds(codec):
    for seed in (1, 2, 3):
        assert run_differential(codec, seed=seed, count=300_000) == 300_000
