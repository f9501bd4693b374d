"""End to end: the compiled firmware binary on one side of a pty, the pyserial host on the other;
pyserial loop:// and socket:// transports; reconnection."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest
from edgesplit.device.audio.synth import Utterance, synthesize
from edgesplit.device.serial import protocol as p
from edgesplit.device.serial.firmware import FirmwareOnPty, firmware_binary
from edgesplit.device.serial.link import SensorLink
from edgesplit.device.serial.sensing import SensorRouter, write_feature_file
from edgesplit.device.workloads import kws


def collect(link: SensorLink, seconds: float) -> list[p.Message]:
    return [m for _, m in link.messages(seconds)]


def test_firmware_over_pty_streams_every_sensor():
    with FirmwareOnPty("--seed", "3", "--duration-ms", "6000") as fw:
        link = SensorLink(fw.port)
        msgs = collect(link, 3.0)
        kinds = {type(m) for m in msgs}
        assert isinstance(msgs[0], p.Hello) and msgs[0].mel_bands == 40
        assert {p.ImuBatch, p.AudioFeatures, p.Battery, p.Log} <= kinds
        assert link.counters.frames_dropped == 0 and link.counters.seq_gaps == 0
        imu = [m for m in msgs if isinstance(m, p.ImuBatch)]
        assert all(len(m.samples) == 10 and m.rate_hz == 50 for m in imu)
        # Gravity on the z axis: |a| is ~1000 mg while the head is still or nodding.
        az = np.array([s[2] for m in imu for s in m.samples])
        assert 700 < np.median(az) < 1100
        # Paced at 115200 baud: never more than 11 520 bytes/s on the wire.
        assert link.stats.bytes_received <= 11_520 * 3.5


def test_commands_get_ack_and_nack():
    with FirmwareOnPty("--duration-ms", "6000") as fw:
        link = SensorLink(fw.port)
        assert isinstance(link.command(p.Ping(1234)), p.Ack)
        assert isinstance(link.command(p.SetRate(p.Stream.IMU, 100)), p.Ack)
        nack = link.command(p.SetRate(p.Stream.AUDIO_FEATURES, 25))
        assert isinstance(nack, p.Nack) and nack.reason == p.Nack.BAD_VALUE
        collect(link, 0.5)
        imu = [m for m in collect(link, 0.6) if isinstance(m, p.ImuBatch)]
        assert imu and all(m.rate_hz == 100 for m in imu)
        stop = link.command(p.StopStream(0x1F))
        assert isinstance(stop, p.Ack)
        collect(link, 0.3)
        assert collect(link, 0.6) == []


def test_corrupted_frames_are_counted_and_skipped():
    with FirmwareOnPty("--duration-ms", "4000", "--corrupt-every", "5") as fw:
        link = SensorLink(fw.port)
        msgs = collect(link, 2.5)
    c = link.counters
    assert c.frames_dropped >= 5
    assert c.frames_ok == len(msgs)
    assert c.seq_gaps >= 5  # each dropped frame leaves a gap in the sequence numbers
    # ~1 in 5 frames is corrupted; all others arrive intact.
    assert 0.1 < c.frames_dropped / (c.frames_dropped + c.frames_ok) < 0.3


def test_mcu_audio_features_drive_keyword_spotting(tmp_path):
    """Speech -> the MCU's log-mel front end (replayed by the firmware) -> UART -> host MFCC ->
    KWS: the same word comes out the other end."""
    audio = np.zeros(16_000, np.float32)
    speech = synthesize(Utterance("stop", "en-gb", "m3"))
    audio[2000 : 2000 + speech.size] = 0.6 * speech / np.abs(speech).max()
    features = tmp_path / "stop.mel"
    assert write_feature_file(features, audio) == 49
    spotter = kws.KeywordSpotter(kws.model_path("fp32"))
    heard = []
    router = SensorRouter(
        on_audio_window=lambda mfcc: heard.append(spotter.classify_mfcc(mfcc)), hop_frames=49
    )
    with FirmwareOnPty("--features", str(features), "--duration-ms", "3000") as fw:
        link = SensorLink(fw.port)
        for m in collect(link, 1.6):
            router.handle(m)
    assert heard and heard[0].label == "stop"
    direct = spotter.classify(audio)
    assert direct.label == "stop"


def test_loop_transport():
    link = SensorLink("loop://", read_timeout_s=0.01)
    link.send(p.Ping(99))
    assert collect(link, 0.1) == [p.Ping(99)]


class FrameServer:
    """A loopback TCP server that sends one PING per 20 ms to whoever connects."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(5)
        self.conn: socket.socket | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seq = 0
        deadline = time.monotonic() + 20
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conn = conn
            try:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    conn.sendall(p.encode_message(p.Ping(seq), seq & 0xFFFF))
                    seq += 1
                    time.sleep(0.02)
            except OSError:
                pass
            finally:
                conn.close()

    def drop_client(self) -> None:
        if self.conn:
            self.conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=5)


