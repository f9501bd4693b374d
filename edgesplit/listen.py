"""``edgesplit device listen``: live view of the sensor link (messages, counters, KWS)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from edgesplit.output import console, err_console, fail, write_json


def _describe(msg) -> str:
    from edgesplit.device.serial import protocol as p

    if isinstance(msg, p.ImuBatch):
        gy = max((abs(s[4]) for s in msg.samples), default=0) / 10
        gz = max((abs(s[5]) for s in msg.samples), default=0) / 10
        motion = "nod" if gy > 100 else "shake" if gz > 100 else "still"
        return f"t={msg.t_ms} ms {len(msg.samples)}@{msg.rate_hz} Hz, {motion}"
    if isinstance(msg, p.Battery):
        return f"{msg.millivolts} mV, {msg.soc_permille / 10:.1f} %, {msg.temp_decicelsius / 10} C"
    if isinstance(msg, p.Button):
        return f"t={msg.t_ms} ms button {msg.button} " + {1: "press", 2: "release", 3: "long"}.get(
            msg.event, str(msg.event)
        )
    if isinstance(msg, p.AudioFeatures):
        return f"t={msg.t_ms} ms {len(msg.values)} frames x {msg.bands} bands"
    if isinstance(msg, p.Log):
        return f"[{msg.level}] {msg.text}"
    if isinstance(msg, p.Hello):
        return f"board {msg.device_id:08x} fw {msg.fw_version}, up {msg.uptime_ms / 1000:.1f} s"
    if isinstance(msg, p.Status):
        return (
            f"TX lag {msg.tx_lag_ms} ms, {msg.offered_bytes_per_s}/{msg.line_bytes_per_s} B/s, "
            f"{msg.tx_dropped_frames} dropped"
        )
    return repr(msg)[:70]


def _board_doc(link) -> dict | None:
    if link.board is None:
        return None
    h = link.board.hello
    return {
        "device_id": f"{h.device_id:08x}",
        "fw": h.fw_version,
        "uptime_ms": link.board.uptime_ms,
        "imu_rate_hz": h.imu_rate_hz,
        "audio_frames_per_s": h.audio_frames_per_s,
        "mel_bands": h.mel_bands,
        "streams": h.streams,
    }


def _link_doc(link) -> dict:
    s = link.stats
    return {
        "tx_lag_ms": s.tx_lag_ms,
        "host_lag_ms": round(s.host_lag_ms, 1),
        "host_backlog_bytes": s.host_backlog_bytes,
        "tx_dropped_frames": s.tx_dropped_frames,
        "offered_bytes_per_s": s.offered_bytes_per_s,
        "line_bytes_per_s": s.line_bytes_per_s,
        "oversubscribed": s.oversubscribed,
        "reboots": s.reboots,
    }


def _view(link, last: dict, keyword: str, warnings: list[str]) -> Table:
    table = Table(title=f"sensor link {link.url} ({'up' if link.connected else 'reconnecting'})")
    table.add_column("message")
    table.add_column("count", justify="right")
    table.add_column("latest")
    board = _board_doc(link)
    s = link.stats
    table.add_row(
        "[bold]board[/]",
        f"{s.reboots} reboots",
        f"{board['device_id']} fw {board['fw']}, up {board['uptime_ms'] / 1000:.1f} s"
        if board
        else "unknown (asked with GET_INFO)",
    )
    lag = (
        f"MCU TX lag {s.tx_lag_ms} ms, host lag {s.host_lag_ms:.0f} ms "
        f"(backlog {s.host_backlog_bytes} B)"
    )
    if s.line_bytes_per_s:
        lag += f", {s.offered_bytes_per_s}/{s.line_bytes_per_s} B/s offered/line"
    style = "[bold red]" if s.oversubscribed else "[bold]"
    table.add_row(f"{style}link[/]", f"{s.tx_dropped_frames} dropped", lag)
    for text in warnings[-3:]:
        table.add_row("[yellow]warning[/]", "", text)
    for name, count in sorted(link.stats.messages.items()):
        table.add_row(name, str(count), last.get(name, ""))
    for key, value in link.counters.to_dict().items():
        table.add_row(f"[dim]{key}[/]", str(value), "")
    table.add_row("[dim]bytes_received[/]", str(link.stats.bytes_received), "")
    table.add_row("[dim]reconnects[/]", str(link.stats.reconnects), "")
    if keyword:
        table.add_row("[bold]KWS on MCU audio[/]", "", keyword)
    return table


def listen_command(
    port: Annotated[
        str | None,
        typer.Option(help="serial port or pyserial URL: /dev/ttyACM0, loop://, socket://h:p"),
    ] = None,
    baud: Annotated[int, typer.Option(min=1200, help="bits/s (8N1)")] = 115_200,
    duration: Annotated[float, typer.Option(min=0, help="seconds to listen; 0 = until Ctrl-C")] = 0,
    firmware: Annotated[
        bool, typer.Option(help="start the compiled firmware stub on a pty and listen to it")
    ] = False,
    target: Annotated[
        str,
        typer.Option(help="--firmware build: posix (on a pty) or cortex-m4 (under QEMU)"),
    ] = "posix",
    frequency: Annotated[
        float | None,
        typer.Option(min=0.001, help="--forwarder: sampling frequency in Hz (default: estimated)"),
    ] = None,
    samples: Annotated[
        int, typer.Option(min=0, help="--forwarder: stop after this many samples (0 = no limit)")
    ] = 0,
    kws: Annotated[bool, typer.Option(help="run keyword spotting on MCU audio features")] = False,
    forwarder: Annotated[
        bool, typer.Option(help="the port speaks the Edge Impulse data-forwarder text format")
    ] = False,
    headless: Annotated[bool, typer.Option(help="no live view")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write counters + counts")] = None,
) -> None:
    """Show the incoming sensor stream and the link's error counters."""
    from edgesplit.device.errors import EdgesplitError
    from edgesplit.device.serial.firmware import FirmwareOnPty, FirmwareOnQemu
    from edgesplit.device.serial.link import SensorLink
    from edgesplit.device.serial.sensing import SensorRouter

    if (port is None) == (not firmware):
        fail("give --port PORT, or --firmware to listen to the bundled firmware stub")
    if forwarder:
        if firmware:
            fail("--forwarder reads text lines from --port; the firmware stub speaks frames")
        assert port is not None
        return _listen_forwarder(port, baud, duration, json_out, frequency, samples, headless)
    if target not in ("posix", "cortex-m4"):
        fail(f"--target {target!r}: expected posix or cortex-m4")
    if target == "cortex-m4" and baud != 115_200:
        fail(f"--baud {baud}: the cortex-m4 image runs its UART at 115200 bits/s")
    fw: FirmwareOnPty | FirmwareOnQemu | None = None
    try:
        if firmware:
            fw = FirmwareOnPty(baud=baud) if target == "posix" else FirmwareOnQemu()
            port = fw.port
        assert port is not None
        link = SensorLink(port, baud=baud)
    except (EdgesplitError, OSError, ValueError) as exc:
        fail(f"cannot open {port}: {exc}")
    keyword = ""
    last: dict[str, str] = {}
    spotter = None
    if kws:
        from edgesplit.device.workloads import kws as kws_workload

        spotter = kws_workload.KeywordSpotter(kws_workload.model_path("fp32"))

    def on_window(mfcc):
        nonlocal keyword
        assert spotter is not None
        res = spotter.classify_mfcc(mfcc)
        keyword = f"{res.label} ({res.confidence:.2f})"

    router = SensorRouter(on_audio_window=on_window if spotter else None)
    warnings: list[str] = []
    seen_events = 0

    def report() -> None:
        # Link events (board, reboot, over-subscription) and router warnings: one line each, once.
        nonlocal seen_events
        for event in link.events[seen_events:]:
            text = event.message
            if event.kind in ("oversubscribed", "reboot", "new_board"):
                warnings.append(text)
            err_console.print(("[yellow]warning:[/] " if event.kind != "board" else "") + text)
        seen_events = len(link.events)
        for text in router.warnings:
            if text not in warnings:
                warnings.append(text)
                err_console.print(f"[yellow]warning:[/] {text}")

    end = time.monotonic() + duration if duration else float("inf")
    try:
        with Live(
            _view(link, last, keyword, warnings),
            console=console,
            refresh_per_second=4,
            transient=headless,
        ) as live:
            while time.monotonic() < end:
                for _, msg in link.poll():
                    last[type(msg).__name__] = _describe(msg)
                    router.handle(msg)
                report()
                if not headless:
                    live.update(_view(link, last, keyword, warnings))
    except KeyboardInterrupt:
        pass
    finally:
        console.print(_view(link, last, keyword, warnings))
        link.close()
        if fw:
            fw.stop()
    if json_out:
        write_json(
            json_out,
            {
                "port": port,
                "counters": link.counters.to_dict(),
                "messages": dict(link.stats.messages),
                "bytes_received": link.stats.bytes_received,
                "reconnects": link.stats.reconnects,
                "board": _board_doc(link),
                "link": _link_doc(link),
                "events": [e.message for e in link.events],
                "warnings": warnings,
                "audio_skipped": router.audio_skipped,
                "latest": last,
                "keyword": keyword,
            },
        )


