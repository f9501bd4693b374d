"""``edgesplit device listen``: live view of the sensor link (messages, counters, KWS)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from edgesplit.output import console, fail, write_json


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
    return repr(msg)[:70]


def _view(link, last: dict, keyword: str) -> Table:
    table = Table(title=f"sensor link {link.url} ({'up' if link.connected else 'reconnecting'})")
    table.add_column("message")
    table.add_column("count", justify="right")
    table.add_column("latest")
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
    kws: Annotated[bool, typer.Option(help="run keyword spotting on MCU audio features")] = False,
    forwarder: Annotated[
        bool, typer.Option(help="the port speaks the Edge Impulse data-forwarder text format")
    ] = False,
    headless: Annotated[bool, typer.Option(help="no live view")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="write counters + counts")] = None,
) -> None:
    """Show the incoming sensor stream and the link's error counters."""
    from edgesplit.device.errors import EdgesplitError
    from edgesplit.device.serial.firmware import FirmwareOnPty
    from edgesplit.device.serial.link import SensorLink
    from edgesplit.device.serial.sensing import SensorRouter

    if (port is None) == (not firmware):
        fail("give --port PORT, or --firmware to listen to the bundled firmware stub")
    if forwarder:
        if firmware:
            fail("--forwarder reads text lines from --port; the firmware stub speaks frames")
        return _listen_forwarder(port, baud, duration, json_out)
    fw = None
    try:
        if firmware:
            fw = FirmwareOnPty(baud=baud)
            port = fw.port
        link = SensorLink(port, baud=baud)
    except (EdgesplitError, OSError, ValueError) as exc:
        fail(f"cannot open {port}: {exc}")
    keyword, last = "", {}
    spotter = None
    if kws:
        from edgesplit.device.workloads import kws as kws_workload

        spotter = kws_workload.KeywordSpotter(kws_workload.model_path("fp32"))

    def on_window(mfcc):
        nonlocal keyword
        res = spotter.classify_mfcc(mfcc)
        keyword = f"{res.label} ({res.confidence:.2f})"

    router = SensorRouter(on_audio_window=on_window if spotter else None)
    end = time.monotonic() + duration if duration else float("inf")
    try:
        with Live(
            _view(link, last, keyword), console=console, refresh_per_second=4, transient=headless
        ) as live:
            while time.monotonic() < end:
                for _, msg in link.poll():
                    last[type(msg).__name__] = _describe(msg)
                    router.handle(msg)
                if not headless:
                    live.update(_view(link, last, keyword))
    except KeyboardInterrupt:
        pass
    finally:
        console.print(_view(link, last, keyword))
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
                "latest": last,
                "keyword": keyword,
            },
        )


def _listen_forwarder(port: str, baud: int, duration: float, json_out: Path | None) -> None:
    """Edge Impulse data-forwarder lines: count samples and malformed lines, show the latest."""
    import serial

    from edgesplit.device.serial.forwarder import ForwarderDecoder

    try:
        ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05)
    except (OSError, ValueError, serial.SerialException) as exc:
        fail(f"cannot open {port}: {exc}")
    dec, latest = ForwarderDecoder(), ()
    end = time.monotonic() + duration if duration else float("inf")
    try:
        while time.monotonic() < end:
            samples = dec.feed(ser.read(max(1, ser.in_waiting)))
            if samples:
                latest = samples[-1]
    except KeyboardInterrupt:
        pass
    finally:
        ser.close()
    doc = {
        "port": port,
        "samples": dec.samples,
        "axes": dec.axes,
        "bad_lines": dec.bad_lines,
        "latest": list(latest),
    }
    table = Table(title=f"Edge Impulse forwarder stream on {port}", show_header=False)
    for key, value in doc.items():
        table.add_row(key, str(value))
    console.print(table)
    if json_out:
        write_json(json_out, doc)