def test_socket_transport_reconnects_after_the_port_goes_away():
    server = FrameServer()
    try:
        link = SensorLink(f"socket://127.0.0.1:{server.port}", reconnect_interval_s=0.1)
        assert len(collect(link, 0.5)) >= 5
        server.drop_client()
        after = collect(link, 1.5)
        assert link.stats.reconnects >= 1
        assert len(after) >= 5  # traffic flows again on the new connection
    finally:
        server.close()


def test_no_reconnect_raises_a_clear_error():
    server = FrameServer()
    try:
        link = SensorLink(f"socket://127.0.0.1:{server.port}", reconnect=False)
        collect(link, 0.2)
        server.drop_client()
        with pytest.raises(ConnectionError, match="went away"):
            collect(link, 1.0)
    finally:
        server.close()


def test_firmware_rejects_bad_arguments():
    import subprocess

    res = subprocess.run([str(firmware_binary()), "--baud", "12"], capture_output=True, text=True)
    assert res.returncode == 2 and "--port PATH or --stdio" in res.stderr
    res = subprocess.run(
        [str(firmware_binary()), "--stdio", "--baud", "12"], capture_output=True, text=True
    )
    assert res.returncode == 2 and "1200..4000000" in res.stderr


def test_button_press_triggers_a_glasses_capture(ocr_workload):
    """A BUTTON press from the MCU makes the glasses capture a frame and read it."""
    from edgesplit.device.vision.render import render_frame
    from edgesplit.device.workloads import ocr

    pipe = ocr.OcrPipeline(ocr.model_paths("int8"))
    frame = render_frame(21)
    readings = []
    router = SensorRouter(on_button_press=lambda msg: readings.append((msg, pipe(frame.image))))
    with FirmwareOnPty("--seed", "5", "--duration-ms", "8000") as fw:
        link = SensorLink(fw.port)
        end = time.monotonic() + 7
        while not readings and time.monotonic() < end:
            for _, m in link.poll():
                router.handle(m)
    assert readings, "no button press within 7 s"
    press, result = readings[0]
    assert press.event == p.Button.PRESS
    assert result.text.replace(" ", "") == frame.text.replace(" ", "")


def test_listen_cli_with_firmware(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "listen.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesplit.cli",
            "device",
            "listen",
            "--firmware",
            "--duration",
            "2",
            "--headless",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc["messages"]["Hello"] == 1 and doc["messages"]["ImuBatch"] >= 5
    assert doc["counters"]["frames_dropped"] == 0
    bad = subprocess.run(
        [sys.executable, "-m", "edgesplit.cli", "device", "listen", "--port", "/dev/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "cannot open /dev/nonexistent" in bad.stderr


def test_listen_cli_forwarder_format(tmp_path):
    """Edge Impulse data-forwarder lines over socket:// are parsed; bad lines are counted."""
    import json
    import subprocess
    import sys

    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve() -> None:
        srv.settimeout(10)
        conn, _ = srv.accept()
        with conn:
            for i in range(50):
                conn.sendall(b"oops,line\n" if i == 10 else f"{i},{i * 0.5},-9.81\r\n".encode())
                time.sleep(0.005)
            time.sleep(1.5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    out = tmp_path / "fwd.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgesplit.cli",
            "device",
            "listen",
            "--forwarder",
            "--port",
            f"socket://127.0.0.1:{port}",
            "--duration",
            "1.5",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    thread.join(timeout=5)
    srv.close()
    assert res.returncode == 0, res.stderr
    doc = json.loads(out.read_text())
    assert doc == {
        "port": f"socket://127.0.0.1:{port}",
        "samples": 49,
        "axes": 3,
        "bad_lines": 1,
        "latest": [49.0, 24.5, -9.81],
    }
