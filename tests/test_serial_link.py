"""End to end: the compiled firmware binary on one side of a pty, the pyserial host on the other;
pyserial loop:// and socket:// transports; reconnection."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from edgesplit.device.audio.synth import Utterance, synthesize
from edgesplit.device.serial import protocol as p
from edgesplit.device.serial.decoder import StreamDecoder
from edgesplit.device.serial.firmware import FirmwareOnPty, firmware_binary
from edgesplit.device.serial.link import SensorLink
from edgesplit.device.serial.sensing import SensorRouter, write_feature_file
from edgesplit.device.workloads import kws


def collect(link: SensorLink, seconds: float) -> list[p.Message]:
    return [m for _, m in link.messages(seconds)]


def test_firmware_over_pty_streams_every_sensor():
    with FirmwareOnPty("--seed", "3", "--duration-ms", "8000") as fw:
        link = SensorLink(fw.port)
        # The boot HELLO may be gone before the port opens; the link asks with GET_INFO.
        board = link.wait_for_board(timeout_s=5)
        assert board.hello.mel_bands == 40 and board.hello.device_id == 0xE5E5_0001
        msgs = collect(link, 3.0)
        kinds = {type(m) for m in msgs}
        assert {p.ImuBatch, p.AudioFeatures, p.Battery, p.Status} <= kinds
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
        stop = link.command(p.StopStream(p.ALL_STREAMS))
        assert isinstance(stop, p.Ack)
        collect(link, 0.3)
        assert collect(link, 0.6) == []


def test_host_opened_late_still_knows_the_board():
    """pyserial discards what arrived before the port opened (the boot HELLO among it): a host
    that opens the port 1 s after the firmware started still learns the board's identity."""
    with FirmwareOnPty("--duration-ms", "8000", "--device-id", "C0FFEE01") as fw:
        time.sleep(1.0)  # the scenario itself: the host comes up late
        link = SensorLink(fw.port)
        board = link.wait_for_board(timeout_s=5)
        h = board.hello
        assert (h.device_id, h.fw_version, h.mel_bands, h.audio_frames_per_s) == (
            0xC0FFEE01,
            "1.1.0",
            40,
            50,
        )
        assert h.capabilities == p.ALL_STREAMS and h.imu_rate_hz == 50
        # Not the boot HELLO (that one was discarded) but the answer to GET_INFO; the uptime is
        # a little under 1 s when exec() of the firmware was slow on a loaded machine.
        assert h.reason in (p.Hello.REQUESTED, p.Hello.PERIODIC)
        assert board.uptime_ms >= 500
        assert [e.kind for e in link.events] == ["board"]


def test_firmware_restart_is_reported_as_a_reboot():
    """The board resets behind an open port: the host reports a reboot with the uptimes, and
    the sequence restart is neither a gap nor lost frames."""
    with FirmwareOnPty("--duration-ms", "20000") as fw:
        link = SensorLink(fw.port)
        link.wait_for_board(timeout_s=5)
        collect(link, 1.5)
        fw.restart("--duration-ms", "20000", "--seed", "9")
        end = time.monotonic() + 10  # generous: a busy machine may start the process slowly
        while link.stats.reboots == 0 and time.monotonic() < end:
            link.poll()
        collect(link, 0.5)
    assert link.stats.reboots == 1
    reboot = [e for e in link.events if e.kind == "reboot"]
    assert len(reboot) == 1 and "rebooted: uptime was" in reboot[0].message
    assert link.board is not None and link.board.uptime_ms < 5000
    c = link.counters
    assert c.seq_resets >= 1 and c.seq_gaps == 0 and c.frames_dropped == 0


def test_overload_is_reported_with_lag_and_drops():
    """57 600 baud (5 760 B/s) with the IMU at 400 Hz on top of audio offers more than the line
    carries: the MCU drops whole frames from its TX queue (no corrupt frames), its STATUS says so,
    and the host warns once that the link is over-subscribed."""
    with FirmwareOnPty("--duration-ms", "12000", baud=57_600) as fw:
        link = SensorLink(fw.port, baud=57_600)
        link.wait_for_board(timeout_s=5)
        assert isinstance(link.command(p.SetRate(p.Stream.IMU, 400), timeout_s=3), p.Ack)
        end = time.monotonic() + 8
        while not link.stats.oversubscribed and time.monotonic() < end:
            link.poll()
        collect(link, 1.5)
    s = link.stats
    assert s.oversubscribed and s.tx_dropped_frames > 0
    assert s.line_bytes_per_s == 5_760 and s.offered_bytes_per_s > 5_760
    # The backlog is bounded by the 2 KiB TX ring: 2048 B / 5760 B/s = 356 ms at most.
    assert 0 < s.tx_lag_ms <= 360
    warnings = [e for e in link.events if e.kind == "oversubscribed"]
    assert len(warnings) == 1 and "over-subscribed" in warnings[0].message
    assert link.counters.frames_dropped == 0  # dropped before the wire, never cut on it
    assert link.counters.seq_gaps > 0  # ... and visible to the host as gaps


