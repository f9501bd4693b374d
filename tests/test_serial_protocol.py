"""The Python side of the sensor link against the shared test vectors, plus fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgesplit.device.serial import protocol as p
from edgesplit.device.serial.decoder import StreamDecoder
from edgesplit.device.serial.forwarder import ForwarderDecoder, ForwarderError, parse_forwarder_line
from hypothesis import given, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).resolve().parents[1] / "firmware_stubs" / "protocol" / "vectors.txt"


def load_vectors():
    rows = []
    for line in VECTORS.read_text().splitlines():
        if line and not line.startswith(("#", "!")):
            name, mtype, seq, payload, wire = line.split()
            payload_bytes = b"" if payload == "-" else bytes.fromhex(payload)
            rows.append((name, int(mtype, 16), int(seq), payload_bytes, bytes.fromhex(wire)))
    return rows


@pytest.mark.parametrize("name,mtype,seq,payload,wire", load_vectors())
def test_vectors_encode_and_decode(name, mtype, seq, payload, wire):
    assert p.Frame(mtype, seq, payload).encode() == wire, name
    frame = p.decode_frame(wire)
    assert (frame.type, frame.seq, frame.payload) == (mtype, seq, payload)


def load_stream_vectors():
    rows = []
    for line in VECTORS.read_text().splitlines():
        if line.startswith("!"):
            name, wire, counters = line[1:].split()
            want = {k: int(v) for k, v in (kv.split("=") for kv in counters.split(","))}
            rows.append((name, bytes.fromhex(wire), want))
    return rows


@pytest.mark.parametrize("name,wire,want", load_stream_vectors())
def test_stream_vectors_counters(name, wire, want):
    """Every receiver counter ends where the shared vector says (the C tests check the same)."""
    for chunk in (len(wire), 1, 7):  # the counting does not depend on how bytes arrive
        dec = StreamDecoder()
        for i in range(0, len(wire), chunk):
            dec.feed(wire[i : i + chunk])
        got = {k: v for k, v in dec.counters.to_dict().items() if k in want}
        assert got == want, (name, chunk)


def test_vectors_cover_every_counter_and_the_cobs_edges():
    names = {row[0] for row in load_vectors()}
    assert {"cobs_run_254", "cobs_run_255", "cobs_run_508", "max_payload"} <= names
    streams = load_stream_vectors()
    assert any(name == "payload_513" for name, _, _ in streams)
    for counter in streams[0][2]:
        assert any(want[counter] > 0 for _, _, want in streams), counter


def test_vector_messages_round_trip():
    for name, mtype, _, payload, _ in load_vectors():
        if mtype in p.MESSAGE_CLASSES and name not in ("zeros_payload", "max_payload"):
            msg = p.parse_message(p.Frame(mtype, 0, payload))
            assert msg.pack() == payload, name


def test_crc_check_value():
    assert p.crc16(b"123456789") == 0x29B1


def test_every_corruption_of_a_frame_is_rejected_and_counted():
    wire = p.encode_message(p.Battery(60000, 3812, 731, 0, -45), 3)
    for i in range(len(wire) - 1):
        for bit in range(8):
            bad = bytearray(wire)
            bad[i] ^= 1 << bit
            dec = StreamDecoder()
            msgs = dec.feed(bytes(bad) + wire)  # the good copy after it must still arrive
            if msgs and msgs[0][1] != p.Battery(60000, 3812, 731, 0, -45):
                pytest.fail(f"corruption at byte {i} bit {bit} was accepted")
            assert msgs[-1][1] == p.Battery(60000, 3812, 731, 0, -45)
            c = dec.counters
            if len(msgs) == 1:
                assert c.frames_dropped + c.length_errors >= 1 or c.bytes_discarded > 0


def test_bad_payload_size_is_counted():
    dec = StreamDecoder()
    wire = p.Frame(int(p.MsgType.BATTERY), 0, b"\x01\x02").encode()
    assert dec.feed(wire) == [] and dec.counters.payload_errors == 1


def test_sequence_gaps_are_counted_not_dropped():
    dec = StreamDecoder()
    data = b"".join(p.encode_message(p.Ping(i), seq) for i, seq in enumerate([0, 1, 5, 6]))
    assert len(dec.feed(data)) == 4
    assert dec.counters.seq_gaps == 1


def test_each_bad_frame_is_counted_once():
    """An unknown-type frame is one unknown_types, not also a sequence gap; a corrupted frame is one
    framing error, and the hole it leaves in the sequence is not counted again."""
    dec = StreamDecoder()
    unknown = p.Frame(0x7E, 1, b"\x01").encode()
    bad_crc = bytearray(p.encode_message(p.Ping(3), 3))
    bad_crc[6] ^= 0x10
    stream = (
        p.encode_message(p.Ping(0), 0)
        + unknown
        + p.encode_message(p.Ping(2), 2)
        + bytes(bad_crc)
        + p.encode_message(p.Ping(4), 4)
    )
    assert [m.nonce for _, m in dec.feed(stream)] == [0, 2, 4]
    c = dec.counters
    assert (c.unknown_types, c.seq_gaps, c.frames_dropped) == (1, 0, 2)


def test_reboot_is_a_seq_reset_not_a_gap():
    dec = StreamDecoder()
    hello = p.Hello(1, 1, 1, 0, p.ALL_STREAMS, 50, 50, 40)
    dec.feed(b"".join(p.encode_message(p.Ping(i), 100 + i) for i in range(3)))
    dec.feed(p.encode_message(hello, 0))
    assert (dec.counters.seq_gaps, dec.counters.seq_resets) == (0, 1)


def test_oversized_garbage_then_resync():
    dec = StreamDecoder()
    good = p.encode_message(p.Ping(7), 0)
    assert dec.feed(b"\x55" * 5000 + b"\x00" + good) == [(0, p.Ping(7))]
    assert dec.counters.length_errors == 1 and dec.counters.bytes_discarded >= 5000


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_fuzz_random_bytes_never_crash_and_never_pass_bad_crc(data, chunk):
    dec = StreamDecoder()
    out = []
    for i in range(0, len(data), chunk):
        out += dec.feed(data[i : i + chunk])
    for body in data.split(b"\x00")[:-1]:
        if body:
            try:
                p.decode_frame(body)
            except p.ProtocolError:
                continue
    c = dec.counters
    assert c.frames_ok == len(out)
    # Every message the decoder accepted re-encodes to a frame whose CRC verifies.
    for seq, msg in out:
        assert p.decode_frame(p.encode_message(msg, seq)).seq == seq


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=0xFFFFFFFF), min_size=1, max_size=20),
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=97),
)
def test_fuzz_frames_survive_interleaved_garbage(nonces, garbage, chunk):
    """Valid frames separated by garbage (+ a delimiter) all arrive, in any chunking."""
    stream = b""
    for seq, n in enumerate(nonces):
        stream += garbage + b"\x00" + p.encode_message(p.Ping(n), seq)
    dec = StreamDecoder()
    got = []
    for i in range(0, len(stream), chunk):
        got += dec.feed(stream[i : i + chunk])
    assert [m.nonce for _, m in got if isinstance(m, p.Ping)][-len(nonces) :] == nonces


def test_message_field_errors():
    with pytest.raises(ValueError, match="maximum is 512"):
        p.Frame(1, 0, bytes(600)).encode()
    with pytest.raises(p.ProtocolError, match="size disagrees"):
        p.ImuBatch.unpack(p.ImuBatch(0, 50, ((1, 2, 3, 4, 5, 6),)).pack()[:-2])


def test_forwarder_format():
    assert parse_forwarder_line(b"0.12,-9.81,0.4\r\n") == (0.12, -9.81, 0.4)
    assert parse_forwarder_line("1\t2 3") == (1.0, 2.0, 3.0)
    with pytest.raises(ForwarderError, match="non-number"):
        parse_forwarder_line("1,abc,3")
    dec = ForwarderDecoder()
    samples = dec.feed(b"1,2,3\n4,5") + dec.feed(b",6\nbad\n7,8\n9,10,11\n")
    assert samples == [(1, 2, 3), (4, 5, 6), (9, 10, 11)]
    assert dec.bad_lines == 2 and dec.axes == 3


def test_forwarder_axis_count_needs_agreeing_lines():
    """A line cut when the port opened mid-line ("5,-9.81") must not fix the axis count."""
    dec = ForwarderDecoder()
    data = b"5,-9.81\r\n" + b"".join(f"{i},{i / 2}\t-9.81\r\n".encode() for i in range(10))
    samples = dec.feed(data)
    assert dec.axes == 3 and len(samples) == 10 and dec.bad_lines == 1
    assert samples[0] == (0.0, 0.0, -9.81)


def test_forwarder_follows_a_sender_that_changes_its_axes():
    dec = ForwarderDecoder()
    dec.feed(b"1,2,3\n" * 5)
    assert dec.axes == 3
    out = dec.feed(b"1,2,3,4\n" * ForwarderDecoder.REDETECT_LINES)
    assert dec.axes == 4 and dec.axes_changes == 1 and len(out) == ForwarderDecoder.REDETECT_LINES


def test_forwarder_sampling_frequency_is_estimated_across_reconnects():
    dec = ForwarderDecoder()
    for i in range(30):  # 100 Hz
        dec.feed(b"1,2,3\r\n", now=10.0 + i / 100)
    assert dec.sampling_frequency_hz == 100.0
    dec.reconnected()  # the sender was away for 5 s: that gap is not a sampling interval
    for i in range(30):
        dec.feed(b"1,2,3\r\n", now=15.0 + i / 100)
    assert dec.sampling_frequency_hz == 100.0
    assert ForwarderDecoder(frequency_hz=62.5).sampling_frequency_hz == 62.5
    with pytest.raises(ForwarderError, match="positive"):
        ForwarderDecoder(frequency_hz=0)


def _hello(device_id: int, uptime_ms: int, reason: int = p.Hello.PERIODIC) -> p.Hello:
    return p.Hello(device_id, 1, 1, 0, p.ALL_STREAMS, 50, 50, 40, p.ALL_STREAMS, uptime_ms, reason)


def _status(uptime_ms: int, offered: int, dropped: int) -> p.Status:
    return p.Status(
        uptime_ms, 900, 1800, 156, 5760, offered, dropped, dropped * 100, 0, 0, 0, 0, 1000
    )


def test_link_tracks_the_board_reboots_and_overload():
    """Over pyserial's loop:// (what the link sends comes back), the link's bookkeeping: the board
    from HELLO, a reboot from uptime going backwards (even without a sequence reset), a different
    board, and one warning per over-subscription episode."""
    from edgesplit.device.serial.link import SensorLink

    link = SensorLink("loop://", read_timeout_s=0.01, ask_info=False)

    def deliver(*msgs: p.Message) -> None:
        for m in msgs:
            link.send(m)
        for _ in range(5):
            link.poll()

    deliver(_hello(0xAA, 5_000), _status(6_000, 5_000, 0))
    assert link.board is not None and link.board.uptime_ms == 6_000
    deliver(_status(7_000, 8_000, 12), _status(8_000, 8_000, 20))
    assert link.stats.oversubscribed and link.stats.tx_dropped_frames == 20
    deliver(_status(9_000, 4_000, 20))
    assert not link.stats.oversubscribed
    deliver(_hello(0xAA, 150, p.Hello.BOOT))
    assert link.stats.reboots == 1 and link.board.uptime_ms == 150
    deliver(_hello(0xBB, 99_000))
    kinds = [e.kind for e in link.events]
    assert kinds == ["board", "oversubscribed", "recovered", "reboot", "new_board"]
    assert "uptime was 9.0 s, now 0.1 s" in link.events[3].message
    assert "5000 B/s offered" not in link.events[1].message and "8000 B/s" in link.events[1].message