def _listen_forwarder(
    port: str,
    baud: int,
    duration: float,
    json_out: Path | None,
    frequency: float | None,
    max_samples: int,
    headless: bool,
) -> None:
    """Edge Impulse data-forwarder lines: samples, axes, sampling frequency and malformed lines;
    a sender that goes away is waited for and reconnected to (one line each, no traceback)."""
    import serial

    from edgesplit.device.serial.forwarder import ForwarderDecoder

    def connect():
        return serial.serial_for_url(port, baudrate=baud, timeout=0.05)

    try:
        ser = connect()
    except (OSError, ValueError, serial.SerialException) as exc:
        fail(f"cannot open {port}: {exc}")
    err_console.print(f"connected to {port}")
    dec, reconnects = ForwarderDecoder(frequency), 0
    latest: tuple[float, ...] = ()
    end = time.monotonic() + duration if duration else float("inf")
    try:
        while time.monotonic() < end and not (max_samples and dec.samples >= max_samples):
            if ser is None:
                try:
                    ser = connect()
                except (OSError, ValueError, serial.SerialException):
                    time.sleep(0.25)  # the sender is not back yet; try again shortly
                    continue
                dec.reconnected()
                reconnects += 1
                err_console.print(f"reconnected to {port}")
                continue
            try:
                data = ser.read(max(1, ser.in_waiting))
            except (OSError, serial.SerialException) as exc:
                err_console.print(f"[yellow]warning:[/] {port} went away ({exc}); reconnecting")
                ser.close()
                ser = None
                continue
            samples = dec.feed(data)
            if samples:
                latest = samples[-1]
    except KeyboardInterrupt:
        pass
    finally:
        if ser is not None:
            ser.close()
    doc = {
        "port": port,
        "samples": dec.samples,
        "axes": dec.axes,
        "bad_lines": dec.bad_lines,
        "sampling_frequency_hz": dec.sampling_frequency_hz,
        "frequency_source": "given" if frequency else "estimated",
        "reconnects": reconnects,
        "latest": list(latest),
    }
    table = Table(title=f"Edge Impulse forwarder stream on {port}", show_header=False)
    for key, value in doc.items():
        table.add_row(key, str(value))
    console.print(table)
    if json_out:
        write_json(json_out, doc)