def test_corrupted_frames_are_counted_and_skipped():
    with FirmwareOnPty("--duration-ms", "4000", "--corrupt-every", "5") as fw:
        link = SensorLink(fw.port)
        msgs = collect(link, 2.5)
    c = link.counters
    assert c.frames_dropped >= 5
    assert c.frames_ok == len(msgs)
    # Each corrupted frame is counted once, as the error it is; the hole it leaves in the
    # sequence numbers is explained by that error, so it is not counted again as a gap.
    assert c.seq_gaps == 0
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
    link = SensorLink("loop://", read_timeout_s=0.01, ask_info=False)
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
    assert doc["messages"]["Hello"] >= 1 and doc["messages"]["ImuBatch"] >= 5
    assert doc["board"]["device_id"] == "e5e50001" and doc["board"]["fw"] == "1.1.0"
    assert doc["counters"]["frames_dropped"] == 0
    bad = subprocess.run(
        [sys.executable, "-m", "edgesplit.cli", "device", "listen", "--port", "/dev/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "cannot open /dev/nonexistent" in bad.stderr


def _listen_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edgesplit.cli", "device", "listen", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class StderrWatcher:
    """Reads a child's stderr in a thread; tests wait on the lines it prints (events, not
    sleeps)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(proc,), daemon=True)
        self._thread.start()

    def _run(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout_s: float = 30) -> None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: sum(text in line for line in self.lines) >= count, timeout_s
            )
        assert ok, f"no {text!r} from the CLI; stderr so far: {''.join(self.lines)}"

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


def test_listen_cli_forwarder_format(tmp_path):
    """Edge Impulse data-forwarder lines (their documented format: values separated by ',' or
    TAB, '\\r\\n' line ends) over socket://: a truncated first line does not fix the axis count,
    bad lines are counted, the sender disconnecting is survived by a reconnect, and the sampling
    frequency is estimated."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    out = tmp_path / "fwd.json"
    proc = _listen_cli(
        "--forwarder",
        "--port",
        f"socket://127.0.0.1:{port}",
        "--duration",
        "60",
        "--samples",
        "49",
        "--json",
        str(out),
    )
    watch = StderrWatcher(proc)

    def lines(first: int, last: int, ready: str) -> None:
        conn, _ = srv.accept()
        # pyserial drops what arrived before open() returned: send once the CLI says it is in.
        watch.wait_for(ready)
        with conn:
            if first == 0:
                conn.sendall(b"5,-9.81\r\n")  # the tail of a line cut when the port opened
            for i in range(first, last):
                sep = "\t" if i % 2 else ","
                line = f"{i}{sep}{i * 0.5}{sep}-9.81\r\n" if i != 10 else "oops,line\r\n"
                conn.sendall(line.encode())
                time.sleep(0.01)  # a sender at ~100 Hz

    srv.settimeout(30)
    try:
        lines(0, 25, "connected to")  # then the sender goes away
        lines(25, 50, "reconnected to")  # and comes back; the CLI reconnects on its own
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.close()
    stderr = watch.text()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "reconnected to" in stderr
    doc = json.loads(out.read_text())
    assert doc["samples"] == 49 and doc["axes"] == 3 and doc["reconnects"] == 1
    assert doc["bad_lines"] == 2  # the cut line and "oops,line"
    assert doc["latest"] == [49.0, 24.5, -9.81]
    # ~100 Hz sent; a loaded machine sleeps longer than asked, so only the order of magnitude
    # is checked here (the estimator itself is tested exactly with given arrival times).
    assert 10 < doc["sampling_frequency_hz"] < 150 and doc["frequency_source"] == "estimated"


def test_listen_cli_survives_a_20_band_audio_frame(tmp_path):
    """A valid AUDIO_FEATURES message with 20 bands (another front end) is shown and reported in
    one warning line; the CLI keeps going and writes its JSON."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    out = tmp_path / "listen.json"
    proc = _listen_cli(
        "--port", f"socket://127.0.0.1:{port}", "--duration", "3", "--headless", "--json", str(out)
    )
    watch = StderrWatcher(proc)
    srv.settimeout(30)
    try:
        conn, _ = srv.accept()
        with conn:
            # Answer the GET_INFO the host sends once its port is open, as a board would.
            dec = StreamDecoder()
            conn.settimeout(30)
            while not any(isinstance(m, p.GetInfo) for _, m in dec.feed(conn.recv(256))):
                pass
            hello = p.Hello(0xBEEF, 1, 1, 0, p.ALL_STREAMS, 50, 50, 20, 0x3F, 1000, 2)
            audio = p.AudioFeatures(100, 20, (tuple(range(20)),) * 5)
            conn.sendall(p.encode_message(hello, 0) + p.encode_message(audio, 1))
            proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.close()
    stderr = watch.text()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stderr.count("20 mel bands") == 1
    doc = json.loads(out.read_text())
    assert doc["messages"]["AudioFeatures"] == 1 and doc["audio_skipped"] == 1
    assert doc["board"]["mel_bands"] == 20
    assert any("20 mel bands" in w for w in doc["warnings"])
